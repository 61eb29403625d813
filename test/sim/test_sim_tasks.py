import numpy as np
import pytest

from vla_ros.sim.tasks import (
    HELD_OUT_NOUNS,
    HELD_OUT_PLACE_NOUNS,
    HOLD_SECONDS,
    SHAPE_WORDS,
    TRAIN_NOUNS,
    TRAIN_PLACE_NOUNS,
    SceneObject,
    Split,
    Task,
    TaskKind,
    TaskState,
    TaskTracker,
    Whereabouts,
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
PLACES = (
    SceneObject("blue", "plate", "place_blue_plate"),
    SceneObject("grey", "bowl", "place_grey_bowl"),
)
GRIPPER_KINDS = (TaskKind.REACH, TaskKind.PICK, TaskKind.PLACE)


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
        ("the ball next to the red cube", "green sphere"),
        # a distractor named is never the target
        ("go to the red cube, not the green ball", "red cube"),
        ("not the green ball but the red cube", "red cube"),
        ("reach the blue one, not the yellow capsule", "blue cylinder"),
        ("go to the ball, not the red one", "green sphere"),
        ("go to the sphere instead of the cube", "green sphere"),
        ("go to the green ball rather than the red cube", "green sphere"),
    ],
)
def test_instructions_name_their_target_by_colour_shape_synonyms_and_what_is_not_meant(
    instruction, target
):
    task = make_task(instruction, OBJECTS)
    assert task.target is not None and task.target.name == target


