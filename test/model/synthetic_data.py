"""A tiny synthetic demonstration dataset whose actions depend on the picture and the command.

Two coloured squares (red, blue) on a noisy grey floor; the command names one ("go to the red
cube"); the expert turns toward it (angular_z from its horizontal offset) and drives faster the
more centred it is (linear_x). Over an episode the scene turns toward the target, as a robot
would, and drifts at random.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vla_ros.learn.dataset import DatasetMeta, DatasetWriter, Episode

COLOURS = {"red": (220, 30, 30), "blue": (30, 60, 220)}
ACTIONS = ("linear_x", "angular_z")
JOINTS = ("left_wheel_joint", "right_wheel_joint")


def draw(size: tuple[int, int], squares: dict[str, tuple[float, float]], rng) -> np.ndarray:
    height, width = size
    image = np.clip(rng.normal(110, 12, (height, width, 3)), 0, 255).astype(np.uint8)
    side = max(4, width // 8)
    for colour, (x, y) in squares.items():
        left = int(np.clip(x * width - side / 2, 0, width - side))
        top = int(np.clip(y * height - side / 2, 0, height - side))
        image[top : top + side, left : left + side] = COLOURS[colour]
    return image


def expert(offset: float) -> np.ndarray:
    """offset: the target's horizontal position, -1 (left edge) .. 1 (right edge)."""
    return np.array([0.4 * (1.0 - abs(offset)), -1.2 * offset], np.float32)


def make_episode(
    rng, size: tuple[int, int], steps: int, colours: tuple[str, ...] = tuple(COLOURS)
) -> Episode:
    target = str(rng.choice(colours))
    squares = {c: (float(rng.uniform(0.1, 0.9)), float(rng.uniform(0.3, 0.7))) for c in colours}
    images, actions, target_pixels = [], [], []
    for _ in range(steps):
        offset = 2.0 * squares[target][0] - 1.0
        images.append(draw(size, squares, rng))
        target_pixels.append((offset, 2.0 * squares[target][1] - 1.0))
        actions.append(expert(offset) + rng.normal(0, 0.002, 2).astype(np.float32))
        # turning toward the target slides the scene the other way; the world drifts too, so
        # targets stay spread over the picture
        turn = 0.05 * offset + rng.normal(0, 0.05)
        squares = {c: (float(np.clip(x - turn, 0.05, 0.95)), y) for c, (x, y) in squares.items()}
    actions = np.stack(actions)
    velocities = np.stack([actions[:, 0] - actions[:, 1], actions[:, 0] + actions[:, 1]], 1)
    velocities = np.concatenate([np.zeros((1, 2), np.float32), velocities[:-1]])
    return Episode(
        instruction=f"go to the {target} cube",
        images=np.stack(images),
        joint_positions=np.cumsum(velocities * 0.1, axis=0).astype(np.float32),
        joint_velocities=velocities.astype(np.float32),
        actions=actions,
        success=True,
        target_pixels=np.array(target_pixels, np.float32),
    )


def write_dataset(
    root: str | Path,
    episodes: int = 10,
    steps: int = 20,
    size=(64, 64),
    seed: int = 0,
    colours: tuple[str, ...] = tuple(COLOURS),
    refusals: int = 0,
) -> Path:
    """`colours`: the squares in every picture (one of them named). `refusals`: episodes more,
    naming a colour that is not in the picture, demonstrated by standing still."""
    rng = np.random.default_rng(seed)
    writer = DatasetWriter(root, DatasetMeta("synthetic", JOINTS, ACTIONS, size, 0.1))
    for _ in range(episodes):
        writer.write(make_episode(rng, size, steps, colours))
    absent = [colour for colour in COLOURS if colour not in colours]
    for _ in range(refusals):
        shown = make_episode(rng, size, steps, colours)
        writer.write(
            Episode(
                instruction=f"go to the {rng.choice(absent)} cube",
                images=shown.images,
                joint_positions=np.zeros_like(shown.joint_positions),
                joint_velocities=np.zeros_like(shown.joint_velocities),
                actions=np.zeros_like(shown.actions),
                success=True,
                target_pixels=np.full_like(shown.target_pixels, np.nan),
                names_target=False,
            )
        )
    return Path(root)
