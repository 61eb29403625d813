"""What `vla-ros record` shows while it records and prints at the end, ROS-free.

The recorder node feeds every message it writes into `RecordingStats`; the live line and the
summary are built from it and from the episode tracker.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from vla_ros.data.marks import EpisodeTracker, Outcome

RATE_WINDOW = 2.0  # seconds of arrivals the live rate is measured over


@dataclass
class TopicStats:
    count: int = 0
    bytes: int = 0
    first: float | None = None
    last: float | None = None
    recent: deque[float] = field(default_factory=deque)

    def add(self, now: float, size: int) -> None:
        self.count += 1
        self.bytes += size
        self.first = now if self.first is None else self.first
        self.last = now
        self.recent.append(now)
        while self.recent and now - self.recent[0] > RATE_WINDOW:
            self.recent.popleft()

    def live_rate(self, now: float) -> float:
        """Messages per second over the last RATE_WINDOW seconds."""
        while self.recent and now - self.recent[0] > RATE_WINDOW:
            self.recent.popleft()
        return len(self.recent) / RATE_WINDOW

    def mean_rate(self) -> float:
        if self.first is None or self.last is None or self.last <= self.first:
            return 0.0
        return (self.count - 1) / (self.last - self.first)


@dataclass
class RecordingStats:
    topics: dict[str, TopicStats] = field(default_factory=dict)

    def add(self, topic: str, now: float, size: int) -> None:
        self.topics.setdefault(topic, TopicStats()).add(now, size)

    @property
    def total_bytes(self) -> int:
        return sum(s.bytes for s in self.topics.values())


def live_line(
    stats: RecordingStats, tracker: EpisodeTracker, now: float, started: float, clock: float
) -> str:
    """`now` and `started` are steady-clock seconds, `clock` the recorder's (ROS) time, which
    the tracker's episode times are on."""
    if tracker.active:
        assert tracker.started_at is not None
        episode = f"episode {tracker.count} {clock - tracker.started_at:5.1f} s '{tracker.task}'"
    else:
        episode = f"{tracker.count} episode(s), waiting for a command"
    rates = " ".join(
        f"{topic} {s.live_rate(now):.0f}Hz" for topic, s in sorted(stats.topics.items())
    )
    return (
        f"rec {now - started:6.1f} s | {episode} | {rates or 'no messages yet'} | "
        f"{stats.total_bytes / 1e6:.1f} MB"
    )


def summary(stats: RecordingStats, tracker: EpisodeTracker, path: str, seconds: float) -> str:
    outcomes = list(tracker.outcomes.values())
    counted = ", ".join(f"{outcomes.count(o)} {o.value}" for o in Outcome if outcomes.count(o))
    lines = [
        f"vla-ros record summary: {path}",
        f"  recorded        {seconds:.1f} s, {stats.total_bytes / 1e6:.1f} MB",
        f"  episodes        {len(outcomes)}" + (f" ({counted})" if counted else ""),
    ]
    for topic, s in sorted(stats.topics.items()):
        lines.append(f"  {topic:<24s}{s.count:7d} msgs, {s.mean_rate():6.1f} Hz")
    return "\n".join(lines)
