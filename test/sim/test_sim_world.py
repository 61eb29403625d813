import math
import subprocess
import sys

import numpy as np
import pytest

from vla_ros.sim.experts import expert_action
from vla_ros.sim.scenes import SCENES, default_instruction
from vla_ros.sim.tasks import TaskState
from vla_ros.sim.world import SimWorld

SCENE_NAMES = tuple(SCENES)


def colour_mask(image: np.ndarray, colour: str) -> np.ndarray:
    """Pixels that look like one of the object colours (shading makes them darker or lighter)."""
    r, g, b = (image[..., i].astype(int) for i in range(3))
    return {
        "red": (r > 110) & (g < 0.45 * r) & (b < 0.45 * r),
        "green": (g > 90) & (r < 0.6 * g) & (b < 0.6 * g),
        "blue": (b > 110) & (r < 0.5 * b) & (g < 0.6 * b),
        "yellow": (r > 120) & (g > 0.75 * r) & (b < 0.45 * r),
    }[colour]


def test_an_unknown_scene_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="mobile, arm, humanoid"):
        SimWorld("kitchen")


def test_a_nonsense_camera_size_is_refused():
    with pytest.raises(ValueError, match="camera size"):
        SimWorld("mobile", camera_size=(0, 64))


@pytest.mark.parametrize("scene", SCENE_NAMES)
def test_the_picture_shows_each_object_where_the_scene_put_it(worlds, scene):
    world = worlds(scene)
    world.reset(seed=3)
    if scene == "mobile":
        # Put every object in a row 1.6 m in front of the base, so all are in the picture.
        x, y, yaw = world.base_pose()
        ahead, left = (
            np.array([math.cos(yaw), math.sin(yaw)]),
            np.array([-math.sin(yaw), math.cos(yaw)]),
        )
        for obj, offset in zip(world.objects, (-0.75, -0.25, 0.25, 0.75), strict=True):
            body = world.model.body(obj.body)
            world.data.mocap_pos[body.mocapid[0], :2] = [x, y] + 1.6 * ahead + offset * left
        world.step()
    image = world.render()
    height, width = image.shape[:2]
    for obj in world.objects:
        row, column = world.camera_pixel(world.object_position(obj))
        assert 0 <= row < height and 0 <= column < width, f"{obj.name} out of the picture"
        window = image[
            max(0, int(row) - 3) : int(row) + 4, max(0, int(column) - 3) : int(column) + 4
        ]
        assert colour_mask(window, obj.colour).any(), f"no {obj.colour} where the {obj.name} is"
        # And that colour is nowhere far from it (each object has its own colour).
        rows, columns = np.nonzero(colour_mask(image, obj.colour))
        assert np.all(np.hypot(rows - row, columns - column) < width / 3)


def test_a_forward_twist_drives_the_base_forward_and_spins_both_wheels(worlds):
    world = worlds("mobile")
    world.reset(seed=1)
    x0, y0, yaw0 = world.base_pose()
    wheels0 = world.joint_state().positions
    world.apply_command([0.3, 0.0])
    for _ in range(10):
        world.step()
    x, y, yaw = world.base_pose()
    travelled = np.array([x - x0, y - y0])
    heading = np.array([math.cos(yaw0), math.sin(yaw0)])
    assert travelled @ heading == pytest.approx(0.3, abs=0.03)
    assert abs(travelled @ [-heading[1], heading[0]]) < 0.01
    assert abs(yaw - yaw0) < 0.01
    state = world.joint_state()
    assert state.names == ("left_wheel_joint", "right_wheel_joint")
    np.testing.assert_allclose(state.velocities, [0.3 / 0.06] * 2, rtol=0.05)
    np.testing.assert_allclose(state.positions - wheels0, [0.3 / 0.06] * 2, rtol=0.1)


def test_a_turn_turns_the_base_on_the_spot(worlds):
    world = worlds("mobile")
    world.reset(seed=1)
    x0, y0, yaw0 = world.base_pose()
    world.apply_command([0.0, 1.0])
    for _ in range(5):
        world.step()
    x, y, yaw = world.base_pose()
    assert math.remainder(yaw - yaw0, 2 * math.pi) == pytest.approx(0.5, abs=0.03)
    assert math.hypot(x - x0, y - y0) < 0.01
    left, right = world.joint_state().velocities
    assert left < 0 < right  # turning left: the right wheel drives forward


@pytest.mark.parametrize(
    ("scene", "moved"),
    [("arm", ["elbow_joint"]), ("humanoid", ["left_elbow_joint", "neck_yaw_joint"])],
)
def test_joint_velocity_commands_move_the_commanded_joints_only(worlds, scene, moved):
    world = worlds(scene)
    world.reset(seed=2)
    names = world.spec.action_names
    before = world.joint_state().positions
    command = np.zeros(len(names))
    for name in moved:
        command[names.index(name)] = -0.4 if "elbow" in name else 0.4
    world.apply_command(command)
    for _ in range(5):
        world.step()
    change = world.joint_state().positions - before
    np.testing.assert_allclose(change, command * 0.5, atol=0.02)


