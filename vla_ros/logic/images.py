"""Camera pictures: validation, conversion to RGB, resizing and camera-fault detection.

ROS-free: the message argument is anything shaped like sensor_msgs/Image (height, width,
encoding, is_bigendian, step, data), so the same code checks live messages, bag records and test
fixtures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np

# encoding -> channels
SUPPORTED_ENCODINGS: dict[str, int] = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}


class ImageLike(Protocol):
    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: bytes | bytearray | memoryview


class InvalidImage(ValueError):
    """The message cannot be read as a picture; the text says why."""


@dataclass(frozen=True)
class _PackedImage:
    """An image message with unpadded rows, the layout both converters assume."""

    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: bytes


def decode_rgb(msg: ImageLike, max_pixels: int = 4096 * 4096) -> np.ndarray:
    """The picture in `msg` as an (height, width, 3) uint8 RGB array.

    The message is checked first, so a converter never sees a buffer that does not match its
    header. A `step` of 0 is read as unpadded rows (publishers often leave it unset); padded rows
    are accepted when the data size matches step x height. Raises InvalidImage with the reason.
    """
    height, width = int(msg.height), int(msg.width)
    if height <= 0 or width <= 0:
        raise InvalidImage(f"empty image ({width}x{height})")
    encoding = msg.encoding.strip().lower()
    if encoding not in SUPPORTED_ENCODINGS:
        raise InvalidImage(
            f"unsupported encoding {msg.encoding!r}; use one of {', '.join(SUPPORTED_ENCODINGS)}"
        )
    if height * width > max_pixels:
        raise InvalidImage(f"image of {width}x{height} exceeds {max_pixels} pixels")
    channels = SUPPORTED_ENCODINGS[encoding]
    row_bytes = width * channels
    step = int(msg.step) or row_bytes
    if step < row_bytes:
        raise InvalidImage(f"step {step} is shorter than a {encoding} row of {row_bytes} bytes")
    size = len(msg.data)
    if size != step * height:
        raise InvalidImage(
            f"data has {size} bytes, {width}x{height} {encoding} needs {step * height}"
            f" ({width} x {height} x {channels})"
        )
    data = bytes(msg.data)
    if step != row_bytes:
        data = np.frombuffer(data, np.uint8).reshape(height, step)[:, :row_bytes].tobytes()
    packed = _PackedImage(height, width, encoding, 0, row_bytes, data)
    return np.ascontiguousarray(_CONVERTER(packed))


class RgbConverter:
    """Image message -> RGB array: cv_bridge where a ROS 2 install provides a working one, the
    pure-Python rosbags-image otherwise.

    cv_bridge is native code built for the distribution's numpy and OpenCV. Under other versions
    (numpy 2 in a venv in front of apt's packages) it fails to import with ImportError or
    SystemError, or fails on its first conversion. Any such failure drops it for good and leaves
    the reason in `problem` for the node to report once; pictures go on through rosbags-image.
    """

    def __init__(self) -> None:
        self.problem: str | None = None
        self._bridge: Any = None
        self._loaded = False

    def __call__(self, msg: ImageLike) -> np.ndarray:
        bridge = self._cv_bridge()
        if bridge is not None:
            try:
                return bridge.imgmsg_to_cv2(msg, desired_encoding="rgb8")
            except Exception as error:  # the message was checked first: the fault is cv_bridge's
                self._drop(error)
        from rosbags.image import image_to_cvimage

        return image_to_cvimage(msg, "rgb8")

    @property
    def name(self) -> str:
        return "cv_bridge" if self._cv_bridge() is not None else "rosbags-image"

    def _cv_bridge(self) -> Any:
        if not self._loaded:
            self._loaded = True
            try:
                from cv_bridge import CvBridge

                self._bridge = CvBridge()
            except ModuleNotFoundError as error:
                if error.name != "cv_bridge":  # a part of an installed cv_bridge is missing
                    self._drop(error)
            except Exception as error:  # SystemError, RuntimeError...: anything but a crash
                self._drop(error)
        return self._bridge

    def _drop(self, error: Exception) -> None:
        self._bridge = None
        self.problem = (
            f"cv_bridge does not work here ({type(error).__name__}: {error}); "
            "converting pictures with rosbags-image instead"
        )


_CONVERTER = RgbConverter()


def converter() -> RgbConverter:
    """The process's converter, which `decode_rgb` uses; its `problem` says why cv_bridge is not."""
    return _CONVERTER


def resize_rgb(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize to (height, width); area averaging when shrinking keeps small objects visible."""
    height, width = size
    if image.shape[:2] == (height, width):
        return image
    shrinking = image.shape[0] > height or image.shape[1] > width
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interpolation)


@dataclass(frozen=True)
class ExposureLimits:
    """What counts as a blank (lens covered, camera dead) or saturated (blinded) picture."""

    dark_level: int = 16
    bright_level: int = 240
    fault_fraction: float = 0.97

    def __post_init__(self) -> None:
        if not 0 <= self.dark_level < self.bright_level <= 255:
            raise ValueError("need 0 <= dark_level < bright_level <= 255")
        if not 0.5 <= self.fault_fraction <= 1.0:
            raise ValueError("fault_fraction must be in [0.5, 1]")


def camera_fault(image: np.ndarray, limits: ExposureLimits = ExposureLimits()) -> str | None:
    """The reason the picture is unusable (nearly all black or all white), or None if it is sane.

    Identical pictures in a row are not a fault: a simulated camera watching a still scene sends
    them. Staleness is judged on stamps, elsewhere.
    """
    # Black means every channel dark, white every channel bright: a saturated red object is
    # neither, so a scene full of one bright colour is no fault.
    brightest = image.max(axis=2) if image.ndim == 3 else image
    darkest = image.min(axis=2) if image.ndim == 3 else image
    dark = float(np.mean(brightest <= limits.dark_level))
    if dark >= limits.fault_fraction:
        return f"blank picture: {dark:.0%} of pixels are black"
    bright = float(np.mean(darkest >= limits.bright_level))
    if bright >= limits.fault_fraction:
        return f"saturated picture: {bright:.0%} of pixels are white"
    return None
