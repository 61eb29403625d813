"""Health reporting shared by all nodes: levels, and logging each distinct fault once."""

from __future__ import annotations

import enum
from collections import Counter


class Level(enum.IntEnum):
    """diagnostic_msgs/DiagnosticStatus levels."""

    OK = 0
    WARN = 1
    ERROR = 2
    STALE = 3


class FaultLog:
    """Counts faults by reason and says whether a reason is new, so each is logged once."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def record(self, reason: str) -> bool:
        """Count `reason`; True the first time it is seen."""
        self.counts[reason] += 1
        return self.counts[reason] == 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())