def test_commands_beyond_the_limits_are_clipped_and_bad_ones_refused(worlds):
    world = worlds("mobile")
    world.reset(seed=0)
    world.apply_command([5.0, -9.0])
    np.testing.assert_allclose(world.command, [0.5, -1.5])
    with pytest.raises(ValueError, match="linear_x, angular_z"):
        world.apply_command([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="NaN"):
        world.apply_command([float("nan"), 0.0])
    np.testing.assert_allclose(world.command, [0.5, -1.5])


@pytest.mark.parametrize("scene", SCENE_NAMES)
def test_the_same_seed_gives_the_same_scene_and_another_seed_another(worlds, scene):
    world = worlds(scene)

    def snapshot(seed):
        world.reset(seed)
        objects = np.array([world.object_position(obj) for obj in world.objects])
        return objects, world.data.qpos.copy(), world.render()

    first, again, other = snapshot(11), snapshot(11), snapshot(12)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(first[0], other[0])
    assert not np.array_equal(first[2], other[2])


def test_an_episode_replays_exactly_from_its_seed_and_commands(worlds):
    world = worlds("humanoid")
    runs = []
    for _ in range(2):
        world.reset(seed=5)
        world.set_instruction("reach the red cube")
        for _ in range(5):
            world.apply_command(expert_action(world))
            world.step()
        runs.append(world.data.qpos.copy())
    np.testing.assert_array_equal(*runs)


@pytest.mark.parametrize("scene", SCENE_NAMES)
def test_the_expert_solves_a_task_and_success_is_detected(worlds, scene):
    world = worlds(scene)
    world.reset(seed=21)
    target = world.objects[1]
    status = world.set_instruction(f"go to the {target.name}")
    assert status.state is TaskState.RUNNING and status.target == target.name
    while not status.state.finished:
        world.apply_command(expert_action(world))
        status = world.step()
    assert status.state is TaskState.SUCCEEDED, status
    assert status.distance <= world.spec.success_distance
    assert 0 < status.finished_at <= world.spec.episode_timeout
    assert not expert_action(world).any()  # done: the expert stops


def test_an_absent_target_is_reported_and_nothing_moves(worlds):
    world = worlds("arm")
    world.reset(seed=0)
    status = world.set_instruction("touch the purple cone")
    assert status.state is TaskState.UNKNOWN_TARGET
    assert "no purple cone" in status.message and "red cube" in status.message
    assert not expert_action(world).any()
    world.step()
    assert world.task_status().state is TaskState.UNKNOWN_TARGET


def test_the_world_says_where_each_object_is_for_words_of_place(worlds):
    world = worlds("arm")
    world.reset(5)
    nearest = min(world.objects, key=world.distance_to)
    farthest = max(world.objects, key=world.distance_to)
    leftmost = min(world.objects, key=lambda obj: world.camera_pixel(world.object_position(obj))[1])
    assert world.set_instruction("reach the nearest one").target == nearest.name
    assert world.set_instruction("reach the farthest one").target == farthest.name
    assert world.set_instruction("reach the leftmost one").target == leftmost.name
    assert len({nearest.name, farthest.name}) == 2


def test_a_stop_command_keeps_the_task(worlds):
    world = worlds("mobile")
    world.reset(seed=0)
    world.set_instruction("go to the green ball")
    assert world.set_instruction("STOP!").target == "green sphere"


def test_a_task_times_out_when_the_robot_does_not_get_there():
    with SimWorld("mobile", camera_size=(8, 8), seed=0, episode_timeout=1.0) as world:
        world.set_instruction("go to the blue cylinder")
        for _ in range(9):
            assert world.step().state is TaskState.RUNNING
        status = world.step()
        assert status.state is TaskState.TIMED_OUT
        assert status.finished_at == pytest.approx(1.0)


def test_reset_starts_the_current_instruction_again(worlds):
    world = worlds("mobile")
    world.set_instruction("go to the yellow capsule")
    world.step()
    status = world.reset(seed=4)
    assert status.state is TaskState.RUNNING and status.started_at == 0.0
    assert status.target == "yellow capsule"


@pytest.mark.parametrize(
    ("scene", "instruction"),
    [
        ("mobile", "go to the red cube"),
        ("arm", "reach the red cube"),
        ("humanoid", "reach the red cube"),
    ],
)
def test_the_default_instruction_is_a_trained_phrasing_for_an_object_of_the_scene(
    worlds, scene, instruction
):
    assert default_instruction(scene) == instruction
    status = worlds(scene).set_instruction(default_instruction(scene))
    assert status.state is TaskState.RUNNING and status.target == "red cube"


def test_the_world_knows_nothing_of_the_experts():
    """The experts read the world; the world, and everything it imports, never loads them."""
    code = "import sys, vla_ros.sim.world; print('vla_ros.sim.experts' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
