import cv2
import numpy as np
import pytest
from PIL import Image

from vla_ros.sim.recording import Overlay, VideoRecorder, upscale, write_recording


def clip(frames=6, size=(64, 64)):
    """Frames whose colour changes over time, so the read-back order can be checked."""
    return [np.full((*size, 3), (40 * i, 200 - 30 * i, 90), np.uint8) for i in range(frames)]


def overlays(frames=6):
    return [
        Overlay(command=f"v 0.{i}0 m/s", uncertainty=0.1 * i, speed_scale=1 - 0.2 * i)
        for i in range(frames)
    ]


def test_an_mp4_reads_back_upscaled_with_its_frames_and_overlay(tmp_path):
    path = write_recording(
        tmp_path / "run.mp4", zip(clip(), overlays(), strict=True), fps=10, min_side=480
    )
    video = cv2.VideoCapture(str(path))
    read = []
    while True:
        ok, frame = video.read()
        if not ok:
            break
        read.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    video.release()
    assert len(read) == 6
    assert read[0].shape == (512, 512, 3)  # 64 x 8: the smallest whole factor reaching 480
    # The top of the frame is the picture (lossy codec: roughly its colour) ...
    np.testing.assert_allclose(read[3][100, 100], (120, 110, 90), atol=12)
    # ... the bottom band is darkened and carries text.
    band = read[3][-60:]
    assert band.mean() < read[3][:200].mean() * 0.7
    assert band.max() > 180


def test_a_gif_reads_back_with_every_frame(tmp_path):
    frames = [(frame, Overlay(note=f"frame {i}")) for i, frame in enumerate(clip(size=(60, 80)))]
    path = write_recording(tmp_path / "sub" / "run.gif", frames, fps=5)
    with Image.open(path) as gif:
        assert gif.n_frames == 6
        assert gif.size == (640, 480)
        assert gif.info["duration"] == 200
        gif.seek(5)
        last = np.asarray(gif.convert("RGB"))
    np.testing.assert_allclose(last[50, 50], (200, 50, 90), atol=12)


def test_frames_without_overlay_are_only_upscaled(tmp_path):
    frame = clip(1)[0]
    assert np.array_equal(upscale(frame, 128), np.repeat(np.repeat(frame, 2, 0), 2, 1))
    write_recording(tmp_path / "plain.gif", [(frame, None), (frame, None)])
    with Image.open(tmp_path / "plain.gif") as gif:
        assert gif.n_frames >= 1  # identical frames may be merged by Pillow


@pytest.mark.parametrize("name", ["run.avi", "run"])
def test_an_unknown_format_is_refused(tmp_path, name):
    with pytest.raises(ValueError, match=r"\.mp4, \.gif"):
        VideoRecorder(tmp_path / name)


def test_frames_of_another_size_are_refused(tmp_path):
    with VideoRecorder(tmp_path / "run.mp4") as video:
        video.add(clip(1)[0])
        with pytest.raises(ValueError, match="recording's"):
            video.add(clip(1, size=(32, 32))[0])
