from dataclasses import dataclass

import numpy as np
import pytest

from vla_ros.logic.images import (
    ExposureLimits,
    InvalidImage,
    RgbConverter,
    camera_fault,
    decode_rgb,
    resize_rgb,
)


@dataclass
class FakeImageMessage:
    """Shaped like sensor_msgs/Image; decode_rgb accepts anything with these fields."""

    height: int
    width: int
    encoding: str
    data: bytes
    step: int = 0
    is_bigendian: int = 0


def _scene(height=6, width=8):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("rgb8", lambda rgb: rgb),
        ("bgr8", lambda rgb: rgb[:, :, ::-1]),
        ("rgba8", lambda rgb: np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])),
        ("bgra8", lambda rgb: np.dstack([rgb[:, :, ::-1], np.zeros(rgb.shape[:2], np.uint8)])),
    ],
)
def test_colour_encodings_decode_to_the_same_rgb(encoding, encode):
    rgb = _scene()
    pixels = np.ascontiguousarray(encode(rgb))
    msg = FakeImageMessage(6, 8, encoding, pixels.tobytes(), step=8 * pixels.shape[2])
    np.testing.assert_array_equal(decode_rgb(msg), rgb)


def test_mono8_becomes_grey_rgb():
    grey = np.arange(48, dtype=np.uint8).reshape(6, 8)
    out = decode_rgb(FakeImageMessage(6, 8, "mono8", grey.tobytes(), step=8))
    assert out.shape == (6, 8, 3)
    np.testing.assert_array_equal(out[:, :, 1], grey)


def test_real_sensor_msgs_image_decodes():
    from sensor_msgs.msg import Image

    rgb = _scene()
    msg = Image(height=6, width=8, encoding="rgb8", step=24, data=rgb.tobytes())
    np.testing.assert_array_equal(decode_rgb(msg), rgb)


def test_unset_step_means_unpadded_rows():
    rgb = _scene()
    np.testing.assert_array_equal(decode_rgb(FakeImageMessage(6, 8, "rgb8", rgb.tobytes())), rgb)


def test_padded_rows_are_stripped():
    rgb = _scene()
    padded = np.concatenate([rgb.reshape(6, 24), np.full((6, 8), 7, np.uint8)], axis=1)
    out = decode_rgb(FakeImageMessage(6, 8, "rgb8", padded.tobytes(), step=32))
    np.testing.assert_array_equal(out, rgb)


@pytest.mark.parametrize(
    ("msg", "reason"),
    [
        (FakeImageMessage(6, 8, "yuv422", b"\0" * 96), "unsupported encoding"),
        (FakeImageMessage(6, 8, "rgb8", b"\0" * 100), "needs 144"),
        (FakeImageMessage(6, 8, "rgb8", b""), "needs 144"),
        (FakeImageMessage(0, 0, "rgb8", b""), "empty image"),
        (FakeImageMessage(6, 8, "rgb8", b"\0" * 60, step=10), "shorter than"),
        (FakeImageMessage(100_000, 100_000, "mono8", b""), "exceeds"),
    ],
)
def test_malformed_images_are_refused_with_the_reason(msg, reason):
    with pytest.raises(InvalidImage, match=reason):
        decode_rgb(msg)


def test_resize_to_model_input_keeps_colours():
    red = np.zeros((48, 64, 3), np.uint8)
    red[..., 0] = 200
    out = resize_rgb(red, (16, 20))
    assert out.shape == (16, 20, 3)
    assert np.all(out[..., 0] == 200) and np.all(out[..., 1:] == 0)


def test_resize_is_a_no_op_at_the_right_size():
    rgb = _scene()
    assert resize_rgb(rgb, (6, 8)) is rgb


def test_blank_and_saturated_pictures_are_camera_faults():
    assert "blank" in camera_fault(np.zeros((32, 32, 3), np.uint8))
    assert "blank" in camera_fault(np.full((32, 32, 3), 5, np.uint8))
    assert "saturated" in camera_fault(np.full((32, 32, 3), 255, np.uint8))


def test_ordinary_and_repeated_pictures_are_not_faults():
    scene = _scene(32, 32)
    assert camera_fault(scene) is None
    assert camera_fault(scene.copy()) is None  # identical pixels alone are no fault


def test_a_picture_full_of_one_bright_colour_is_not_a_fault():
    red = np.zeros((32, 32, 3), np.uint8)
    red[..., 0] = 255
    assert camera_fault(red) is None


def test_a_dark_room_with_a_bright_object_is_not_a_fault():
    dark = np.zeros((32, 32, 3), np.uint8)
    dark[8:24, 8:24] = (200, 30, 30)
    assert camera_fault(dark) is None


def test_exposure_limits_validate_themselves():
    with pytest.raises(ValueError):
        ExposureLimits(dark_level=200, bright_level=100)
    with pytest.raises(ValueError):
        ExposureLimits(fault_fraction=0.2)


def _scene_message() -> FakeImageMessage:
    rgb = _scene()
    return FakeImageMessage(6, 8, "rgb8", rgb.tobytes(), step=24)


def test_without_cv_bridge_rosbags_image_converts_and_nothing_is_reported():
    convert = RgbConverter()
    np.testing.assert_array_equal(convert(_scene_message()), _scene())
    assert convert.name == "rosbags-image"
    assert convert.problem is None


def test_a_cv_bridge_missing_its_native_part_is_reported(tmp_path, monkeypatch):
    """A ModuleNotFoundError from inside cv_bridge is a broken install, not an absent one."""
    (tmp_path / "cv_bridge").mkdir()
    (tmp_path / "cv_bridge" / "__init__.py").write_text(
        "from cv_bridge.boost.cv_bridge_boost import getCvType\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    convert = RgbConverter()
    np.testing.assert_array_equal(convert(_scene_message()), _scene())
    assert convert.name == "rosbags-image"
    assert "No module named 'cv_bridge.boost'" in convert.problem
