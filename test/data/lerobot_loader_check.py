"""LeRobot's own library against ours: it loads our export, and it writes a dataset for our import.

Not a pytest module: it runs in a separate virtual environment that has LeRobot (its pins do not
fit this package's), e.g.

    apt-get install libavcodec59 libavformat59 libavutil57 libswscale6 libswresample4 \
        libavdevice59 libavfilter8                  # FFmpeg 5.1 for torchcodec
    python3.11 -m venv /tmp/lerobot && /tmp/lerobot/bin/pip install torch==2.13.0 \
        "datasets>=4.8,<5" pandas pyarrow "av>=15,<16" "huggingface-hub>=1.6,<2" \
        "draccus>=0.11.6,<0.12" jsonlines einops termcolor fsspec pillow packaging accelerate \
        torchcodec==0.13.0
    /tmp/lerobot/bin/pip install --no-deps --ignore-requires-python lerobot==0.4.4
    /tmp/lerobot/bin/python test/data/lerobot_loader_check.py load DATASET EXPECTED.npz
    /tmp/lerobot/bin/python test/data/lerobot_loader_check.py write DATASET EXPECTED.npz

load: EXPECTED.npz holds what was exported (images, actions, states, tasks, lengths). The check
fails (exit 1) unless LeRobotDataset loads every frame with the same actions and states, the
right task, and pictures within the video codec's error, and unless delta_timestamps (action
chunks, as ACT and diffusion policies ask for) stay inside each episode.

write: LeRobotDataset.create / add_frame / save_episode / finalize write a small dataset with
LeRobot's defaults (AV1 video), and EXPECTED.npz gets what went in, for `vla-ros dataset import`
and `vla-ros train --lerobot` to be checked against.

torchvision: the only wheels reachable here are CUDA builds that cannot load next to the CPU
torch, and LeRobot's dataset code imports `torchvision.transforms` at module level only to turn
PNG-in-parquet images into tensors, a path a video dataset never takes. When the real
torchvision does not import, a stand-in module whose ToTensor raises is put in its place.
"""

import importlib.machinery
import sys
import types
from pathlib import Path

import numpy as np

BACKEND = "torchcodec"  # LeRobot 0.4's default; its "pyav" goes through torchvision


def _torchvision_stand_in() -> None:
    try:
        import torchvision  # noqa: F401
    except (ImportError, RuntimeError):
        module = types.ModuleType("torchvision")
        transforms = types.ModuleType("torchvision.transforms")

        class ToTensor:
            def __call__(self, _image):
                raise NotImplementedError("image features need the real torchvision")

        transforms.ToTensor = ToTensor
        module.transforms = transforms
        module.__spec__ = importlib.machinery.ModuleSpec("torchvision", None)
        transforms.__spec__ = importlib.machinery.ModuleSpec("torchvision.transforms", None)
        sys.modules["torchvision"] = module
        sys.modules["torchvision.transforms"] = transforms
        print("torchvision: CUDA-only wheels here; using the stand-in (video datasets only)")


def write(root: str, expected_file: str) -> int:
    _torchvision_stand_in()
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    rng = np.random.default_rng(7)
    features = {
        "observation.images.front": {
            "dtype": "video",
            "shape": (48, 64, 3),
            "names": ["height", "width", "channels"],
        },
        "observation.state": {"dtype": "float32", "shape": (2,), "names": ["shoulder", "elbow"]},
        "action": {"dtype": "float32", "shape": (2,), "names": ["shoulder", "elbow"]},
    }
    dataset = LeRobotDataset.create(
        "local/written_by_lerobot", fps=10, features=features, root=Path(root), robot_type="toy"
    )
    images, states, actions, tasks, lengths = [], [], [], [], []
    for episode, (task, length) in enumerate((("pick the cube", 7), ("push the ball", 5))):
        for _ in range(length):
            small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
            image = np.repeat(np.repeat(small, 8, axis=0), 8, axis=1)
            state = rng.normal(size=2).astype(np.float32)
            action = rng.normal(size=2).astype(np.float32)
            dataset.add_frame(
                {
                    "observation.images.front": image,
                    "observation.state": state,
                    "action": action,
                    "task": task,
                }
            )
            images.append(image)
            states.append(state)
            actions.append(action)
        dataset.save_episode()
        tasks.append(task)
        lengths.append(length)
        print(f"episode {episode} saved")
    dataset.finalize()
    np.savez(
        expected_file,
        images=np.stack(images),
        states=np.stack(states),
        actions=np.stack(actions),
        tasks=np.array(tasks),
        lengths=np.array(lengths),
        fps=10,
    )
    print(f"OK: LeRobot wrote {root}")
    return 0


def load(root: str, expected_file: str) -> int:
    _torchvision_stand_in()
    import lerobot
    import torch
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    expected = np.load(expected_file)
    dataset = LeRobotDataset("local/vla_ros_export", root=Path(root), video_backend=BACKEND)
    print(f"lerobot {lerobot.__version__ if hasattr(lerobot, '__version__') else '?'}: {dataset}")
    lengths = expected["lengths"]
    assert dataset.num_episodes == len(lengths), (dataset.num_episodes, len(lengths))
    assert dataset.num_frames == int(lengths.sum()) == len(dataset)
    assert dataset.fps == int(expected["fps"])
    worst = 0.0
    for index in range(len(dataset)):
        item = dataset[index]
        episode = int(item["episode_index"])
        assert item["task"] == str(expected["tasks"][episode]), (item["task"], episode)
        np.testing.assert_allclose(item["action"].numpy(), expected["actions"][index], rtol=1e-6)
        np.testing.assert_allclose(
            item["observation.state"].numpy(), expected["states"][index], rtol=1e-6
        )
        picture = item["observation.images.camera"]  # (3, H, W) float in [0, 1]
        assert picture.shape == (3, *expected["images"].shape[1:3]), picture.shape
        error = np.abs(picture.permute(1, 2, 0).numpy() * 255 - expected["images"][index]).mean()
        worst = max(worst, float(error))
    assert worst < 6.0, f"pictures differ by {worst:.1f} grey levels on average"
    chunked = LeRobotDataset(
        "local/vla_ros_export",
        root=Path(root),
        video_backend=BACKEND,
        delta_timestamps={"action": [0.0, 1 / dataset.fps, 2 / dataset.fps]},
    )
    last = int(lengths[0]) - 1  # the last frame of episode 0: the chunk runs past its end
    item = chunked[last]
    assert item["action"].shape == (3, expected["actions"].shape[1])
    assert item["action_is_pad"].tolist() == [False, True, True], item["action_is_pad"]
    batch = next(iter(torch.utils.data.DataLoader(dataset, batch_size=4)))
    assert batch["observation.images.camera"].shape[0] == 4
    print(
        f"OK: {dataset.num_episodes} episodes, {dataset.num_frames} frames loaded by LeRobot; "
        f"actions and states equal, pictures within {worst:.2f} grey levels on average; "
        "action chunks padded at episode ends; DataLoader batches"
    )
    return 0


if __name__ == "__main__":
    mode, *arguments = sys.argv[1:]
    raise SystemExit({"load": load, "write": write}[mode](*arguments))
