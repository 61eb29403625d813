"""Progress of a long loop on stderr: items done, rate, time left, and a caller's note."""

from __future__ import annotations

import math
import sys
import time
from typing import TextIO

_PLAIN_INTERVAL = 5.0  # seconds between lines when stderr is a file or a pipe


class Progress:
    """Rewrites one line on a terminal; prints a line every few seconds into a log."""

    def __init__(
        self,
        label: str,
        total: int,
        unit: str = "episodes",
        stream: TextIO | None = None,
        enabled: bool = True,
    ) -> None:
        self.label = label
        self.total = total
        self.unit = unit
        self.enabled = enabled
        self._stream = stream if stream is not None else sys.stderr
        self._terminal = self._stream.isatty()
        self._start = time.monotonic()
        self._last_line = -_PLAIN_INTERVAL

    def update(self, done: int, note: str = "") -> None:
        now = time.monotonic()
        final = done >= self.total
        if not self.enabled or not (
            final or self._terminal or now - self._last_line >= _PLAIN_INTERVAL
        ):
            return
        self._last_line = now
        elapsed = now - self._start
        rate = done / elapsed if elapsed > 0 else 0.0
        left = (self.total - done) / rate if rate > 0 else float("nan")
        line = (
            f"{self.label}: {done}/{self.total} {self.unit}, {rate:.2f}/s, "
            f"{'done in ' + _duration(elapsed) if final else 'ETA ' + _duration(left)}"
        )
        if note:
            line += f", {note}"
        if self._terminal:
            self._stream.write(f"\r\033[K{line}" + ("\n" if final else ""))
        else:
            self._stream.write(line + "\n")
        self._stream.flush()


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):  # no rate yet
        return "?"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
