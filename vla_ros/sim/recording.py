"""Recording the camera view as a video a person can watch: .mp4 (OpenCV, mp4v) or .gif (Pillow).

Frames are upscaled with nearest-neighbour sampling (a 64x64 model input stays sharp pixels, not
a blur) until the shorter side is at least `min_side` pixels, and each frame can carry an overlay:
the command sent, the uncertainty and the safety node's speed scale, drawn in a band at the bottom.

    with VideoRecorder("run.mp4", fps=10) as video:
        video.add(frame, Overlay(command="v 0.30 m/s  w 0.10 rad/s", uncertainty=0.12,
                                 speed_scale=1.0))
    write_recording("run.gif", [(frame, Overlay(note="go to the red cube")), ...])

An overlay is an Overlay (its speed scale is coloured: green at full speed, orange slowed, red
stopped) or plain lines of text.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

FORMATS = (".mp4", ".gif")
DEFAULT_MIN_SIDE = 480
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_LINE_HEIGHT = 22
_TEXT_SCALE = 0.5
_WHITE = (255, 255, 255)
_GREEN, _ORANGE, _RED = (60, 200, 80), (255, 160, 30), (230, 40, 40)


@dataclass(frozen=True)
class Overlay:
    """What is written on one frame; empty fields are left out."""

    command: str = ""
    uncertainty: float | None = None
    speed_scale: float | None = None
    note: str = ""  # anything else: the instruction, the task's state, the time

    def lines(self) -> list[tuple[str, tuple[int, int, int]]]:
        lines = []
        if self.note:
            lines.append((self.note, _WHITE))
        if self.command:
            lines.append((f"command: {self.command}", _WHITE))
        if self.uncertainty is not None:
            lines.append((f"uncertainty: {self.uncertainty:.3f}", _WHITE))
        if self.speed_scale is not None:
            colour = _GREEN if self.speed_scale >= 1 else _ORANGE if self.speed_scale > 0 else _RED
            lines.append((f"speed scale: {self.speed_scale:.2f}", colour))
        return lines


class VideoRecorder:
    """Collects frames (any size, RGB uint8) and writes them as .mp4 or .gif.

    MP4 frames stream to disk as they come; a GIF is written on close (the format needs every
    frame for its palette). All frames of a recording must have the size of the first.
    """

    def __init__(
        self, path: str | Path, fps: float = 10.0, min_side: int = DEFAULT_MIN_SIDE
    ) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() not in FORMATS:
            raise ValueError(f"cannot record {self.path.name}: use one of {', '.join(FORMATS)}")
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.fps = float(fps)
        self.min_side = min_side
        self.frames_written = 0
        self._input_shape: tuple[int, ...] | None = None
        self._mp4: cv2.VideoWriter | None = None
        self._gif_frames: list[np.ndarray] = []

    def add(self, frame: np.ndarray, overlay: Overlay | None = None) -> None:
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frames must be (H, W, 3) uint8 RGB, got {frame.shape} {frame.dtype}")
        if self._input_shape is None:
            self._input_shape = frame.shape
        elif frame.shape != self._input_shape:
            raise ValueError(f"frame of {frame.shape}, the recording's are {self._input_shape}")
        picture = annotate(upscale(frame, self.min_side), overlay)
        if self.path.suffix.lower() == ".gif":
            self._gif_frames.append(picture)
        else:
            self._write_mp4(picture)
        self.frames_written += 1

    def close(self) -> Path:
        """Finish the file; returns its path. Recording nothing writes nothing."""
        if self._mp4 is not None:
            self._mp4.release()
            self._mp4 = None
        if self._gif_frames:
            from PIL import Image

            images = [Image.fromarray(frame) for frame in self._gif_frames]
            self.path.parent.mkdir(parents=True, exist_ok=True)
            images[0].save(
                self.path,
                save_all=True,
                append_images=images[1:],
                duration=round(1000 / self.fps),
                loop=0,
            )
            self._gif_frames = []
        return self.path

    def __enter__(self) -> VideoRecorder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _write_mp4(self, picture: np.ndarray) -> None:
        if self._mp4 is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            height, width = picture.shape[:2]
            fourcc = cv2.VideoWriter_fourcc(*"mp4v")
            self._mp4 = cv2.VideoWriter(str(self.path), fourcc, self.fps, (width, height))
            if not self._mp4.isOpened():
                raise OSError(f"OpenCV cannot write {self.path} (mp4v)")
        self._mp4.write(cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))


def write_recording(
    path: str | Path,
    frames: Iterable[tuple[np.ndarray, Overlay | None]],
    fps: float = 10.0,
    min_side: int = DEFAULT_MIN_SIDE,
) -> Path:
    """Write (frame, overlay) pairs as a video; returns its path."""
    with VideoRecorder(path, fps, min_side) as video:
        for frame, overlay in frames:
            video.add(frame, overlay)
    return Path(path)


def upscale(frame: np.ndarray, min_side: int = DEFAULT_MIN_SIDE) -> np.ndarray:
    """Enlarge by a whole factor (pixels stay square and sharp) to at least `min_side`."""
    factor = max(1, math.ceil(min_side / min(frame.shape[:2])))
    if factor == 1:
        return frame
    return cv2.resize(
        frame,
        (frame.shape[1] * factor, frame.shape[0] * factor),
        interpolation=cv2.INTER_NEAREST,
    )


def annotate(picture: np.ndarray, overlay: Overlay | None) -> np.ndarray:
    """The picture with the overlay's lines in a darkened band at the bottom."""
    if overlay is None:
        return picture
    lines = overlay.lines()
    if not lines:
        return picture
    out = picture.copy()
    band = min(out.shape[0], _LINE_HEIGHT * len(lines) + 8)
    out[-band:] = (out[-band:] * 0.4).astype(np.uint8)
    for index, (text, colour) in enumerate(lines):
        baseline = out.shape[0] - band + _LINE_HEIGHT * (index + 1)
        cv2.putText(out, text, (8, baseline), _FONT, _TEXT_SCALE, colour, 1, cv2.LINE_AA)
    return out
