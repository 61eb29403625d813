"""Episode marks: what starts and ends an episode, and reading the marks back."""

import pytest

from vla_ros.data.marks import (
    EpisodeTracker,
    Event,
    Key,
    Outcome,
    episode_spans,
    spans_from_commands,
)


def test_a_command_starts_an_episode_and_a_stop_word_ends_it():
    tracker = EpisodeTracker()
    assert tracker.command("stop", 0.0) == []  # nothing to end yet
    (start,) = tracker.command("Go to the RED cube", 1.0)
    assert (start.kind, start.episode, start.task) == ("start", 1, "go to the red cube")
    assert tracker.command("go to the red cube", 2.0) == []  # a repeat goes on with it
    (end,) = tracker.command("please halt now", 3.0)
    assert (end.kind, end.reason, end.time) == ("end", "stop_word", 3.0)
    assert not tracker.active


def test_a_new_command_ends_the_running_episode_and_starts_another():
    tracker = EpisodeTracker()
    tracker.command("go to the red cube", 0.0)
    end, start = tracker.command("go to the blue ball", 4.0)
    assert (end.kind, end.episode, end.reason) == ("end", 1, "new_command")
    assert (start.kind, start.episode, start.task) == ("start", 2, "go to the blue ball")


def test_time_limit_stop_service_and_shutdown_end_episodes():
    tracker = EpisodeTracker(time_limit=5.0)
    tracker.command("go to the red cube", 10.0)
    assert tracker.tick(14.9) == []
    assert tracker.tick(15.0)[0].reason == "time_limit"
    tracker.command("go to the red cube", 20.0)
    assert tracker.stop_service(21.0)[0].reason == "stop_service"
    tracker.command("go to the red cube", 30.0)
    assert tracker.shutdown(31.0)[0].reason == "shutdown"
    assert tracker.shutdown(32.0) == []


def test_keys_end_with_an_outcome_or_judge_the_last_episode():
    tracker = EpisodeTracker()
    assert tracker.key(Key.SUCCEEDED, 0.0) == []  # no episode at all
    tracker.command("go to the red cube", 1.0)
    (end,) = tracker.key(Key.FAILED, 2.0)
    assert (end.reason, end.outcome) == ("key", "failed")
    (mark,) = tracker.key(Key.RERECORD, 3.0)  # after the end: re-judges episode 1
    assert (mark.kind, mark.episode, mark.outcome) == ("outcome", 1, "rerecord")
    assert tracker.outcomes == {1: Outcome.RERECORD}


def test_marks_read_back_as_spans_with_their_last_outcome():
    tracker = EpisodeTracker()
    events = [
        *tracker.command("go to the red cube", 1.0),
        *tracker.command("stop", 4.0),
        *tracker.key(Key.SUCCEEDED, 5.0),
        *tracker.command("go to the blue ball", 6.0),
    ]
    read = [Event.from_json(e.to_json(), e.time) for e in events]
    first, second = episode_spans(read, bag_end=9.0)
    assert (first.task, first.start, first.end, first.outcome) == (
        "go to the red cube",
        1.0,
        4.0,
        Outcome.SUCCEEDED,
    )
    assert (second.end, second.reason, second.outcome) == (9.0, "shutdown", Outcome.UNMARKED)
    assert first.outcome.trained and not Outcome.RERECORD.trained


def test_bags_without_marks_are_split_by_their_voice_commands():
    spans = spans_from_commands(
        [(1.0, "go to the red cube"), (3.0, "stop"), (5.0, "go to the blue ball")], bag_end=8.0
    )
    assert [(s.task, s.start, s.end) for s in spans] == [
        ("go to the red cube", 1.0, 3.0),
        ("go to the blue ball", 5.0, 8.0),
    ]


@pytest.mark.parametrize("text", ["not json", '{"event": "jump", "episode": 1}', '{"x": 1}'])
def test_strings_that_are_not_marks_are_refused(text):
    with pytest.raises(ValueError, match="episode event"):
        Event.from_json(text, 0.0)
