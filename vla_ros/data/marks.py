"""Episode marks: when a recorded demonstration starts and ends, and how it went.

`vla-ros record` stores them in the bag itself, on /vla/episode (std_msgs/String, one JSON object
per event, the message's log time is the event's time), so they travel with the data and any bag
tool shows them:

    {"event": "start", "episode": 3, "task": "go to the red cube"}
    {"event": "end", "episode": 3, "reason": "stop_word", "outcome": "unmarked"}
    {"event": "outcome", "episode": 3, "outcome": "succeeded"}   # a key pressed after the end

The tracker below turns what the recorder hears (commands, /vla/stop, keys, the clock) into those
events; `episode_spans` turns the events read back from a bag into episodes.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable
from dataclasses import dataclass

from vla_ros.logic.commands import InvalidCommand, parse_command

EPISODE_TOPIC = "/vla/episode"


class Outcome(enum.Enum):
    UNMARKED = "unmarked"  # nobody said; training keeps it
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # kept in the bag, left out of training
    RERECORD = "rerecord"  # a take to throw away (lerobot-record's "re-record")

    @property
    def trained(self) -> bool:
        return self in (Outcome.UNMARKED, Outcome.SUCCEEDED)


class EndReason(enum.Enum):
    STOP_WORD = "stop_word"
    STOP_SERVICE = "stop_service"  # /vla/stop, seen on the safety node's diagnostics
    NEW_COMMAND = "new_command"
    TIME_LIMIT = "time_limit"
    KEY = "key"
    SHUTDOWN = "shutdown"  # Ctrl-C, SIGTERM or the end of the recording


class Key(enum.Enum):
    """What the keys mean, as in lerobot-record: end the take as a success, as a failure, throw
    it away, or stop recording."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RERECORD = "rerecord"
    QUIT = "quit"


KEYS = {
    "s": Key.SUCCEEDED,
    "\x1b[C": Key.SUCCEEDED,  # right arrow
    "\n": Key.SUCCEEDED,
    "f": Key.FAILED,
    "r": Key.RERECORD,
    "\x1b[D": Key.RERECORD,  # left arrow
    "q": Key.QUIT,
    "\x1b": Key.QUIT,  # escape
}
KEY_HELP = "keys: s/Enter/-> success, f failure, r/<- re-record, q/Esc quit"


@dataclass(frozen=True)
class Event:
    kind: str  # "start", "end" or "outcome"
    episode: int
    time: float  # seconds on the recorder's clock
    task: str = ""
    reason: str = ""
    outcome: str = ""

    def to_json(self) -> str:
        body: dict[str, object] = {"event": self.kind, "episode": self.episode}
        if self.kind == "start":
            body["task"] = self.task
        if self.kind == "end":
            body["reason"] = self.reason
        if self.kind in ("end", "outcome"):
            body["outcome"] = self.outcome
        return json.dumps(body)

    @classmethod
    def from_json(cls, text: str, time: float) -> Event:
        """ValueError with the reason for text that is not an episode event."""
        try:
            body = json.loads(text)
            kind, episode = body["event"], int(body["episode"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            raise ValueError(f"not an episode event: {text[:80]!r} ({error})") from None
        if kind not in ("start", "end", "outcome"):
            raise ValueError(f"unknown episode event {kind!r}")
        return cls(
            kind,
            episode,
            time,
            task=str(body.get("task", "")),
            reason=str(body.get("reason", "")),
            outcome=str(body.get("outcome", "")),
        )


class EpisodeTracker:
    """Episodes from what the recorder hears; every method returns the events it caused.

    A non-stop command starts an episode (ending the one running, if the text is new); a stop
    word, /vla/stop, the time limit or a key ends it. A key with no episode running marks the last
    one, so a take can be judged after the operator said "stop".
    """

    def __init__(self, time_limit: float | None = None) -> None:
        if time_limit is not None and time_limit <= 0:
            raise ValueError(f"time_limit must be positive, got {time_limit}")
        self.time_limit = time_limit
        self.count = 0  # episodes started
        self.task = ""
        self.started_at: float | None = None  # None: no episode running
        self.outcomes: dict[int, Outcome] = {}

    @property
    def active(self) -> bool:
        return self.started_at is not None

    def command(self, text: str | bytes, now: float) -> list[Event]:
        try:
            command = parse_command(text)
        except InvalidCommand:
            return []  # the voice node refuses it too: nothing happened
        if command.is_stop:
            return self._end(EndReason.STOP_WORD, now)
        if self.active and command.text == self.task:
            return []  # a repeat of the running task goes on with it
        events = self._end(EndReason.NEW_COMMAND, now)
        self.count += 1
        self.task, self.started_at = command.text, now
        self.outcomes[self.count] = Outcome.UNMARKED
        return [*events, Event("start", self.count, now, task=self.task)]

    def stop_service(self, now: float) -> list[Event]:
        return self._end(EndReason.STOP_SERVICE, now)

    def tick(self, now: float) -> list[Event]:
        if self.active and self.time_limit is not None:
            assert self.started_at is not None
            if now - self.started_at >= self.time_limit:
                return self._end(EndReason.TIME_LIMIT, now)
        return []

    def key(self, key: Key, now: float) -> list[Event]:
        if key is Key.QUIT:
            return self.shutdown(now)
        outcome = Outcome(key.value)
        if self.active:
            return self._end(EndReason.KEY, now, outcome)
        if self.count == 0:
            return []
        self.outcomes[self.count] = outcome
        return [Event("outcome", self.count, now, outcome=outcome.value)]

    def shutdown(self, now: float) -> list[Event]:
        return self._end(EndReason.SHUTDOWN, now)

    def _end(
        self, reason: EndReason, now: float, outcome: Outcome = Outcome.UNMARKED
    ) -> list[Event]:
        if not self.active:
            return []
        self.started_at = None
        self.outcomes[self.count] = outcome
        return [Event("end", self.count, now, reason=reason.value, outcome=outcome.value)]


@dataclass(frozen=True)
class EpisodeSpan:
    """One recorded episode: [start, end) on the bag's clock."""

    index: int
    task: str
    start: float
    end: float
    outcome: Outcome
    reason: str

    @property
    def duration(self) -> float:
        return self.end - self.start


def episode_spans(events: Iterable[Event], bag_end: float) -> list[EpisodeSpan]:
    """The episodes the events describe; one still open at the end of the bag ends there."""
    spans: dict[int, dict[str, object]] = {}
    for event in sorted(events, key=lambda e: e.time):
        if event.kind == "start":
            spans[event.episode] = {"task": event.task, "start": event.time}
        elif event.episode in spans:
            span = spans[event.episode]
            if event.kind == "end":
                span.update(end=event.time, reason=event.reason)
            if event.outcome:
                span["outcome"] = event.outcome
    return [
        EpisodeSpan(
            index=index,
            task=str(span["task"]),
            start=float(span["start"]),  # type: ignore[arg-type]
            end=float(span.get("end", bag_end)),  # type: ignore[arg-type]
            outcome=Outcome(span.get("outcome", Outcome.UNMARKED.value)),
            reason=str(span.get("reason", EndReason.SHUTDOWN.value)),
        )
        for index, span in sorted(spans.items())
    ]


def spans_from_commands(commands: Iterable[tuple[float, str]], bag_end: float) -> list[EpisodeSpan]:
    """Episodes of a bag without marks (e.g. from `ros2 bag record`): the same rules as the
    recorder's, applied to the voice commands in it."""
    tracker = EpisodeTracker()
    events: list[Event] = []
    for time, text in commands:
        events += tracker.command(text, time)
    return episode_spans(events, bag_end)
