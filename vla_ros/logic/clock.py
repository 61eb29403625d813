"""Time as the nodes see it: ROS time that can jump backwards.

A simulator reset or `ros2 bag play --loop --clock` sets ROS time back. Everything stamped before
the jump is then "in the future", and stamps that must advance stop advancing, so a node that does
not notice waits (or drops input) until time catches up. `ClockWatch` notices, once, and hands the
jump to the node: the policy every node follows is to stop at once, forget freshness and stamps,
and move again only on inputs stamped in the new time. A forward jump needs nothing special: inputs
then look old, which the age limits already treat as stale.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

# Readings taken on two threads can arrive out of order by a scheduling slice; a reading further
# back than this is a jump of the clock itself.
BACKWARD_TOLERANCE_S = 0.05


class ClockWatch:
    """Reads a clock, and calls `on_jump_back(before, after)` when it has gone backwards."""

    def __init__(
        self,
        read: Callable[[], float],
        on_jump_back: Callable[[float, float], None],
        tolerance: float = BACKWARD_TOLERANCE_S,
    ) -> None:
        self._read = read
        self._on_jump_back = on_jump_back
        self._tolerance = tolerance
        self._latest: float | None = None
        self._lock = threading.Lock()

    def now(self) -> float:
        """The clock's time, in seconds; first tells the node if it jumped back since last read."""
        with self._lock:
            now = self._read()
            before = self._latest
            jumped = before is not None and now < before - self._tolerance
            if before is None or jumped or now > before:
                self._latest = now
        if jumped:
            self._on_jump_back(before, now)
        return now


def jump_message(before: float, after: float) -> str:
    return (
        f"ROS time jumped back {before - after:.2f} s (simulator reset or looping bag?): "
        "stopped; inputs stamped before the jump are forgotten"
    )
