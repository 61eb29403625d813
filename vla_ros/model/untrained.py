"""The shipped `mobile` checkpoint until simulator data exists: valid, randomly initialised.

Its network acts at random (small actions: the heads start near zero), its uncertainty is the
uncalibrated ensemble spread, and its language novelty is measured against the simulator's
training phrasings, so unknown commands already raise the uncertainty. Regenerate with
`python -m vla_ros.model.untrained`; a trained checkpoint replaces it.
"""

from __future__ import annotations

import sys
from itertools import product
from pathlib import Path

from vla_ros.model.config import ModelConfig, default_mobile_config
from vla_ros.paths import package_data_dir

# the simulator's training phrasings and nouns for its four coloured objects
_PHRASINGS = (
    "go to the {}",
    "drive to the {}",
    "move to the {}",
    "head towards the {}",
    "find the {}",
)
_OBJECTS = ("red cube", "red box", "green ball", "blue cylinder", "yellow capsule")


def untrained_mobile_config() -> ModelConfig:
    instructions = tuple(p.format(o) for p, o in product(_PHRASINGS, _OBJECTS))
    return default_mobile_config().with_overrides({"training_instructions": list(instructions)})


def write_untrained_mobile(folder: str | Path | None = None, seed: int = 0) -> Path:
    from vla_ros.model.checkpoint import build_policy, save_policy

    folder = Path(folder) if folder else package_data_dir("checkpoints", "mobile")
    return save_policy(build_policy(untrained_mobile_config(), seed=seed), folder)


if __name__ == "__main__":
    print(write_untrained_mobile(sys.argv[1] if len(sys.argv) > 1 else None))