@pytest.mark.parametrize(
    ("instruction", "reason"),
    [
        ("go to the purple cone", "no purple cone"),
        ("go to the red ball", "no red sphere"),
        ("dance a little", "names no object"),
        ("", "names no object"),
        # only what is not meant: no single object
        ("not the green ball", "'object other than the green sphere' is ambiguous"),
        ("don't go to the red cube", "other than the red cube"),
        ("the cube that is not red", "no cube other than the red one"),
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
    # "the object" fits every object: ambiguous among several, the one where there is one.
    task = make_task("touch the object", objects)
    assert task.target is None and "ambiguous" in task.reason
    assert make_task("reach the thing", objects[:1]).target == objects[0]


TWO_CUBES = (
    SceneObject("red", "cube", "object_red_cube"),
    SceneObject("red", "cube", "object_red_cube_2"),
    SceneObject("green", "sphere", "object_green_sphere"),
)
# The first red cube is left of the second and farther from the robot.
WHEREABOUTS = {
    "object_red_cube": Whereabouts(across=-0.5, distance=0.4),
    "object_red_cube_2": Whereabouts(across=0.3, distance=0.2),
    "object_green_sphere": Whereabouts(across=0.0, distance=0.1),
}


@pytest.mark.parametrize(
    ("instruction", "body"),
    [
        ("go to the left cube", "object_red_cube"),
        ("go to the red cube on the right", "object_red_cube_2"),
        ("the cube nearest you", "object_red_cube_2"),
        ("reach the farthest red block", "object_red_cube"),
        ("the nearest one", "object_green_sphere"),
    ],
)
def test_a_word_of_place_picks_one_of_two_objects_the_description_fits(instruction, body):
    task = make_task(instruction, TWO_CUBES, whereabouts=WHEREABOUTS)
    assert task.target is not None and task.target.body == body


def test_a_word_of_place_without_knowing_where_things_are_leaves_it_ambiguous():
    task = make_task("go to the left cube", TWO_CUBES)
    assert task.target is None and "'left' does not tell them apart" in task.reason
    out_of_view = {**WHEREABOUTS, "object_red_cube": Whereabouts(across=None, distance=0.4)}
    assert make_task("go to the left cube", TWO_CUBES, whereabouts=out_of_view).target is None
    nearest = make_task("the nearest cube", TWO_CUBES, whereabouts=out_of_view).target
    assert nearest is not None and nearest.body == "object_red_cube_2"


def test_a_negated_place_is_not_where_the_object_goes():
    task = make_task("put the cube in the bowl, not on the plate", OBJECTS, PLACES, GRIPPER_KINDS)
    assert task.target is not None and task.target.name == "red cube"
    assert task.place is not None and task.place.name == "grey bowl"


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
    for shape in TRAIN_PLACE_NOUNS:
        assert not set(TRAIN_PLACE_NOUNS[shape]) & set(HELD_OUT_PLACE_NOUNS[shape])
    for kind in TaskKind:
        # What a plain instruction means is the scene's own kind: go to, or reach.
        kinds = (kind,) if kind in (TaskKind.GO_TO, TaskKind.REACH) else GRIPPER_KINDS
        for split in (Split.TRAIN, Split.HELD_OUT):  # the other splits: test_language_splits.py
            for target in OBJECTS:
                for index in range(10):
                    place = PLACES[index % 2] if kind is TaskKind.PLACE else None
                    text = describe(target, kind, rng, split, place)
                    task = make_task(text, OBJECTS, PLACES, kinds)
                    assert (task.target, task.kind, task.place) == (target, kind, place), text
                    nouns = TRAIN_NOUNS if split is Split.TRAIN else HELD_OUT_NOUNS
                    assert any(noun in text.split() for noun in nouns[target.shape])


@pytest.mark.parametrize(
    ("instruction", "kind", "target", "place"),
    [
        ("pick up the red cube", TaskKind.PICK, "red cube", None),
        ("Lift the green ball, please", TaskKind.PICK, "green sphere", None),
        ("grab the yellow one", TaskKind.PICK, "yellow capsule", None),
        ("put the red cube on the blue plate", TaskKind.PLACE, "red cube", "blue plate"),
        ("put the red cube in the bowl", TaskKind.PLACE, "red cube", "grey bowl"),
        ("place the blue can onto the plate", TaskKind.PLACE, "blue cylinder", "blue plate"),
        ("move the ball to the grey basin", TaskKind.PLACE, "green sphere", "grey bowl"),
        ("reach the red cube", TaskKind.REACH, "red cube", None),
    ],
)
def test_pick_and_place_instructions_name_the_object_and_the_place(
    instruction, kind, target, place
):
    task = make_task(instruction, OBJECTS, PLACES, GRIPPER_KINDS)
    assert task.kind is kind and task.reason == ""
    assert task.target is not None and task.target.name == target
    assert (task.place.name if task.place else None) == place


@pytest.mark.parametrize(
    ("instruction", "reason"),
    [
        ("put the red cube on the green plate", "no green plate"),
        ("put the purple cone in the bowl", "no purple cone"),
        ("put it on the plate", "names no object"),
        ("pick up the purple cone", "no purple cone"),
    ],
)
def test_an_absent_object_or_place_gives_a_pick_or_place_task_without_target(instruction, reason):
    task = make_task(instruction, OBJECTS, PLACES, GRIPPER_KINDS)
    assert task.target is None and reason in task.reason


def test_a_place_matching_two_places_is_ambiguous():
    places = (*PLACES, SceneObject("red", "plate", "place_red_plate"))
    task = make_task("put the cube on the plate", OBJECTS, places, GRIPPER_KINDS)
    assert task.target is None and "ambiguous" in task.reason and "red plate" in task.reason


def test_a_robot_without_a_gripper_is_not_asked_to_pick_or_place():
    for text in ("pick up the red cube", "put the red cube on the blue plate"):
        task = make_task(text, OBJECTS, PLACES, (TaskKind.REACH,))
        assert task.target is None and "cannot do" in task.reason


def test_a_pick_succeeds_only_once_its_goal_has_held_without_a_break():
    tracker = TaskTracker(success_distance=0.04, timeout=10.0)
    tracker.start(make_task("pick up the red cube", OBJECTS, PLACES, GRIPPER_KINDS), now=0.0)
    hold = HOLD_SECONDS[TaskKind.PICK]
    assert tracker.update(1.0, distance=0.0, goal_met=True).state is TaskState.RUNNING
    # Dropped before the hold was over: the hold starts again.
    assert tracker.update(1.0 + hold / 2, distance=0.0, goal_met=False).state is TaskState.RUNNING
    assert tracker.update(2.0, distance=0.0, goal_met=True).state is TaskState.RUNNING
    assert tracker.update(2.0 + hold * 0.9, 0.0, goal_met=True).state is TaskState.RUNNING
    done = tracker.update(2.0 + hold, distance=0.0, goal_met=True)
    assert done.state is TaskState.SUCCEEDED and done.message == "picked up the red cube"
    assert done.kind == "pick"


def test_pick_and_place_tasks_get_more_time_than_a_reach():
    tracker = TaskTracker(success_distance=0.04, timeout=10.0)
    tracker.start(make_task("put the red cube in the bowl", OBJECTS, PLACES, GRIPPER_KINDS), 0.0)
    assert tracker.update(10.0, distance=0.3, goal_met=False).state is TaskState.RUNNING
    limit = tracker.time_limit(TaskKind.PLACE)
    assert limit > tracker.time_limit(TaskKind.PICK) > tracker.time_limit(TaskKind.REACH) == 10.0
    status = tracker.update(limit, distance=0.3, goal_met=False)
    assert status.state is TaskState.TIMED_OUT and status.place == "grey bowl"


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
