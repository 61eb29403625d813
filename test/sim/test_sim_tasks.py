import numpy as np
import pytest

from vla_ros.sim.tasks import (
    HELD_OUT_NOUNS,
    SHAPE_WORDS,
    TRAIN_NOUNS,
    SceneObject,
    Split,
    Task,
    TaskKind,
    TaskState,
    TaskTracker,
    describe,
    is_stop_command,
    make_task,
)

OBJECTS = (
    SceneObject("red", "cube", "object_red_cube"),
    SceneObject("green", "sphere", "object_green_sphere"),
    SceneObject("blue", "cylinder", "object_blue_cylinder"),
    SceneObject("yellow", "capsule", "object_yellow_capsule"),
)


@pytest.mark.parametrize(
    ("instruction", "target"),
    [
        ("go to the red cube", "red cube"),
        ("Drive to the RED BLOCK, please!", "red cube"),
        ("reach the ball", "green sphere"),
        ("touch the blue one", "blue cylinder"),
        ("approach the blue can", "blue cylinder"),
        ("find the yellow pill", "yellow capsule"),
        ("go to the crimson box", "red cube"),
        ("the green spheres", "green sphere"),
        ("go to the red cube next to the ball", "red cube"),
    ],
)
def test_instructions_name_their_target_by_colour_shape_and_synonyms(instruction, target):
    task = make_task(instruction, OBJECTS)
    assert task.target is not None and task.target.name == target


@pytest.mark.parametrize(
    ("instruction", "reason"),
    [
        ("go to the purple cone", "no purple cone"),
        ("go to the red ball", "no red sphere"),
        ("dance a little", "names no object"),
        ("", "names no object"),
    ],
)
def test_an_absent_or_unnamed_object_is_a_task_without_target_and_says_why(instruction, reason):
    task = make_task(instruction, OBJECTS)
    assert task.target is None
    assert reason in task.reason
    assert "red cube" in task.reason or "ambiguous" in task.reason


def test_a_description_matching_two_objects_is_ambiguous():
    objects = (*OBJECTS, SceneObject("red", "sphere", "object_red_sphere"))
    task = make_task("go to the red one", objects)
    assert task.target is None and "ambiguous" in task.reason


@pytest.mark.parametrize("text", ["stop", "HALT!", "please freeze now", "stop the robot"])
def test_stop_words_anywhere_make_a_stop_command(text):
    assert is_stop_command(text)


@pytest.mark.parametrize("text", ["go to the red cube", "stopwatch", "unstoppable"])
def test_other_sentences_are_not_stop_commands(text):
    assert not is_stop_command(text)


def test_training_and_held_out_instructions_use_disjoint_nouns_that_all_parse():
    rng = np.random.default_rng(0)
    for shape in TRAIN_NOUNS:
        assert not set(TRAIN_NOUNS[shape]) & set(HELD_OUT_NOUNS[shape])
        assert set(TRAIN_NOUNS[shape]) | set(HELD_OUT_NOUNS[shape]) <= set(SHAPE_WORDS[shape])
    for kind in TaskKind:
        for split in Split:
            for target in OBJECTS:
                for _ in range(10):
                    text = describe(target, kind, rng, split)
                    assert make_task(text, OBJECTS).target == target
                    nouns = TRAIN_NOUNS if split is Split.TRAIN else HELD_OUT_NOUNS
                    assert any(noun in text.split() for noun in nouns[target.shape])


def test_tracker_runs_until_success_and_keeps_the_outcome():
    tracker = TaskTracker(success_distance=0.5, timeout=10.0)
    assert tracker.status.state is TaskState.IDLE
    status = tracker.start(Task("go to the red cube", OBJECTS[0]), now=1.0)
    assert status.state is TaskState.RUNNING and status.target == "red cube"
    assert tracker.update(2.0, distance=2.0).state is TaskState.RUNNING
    done = tracker.update(3.0, distance=0.4)
    assert done.state is TaskState.SUCCEEDED and done.finished_at == 3.0
    assert tracker.update(4.0, distance=3.0) == done


def test_tracker_times_out_and_reports_when():
    tracker = TaskTracker(success_distance=0.5, timeout=2.0)
    tracker.start(Task("go to the red cube", OBJECTS[0]), now=1.0)
    assert tracker.update(2.9, distance=1.0).state is TaskState.RUNNING
    status = tracker.update(3.0, distance=1.0)
    assert status.state is TaskState.TIMED_OUT and status.finished_at == 3.0
    assert status.to_dict()["state"] == "timed_out"


def test_tracker_reports_an_unknown_target_at_once():
    tracker = TaskTracker(success_distance=0.5, timeout=2.0)
    status = tracker.start(make_task("go to the purple cone", OBJECTS), now=0.0)
    assert status.state is TaskState.UNKNOWN_TARGET and "purple cone" in status.message
    assert tracker.update(5.0, distance=None) == status


def test_tracker_refuses_nonsense_settings():
    with pytest.raises(ValueError, match="timeout"):
        TaskTracker(success_distance=0.5, timeout=0.0)
