"""Compositional scenes: which objects an episode shows, drawn from colours x shapes.

With the same four objects in every episode ("red" and "cube" always name the same thing) a
policy never has to ground colour and shape apart. An ObjectSet draws 3-5 objects per episode
from every colour x shape combination, most episodes with objects that share the colour or the
shape of another (so both words are needed), and keeps some combinations out of training
altogether: the `combinations` evaluation split asks for those.

Pure numpy: the world (vla_ros.sim.world) builds the bodies and shows what `draw` returns.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

Combination = tuple[str, str]  # (colour, shape)


@dataclass(frozen=True)
class ObjectSet:
    """What objects an episode may hold and how they are drawn."""

    colours: Mapping[str, tuple[float, float, float]]  # canonical colour -> RGB in [0, 1]
    shapes: tuple[str, ...]  # canonical shapes the scene can build
    held_out: frozenset[Combination]  # combinations never shown in training
    count: tuple[int, int] = (3, 5)  # objects per episode, both ends included
    shared: float = 0.8  # share of episodes with objects sharing a colour and a shape
    max_per_shape: int = 3

    def __post_init__(self) -> None:
        low, high = self.count
        if not 1 <= low <= high:
            raise ValueError(f"count must be 1 <= low <= high, got {self.count}")
        if high > self.max_per_shape * len(self.shapes):
            raise ValueError("more objects per episode than the shapes' bodies can show")
        unknown = [c for c in self.held_out if c not in self.combinations]
        if unknown:
            raise ValueError(f"held-out combinations {unknown} are not colour x shape pairs")

    @property
    def combinations(self) -> tuple[Combination, ...]:
        return tuple((colour, shape) for colour in self.colours for shape in self.shapes)

    @property
    def training_combinations(self) -> tuple[Combination, ...]:
        return tuple(c for c in self.combinations if c not in self.held_out)

    def draw(self, rng: np.random.Generator, unseen: bool = False) -> list[Combination]:
        """An episode's objects, all different, in random order. `unseen`: one of them (and only
        one) is a held-out combination; otherwise none is."""
        allowed = self.training_combinations
        first = _choice(rng, sorted(self.held_out) if unseen else allowed)
        chosen = [first]
        if rng.random() < self.shared:
            colour, shape = first
            chosen.append(_choice(rng, [c for c in allowed if c[0] == colour and c[1] != shape]))
            chosen.append(_choice(rng, [c for c in allowed if c[1] == shape and c[0] != colour]))
        count = int(rng.integers(self.count[0], self.count[1] + 1))
        while len(chosen) < count:
            per_shape = Counter(shape for _, shape in chosen)
            candidates = [
                c for c in allowed if c not in chosen and per_shape[c[1]] < self.max_per_shape
            ]
            chosen.append(_choice(rng, candidates))
        return [chosen[i] for i in rng.permutation(len(chosen))]


def _choice(
    rng: np.random.Generator, options: list[Combination] | tuple[Combination, ...]
) -> Combination:
    return options[int(rng.integers(len(options)))]


# Seven hues far apart on the colour wheel (the arm's pale blue plate and grey bowl stay apart
# from them), five shapes every scene builds from its own objects. One held-out combination per
# shape and per colour but two: each colour and each shape is still seen in training.
COMPOSITIONAL = ObjectSet(
    colours={
        "red": (0.85, 0.1, 0.1),
        "orange": (1.0, 0.5, 0.05),
        "yellow": (0.95, 0.85, 0.1),
        "green": (0.1, 0.75, 0.15),
        "cyan": (0.1, 0.8, 0.85),
        "blue": (0.1, 0.25, 0.9),
        "purple": (0.55, 0.15, 0.8),
    },
    shapes=("cube", "sphere", "cylinder", "capsule", "egg"),
    held_out=frozenset(
        {
            ("red", "sphere"),
            ("green", "cube"),
            ("blue", "capsule"),
            ("yellow", "egg"),
            ("purple", "cylinder"),
        }
    ),
)
