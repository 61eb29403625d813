"""Training from episodes that came from elsewhere (bags, LeRobot datasets) with the usual recipe.

The episodes are written as a dataset in `vla-ros train`'s own format first (the checkpoint
records where its training data is, and `vla-ros calibrate` and `vla-ros eval
--uncertainty-report` read it from there), then `vla_ros.learn.train` runs unchanged. Its
per-epoch losses are read from its progress lines as they pass through, and saved as
loss.json and loss.png in the checkpoint folder.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from vla_ros.learn.dataset import META_FILE, DatasetMeta, DatasetWriter, Episode

_BEFORE = re.compile(r"before training\s+held-out ([\d.eE+-]+|nan)")
_EPOCH = re.compile(r"epoch\s+(\d+)/\d+\s+loss ([\d.eE+-]+|nan)\s+held-out ([\d.eE+-]+|nan)")


def write_dataset(meta: DatasetMeta, episodes: Iterable[Episode], root: Path) -> int:
    """The episodes as a fresh dataset at `root` (a dataset already there is replaced)."""
    if root.exists():
        if not (root / META_FILE).is_file():
            raise FileExistsError(f"{root} exists and is not a dataset: not overwriting it")
        shutil.rmtree(root)
    writer = DatasetWriter(root, meta)
    count = 0
    for episode in episodes:
        writer.write(episode)
        count += 1
    if count < 2:
        raise ValueError(f"{count} usable episode(s); training needs at least 2")
    return count


@dataclass
class LossHistory:
    """Lines pass through to `stream`; the epoch lines are also kept as numbers."""

    stream: TextIO = field(default_factory=lambda: sys.stderr)
    train: list[float] = field(default_factory=list)
    heldout: list[float] = field(default_factory=list)
    untrained: float | None = None  # the held-out loss before the first epoch

    def write(self, text: str) -> int:
        if match := _BEFORE.search(text):
            self.untrained = float(match.group(1))
        for match in _EPOCH.finditer(text):
            self.train.append(float(match.group(2)))
            self.heldout.append(float(match.group(3)))
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()

    def save(self, out: Path) -> None:
        (out / "loss.json").write_text(
            json.dumps(
                {"untrained": self.untrained, "train": self.train, "heldout": self.heldout},
                indent=2,
            )
        )
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axis = plt.subplots(figsize=(6, 3.5))
        epochs = range(1, len(self.train) + 1)
        axis.plot(epochs, self.train, marker="o", label="training")
        axis.plot(epochs, self.heldout, marker="o", label="held-out (validation)")
        if self.untrained is not None:
            axis.axhline(self.untrained, color="grey", linestyle=":", label="held-out, untrained")
        axis.set(xlabel="epoch", ylabel="loss", yscale="log", title="vla-ros train")
        axis.legend()
        fig.tight_layout()
        fig.savefig(out / "loss.png", dpi=100)
        plt.close(fig)


def train_on(
    meta: DatasetMeta,
    episodes: Iterable[Episode],
    data_dir: Path,
    out_dir: Path,
    epochs: int,
    seed: int,
    overrides: Mapping[str, Any],
) -> tuple[Path, LossHistory]:
    """Write the dataset, train on it, save the loss curve; (checkpoint, losses)."""
    from vla_ros.learn.train import train

    count = write_dataset(meta, episodes, data_dir)
    print(f"vla-ros train: {count} episodes in {data_dir}", file=sys.stderr)
    history = LossHistory()
    checkpoint = train(
        data_dir,
        out_dir,
        config_overrides=overrides,
        epochs=epochs,
        seed=seed,
        log=history,  # type: ignore[arg-type]
    )
    history.save(Path(checkpoint))
    return Path(checkpoint), history
