"""Health reporting shared by all nodes: levels, and logging each distinct fault once."""

from __future__ import annotations

import enum
import re
from collections import Counter


class Level(enum.IntEnum):
    """diagnostic_msgs/DiagnosticStatus levels."""

    OK = 0
    WARN = 1
    ERROR = 2
    STALE = 3


# A number that stands on its own ("0.53 s old", "27.06 s in the future"), not part of a name
# such as "joint_2".
_MEASURED_NUMBER = re.compile(r"(?<![A-Za-z_\d.])\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def fault_key(reason: str) -> str:
    """What stays the same while one fault lasts: the reason with its measured numbers masked.

    A stale input's age grows at every step; keyed on the raw text, it would be a new fault (a new
    log line, a new /diagnostics message) ten times a second.
    """
    return _MEASURED_NUMBER.sub("#", reason)


class FaultLog:
    """Counts faults by kind (`fault_key`); says whether a kind is new, so each is logged once."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def record(self, reason: str) -> bool:
        """Count `reason`; True the first time a fault of its kind is seen."""
        key = fault_key(reason)
        self.counts[key] += 1
        return self.counts[key] == 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())
