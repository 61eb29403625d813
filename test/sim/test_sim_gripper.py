"""The arm's gripper: finger commands, picking and placing judged from the simulator's state."""

import numpy as np
import pytest

from vla_ros.sim.experts import expert_action
from vla_ros.sim.tasks import HOLD_SECONDS, LIFT_HEIGHT, TaskKind, TaskState

FINGER = "gripper_finger_joint"


def solve(world, instruction, seed, controller=expert_action):
    world.reset(seed)
    status = world.set_instruction(instruction)
    while status.state is TaskState.RUNNING:
        world.apply_command(controller(world))
        status = world.step()
    world.stop()
    return status


def finger_command(world, speed):
    command = np.zeros(len(world.spec.action_names))
    command[world.spec.action_names.index(FINGER)] = speed
    return command


def test_the_finger_joint_is_commanded_like_the_other_joints(worlds):
    world = worlds("arm")
    world.reset(1)
    assert world.spec.joint_names[-1] == world.spec.action_names[-1] == FINGER
    opening = world.joint_positions([FINGER])[0]
    # Its position target moves at the commanded speed: closing at 5 cm/s for 0.4 s.
    world.apply_command(finger_command(world, -0.05))
    world.step(0.4)
    assert world.finger_target() == pytest.approx(opening - 0.02, abs=1e-6)
    world.stop()
    world.step(0.5)
    closed = world.joint_positions([FINGER])[0]
    assert closed == pytest.approx(opening - 0.02, abs=0.002)
    # A zero command holds it where it is (and the target never leaves the joint's range).
    world.step(0.5)
    assert world.joint_positions([FINGER])[0] == pytest.approx(closed, abs=1e-4)
    world.apply_command(finger_command(world, 0.1))
    world.step(1.0)
    assert world.finger_target() == pytest.approx(world.spec.gripper.open_position)


@pytest.mark.parametrize("kind", [TaskKind.PICK, TaskKind.PLACE])
def test_the_expert_picks_and_places_every_object(worlds, kind):
    world = worlds("arm")
    for index, obj in enumerate(world.objects):
        place = world.places[index % 2]
        instruction = (
            f"pick up the {obj.name}"
            if kind is TaskKind.PICK
            else f"put the {obj.name} {'on' if place.shape == 'plate' else 'in'} the {place.name}"
        )
        status = solve(world, instruction, seed=100 + index)
        assert status.state is TaskState.SUCCEEDED, status
        assert status.kind == kind.value
        if kind is TaskKind.PICK:  # still held up when the task ends
            assert world.grasped(obj)
            assert world.object_position(obj)[2] >= world.rest_height(obj) + LIFT_HEIGHT
        else:  # let go, and lying on (in) the place
            assert world.fingers_touching(obj) == 0
            centre, surface, radius = world.place_surface(place)
            position = world.object_position(obj)
            assert np.linalg.norm(position[:2] - centre) < radius
            assert position[2] - world.half_height(obj) == pytest.approx(surface, abs=0.01)


def test_a_lift_without_a_grasp_is_no_pick(worlds):
    """Success is judged from the simulator's state: the expert's every move, but with the
    fingers kept open, never counts, although the hand goes where a pick would take it."""

    def open_handed(world):
        command = expert_action(world)
        command[world.spec.action_names.index(FINGER)] = world.spec.action_limits[-1]
        return command

    world = worlds("arm")
    status = solve(world, "pick up the red cube", seed=3, controller=open_handed)
    assert status.state is TaskState.TIMED_OUT
    assert solve(world, "pick up the red cube", seed=3).state is TaskState.SUCCEEDED


def test_an_object_lying_on_the_place_by_itself_counts_once_still(worlds):
    world = worlds("arm")
    world.reset(5)
    cube, plate = world.find_object("red cube"), world.places[0]
    status = world.set_instruction(f"put the red cube on the {plate.name}")
    centre, surface, _ = world.place_surface(plate)
    # Set it down on the plate by hand (the world moves it; the gripper is far away).
    address = world.model.jnt_qposadr[world.model.body_jntadr[world.model.body(cube.body).id]]
    world.data.qpos[address : address + 3] = [*centre, surface + world.half_height(cube) + 0.01]
    status = world.step(0.1)
    assert status.state is TaskState.RUNNING  # falling, then settling: not yet at rest
    for _ in range(10):  # the task is judged after each step, as after each control period
        status = world.step(0.1)
    assert status.state is TaskState.SUCCEEDED and status.message.endswith("on the blue plate")
    assert status.finished_at - status.started_at >= 0.1 + HOLD_SECONDS[TaskKind.PLACE]


def test_an_object_beside_the_place_is_not_put_down(worlds):
    world = worlds("arm")
    world.reset(5)
    status = world.set_instruction("put the red cube in the bowl")
    for _ in range(10):  # resting still, on the table
        status = world.step(0.1)
    assert status.state is TaskState.RUNNING
