"""`vla-ros dataset info`, telling folders apart, and the loss curve of imported training."""

import io

import numpy as np
import pytest
from PIL import Image

from vla_ros.data.bags import write_bag
from vla_ros.data.info import THUMBNAIL, info
from vla_ros.data.lerobot import export_lerobot
from vla_ros.data.sources import Kind, kind_of, load
from vla_ros.data.training import LossHistory, write_dataset
from vla_ros.learn.dataset import DatasetMeta, Episode

SIZE = (16, 16)


def demos(count=3):
    meta = DatasetMeta("mobile", ("l", "r"), ("linear_x", "angular_z"), SIZE, 0.1)
    episodes = [
        Episode(
            "go to the red cube" if i % 2 else "find the blue ball",
            np.full((4 + i, *SIZE, 3), 40 * i, np.uint8),
            np.zeros((4 + i, 2), np.float32),
            np.zeros((4 + i, 2), np.float32),
            np.tile(np.array([[0.1 * i, -0.5]], np.float32), (4 + i, 1)),
            success=i != 2,
        )
        for i in range(count)
    ]
    return meta, episodes


def test_info_on_a_bag_lists_topics_marks_ranges_and_writes_a_contact_sheet(tmp_path):
    write_bag(tmp_path / "bag", *demos())
    report = info(tmp_path / "bag", tmp_path / "sheet.png")
    assert "/camera/image_raw       sensor_msgs/msg/Image" in report
    assert "     3     0.6 s  failed" in report  # the third take, 6 steps
    assert "episodes 2, 9 steps at 10 Hz (0.9 s)" in report  # as training sees it
    assert "linear_x                    0.000    0.100" in report
    sheet = Image.open(tmp_path / "sheet.png")
    assert sheet.size == (2 * THUMBNAIL[1], THUMBNAIL[0] + 14)
    # the second episode's first picture is grey 40, the first's black
    pixels = np.asarray(sheet)
    assert (
        pixels[10, 10].tolist() == [0, 0, 0] and pixels[10, THUMBNAIL[1] + 10].tolist() == [40] * 3
    )


def test_folders_are_told_apart_and_loaded_alike(tmp_path):
    meta, episodes = demos()
    write_bag(tmp_path / "bag", meta, episodes)
    export_lerobot(meta, episodes, tmp_path / "lerobot")
    write_dataset(meta, episodes, tmp_path / "native")
    assert [kind_of(tmp_path / n) for n in ("bag", "lerobot", "native")] == list(Kind)
    for name in ("lerobot", "native"):
        loaded_meta, loaded = load([tmp_path / name], image_size=(8, 8))
        assert loaded_meta.image_size == (8, 8) and len(loaded) == 3
        np.testing.assert_allclose(loaded[1].actions, episodes[1].actions)
    with pytest.raises(ValueError, match="not a rosbag2 directory"):
        kind_of(tmp_path)
    with pytest.raises(ValueError, match="one kind"):
        load([tmp_path / "bag", tmp_path / "native"], None)


def test_a_dataset_is_replaced_but_nothing_else_is_overwritten(tmp_path):
    meta, episodes = demos()
    assert write_dataset(meta, episodes, tmp_path / "data") == 3
    assert write_dataset(meta, episodes[:2], tmp_path / "data") == 2
    assert len(list((tmp_path / "data").glob("episode_*.npz"))) == 2
    (tmp_path / "other").mkdir()
    with pytest.raises(FileExistsError, match="not a dataset"):
        write_dataset(meta, episodes, tmp_path / "other")
    with pytest.raises(ValueError, match="at least 2"):
        write_dataset(meta, episodes[:1], tmp_path / "data")


def test_the_loss_history_reads_the_training_lines_as_they_pass(tmp_path):
    stream = io.StringIO()
    history = LossHistory(stream)
    history.write("before training  held-out 0.5000\n")
    history.write("epoch   1/2  loss 0.4000  held-out 0.3000  1.0 s\n")
    history.write("epoch   2/2  loss 0.2000  held-out 0.2500  1.0 s\nsaved x\n")
    assert (history.untrained, history.train, history.heldout) == (0.5, [0.4, 0.2], [0.3, 0.25])
    assert "saved x" in stream.getvalue()
    history.save(tmp_path)
    assert (tmp_path / "loss.png").is_file() and (tmp_path / "loss.json").is_file()
