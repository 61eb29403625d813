import math

import numpy as np
import pytest

from vla_ros.learn.collect import REFUSAL_DEMO_STEPS, collect
from vla_ros.learn.dataset import iter_episodes, read_meta
from vla_ros.learn.episodes import episode_seed
from vla_ros.learn.evaluate import (
    REFUSAL_HORIZON,
    Deployment,
    PolicyController,
    evaluate,
    run_episode,
)
from vla_ros.logic.safety import Proposal, SafetyGovernor
from vla_ros.model.policy import ActionProposal, Observation, Policy
from vla_ros.sim.scenes import compositional
from vla_ros.sim.tasks import (
    NONSENSE_COMMANDS,
    TRAINING_NONSENSE,
    Split,
    TaskKind,
    TaskState,
    make_task,
)
from vla_ros.sim.world import SimWorld


@pytest.mark.parametrize(("scene", "joints", "channels"), [("mobile", 2, 2), ("humanoid", 15, 15)])
def test_collected_demonstrations_read_back_with_the_right_shapes(
    tmp_path, small_camera, scene, joints, channels
):
    summary = collect(
        scene,
        tmp_path,
        episodes=2,
        seed=3,
        image_size=(32, 48),
        camera_size=small_camera,
        hold_steps=3,
        progress=False,
    )
    meta = read_meta(tmp_path)
    assert meta.scene == scene and meta.image_size == (32, 48)
    assert len(meta.joint_names) == joints and len(meta.action_names) == channels
    episodes = list(iter_episodes(tmp_path))
    assert len(episodes) == summary.episodes == 2
    assert sum(len(e) for e in episodes) == summary.steps
    for episode in episodes:
        steps = len(episode)
        assert episode.success
        assert episode.images.shape == (steps, 32, 48, 3)
        assert episode.joint_positions.shape == episode.joint_velocities.shape == (steps, joints)
        assert episode.actions.shape == (steps, channels)
        assert episode.images.std() > 10  # real pictures, not blank frames
        assert np.abs(episode.actions[:-3]).max() > 0.1  # the expert moved ...
        assert not episode.actions[-3:].any()  # ... and rests at the target
    assert not np.array_equal(episodes[0].images[0], episodes[1].images[0])


def test_the_expert_solves_every_evaluation_episode_with_held_out_phrasings(small_camera):
    result = evaluate(
        "arm", episodes=3, split=Split.HELD_OUT, camera_size=small_camera, progress=False
    )
    assert result.success_rate == 1.0
    assert len({episode.seed for episode in result.episodes}) == 3


class TurnInPlace(Policy):
    """A stand-in policy with its channels in another order than the scene's."""

    action_names = ("angular_z", "linear_x")
    joint_names = ("right_wheel_joint", "left_wheel_joint")

    def __init__(self):
        self.observations = []

    def select_action(self, observation: Observation) -> ActionProposal:
        self.observations.append(observation)
        return ActionProposal(np.array([1.0, 0.0], dtype=np.float32), uncertainty=0.1)

    def reset(self) -> None:
        self.observations.clear()


def test_a_policy_is_driven_through_its_contract(worlds):
    world = worlds("mobile")
    policy = TurnInPlace()
    controller = PolicyController(policy, world, image_size=(16, 24))
    result = run_episode(world, controller, seed=8, instruction="go to the purple cone")
    # A command naming nothing is watched for REFUSAL_HORIZON: turning on the spot is no refusal.
    assert result.state is TaskState.UNKNOWN_TARGET and result.refused is False
    assert result.steps == round(REFUSAL_HORIZON / world.spec.control_period)
    world.reset(seed=8)
    yaw0 = world.base_pose()[2]
    world.set_instruction("Go to the  RED cube")
    for _ in range(5):
        world.apply_command(controller.act(world))
        world.step()
    assert math.remainder(world.base_pose()[2] - yaw0, 2 * math.pi) == pytest.approx(0.5, abs=0.05)
    observation = policy.observations[-1]
    assert (
        observation.image.shape == (16, 24, 3) and observation.instruction == "go to the red cube"
    )
    left, right = world.joint_velocities(("left_wheel_joint", "right_wheel_joint"))
    np.testing.assert_allclose(observation.joint_velocities, [right, left], atol=1e-4)
    assert controller.mean_uncertainty == pytest.approx(0.1)


def test_a_policy_commanding_channels_the_scene_lacks_is_refused(worlds):
    class ArmPolicy(TurnInPlace):
        action_names = ("elbow_joint",)

    with pytest.raises(ValueError, match="linear_x, angular_z"):
        PolicyController(ArmPolicy(), worlds("mobile"))


def test_a_policy_is_evaluated_with_its_uncertainty(small_camera):
    with SimWorld("mobile", camera_size=small_camera, episode_timeout=1.0) as world:
        result = evaluate(
            "mobile", 2, TurnInPlace(), image_size=(16, 16), world=world, progress=False
        )
    assert result.success_rate == 0.0  # turning on the spot reaches nothing
    assert all(e.state is TaskState.TIMED_OUT and e.steps == 10 for e in result.episodes)
    assert all(e.mean_uncertainty == pytest.approx(0.1) for e in result.episodes)


class Scripted(Policy):
    """Proposals that exercise the safety layer: too fast for the limits, sudden, uncertain, very
    uncertain. It also notes the command the robot had when each picture was taken."""

    def __init__(self, world, actions, uncertainties):
        self.action_names = self.joint_names = world.spec.action_names
        self.world = world
        self.script = list(zip(actions, uncertainties, strict=True))
        self.proposals = []  # (time of the picture, action, uncertainty)
        self.in_force = []  # the robot's command at that time

    def select_action(self, observation):
        action, uncertainty = self.script[len(self.proposals) % len(self.script)]
        self.proposals.append((self.world.time, np.asarray(action, float), uncertainty))
        self.in_force.append(self.world.command)
        return ActionProposal(np.asarray(action, np.float32), uncertainty)

    def reset(self):
        pass


def test_the_governed_evaluation_applies_the_safety_nodes_scaling_and_limits(small_camera):
    deployment = Deployment.for_scene("arm", latency=0.05)
    config = deployment.safety
    slow = (config.uncertainty_slowdown + config.uncertainty_stop) / 2
    # The six arm joints and the gripper's finger.
    actions = [[3.0, 0, 0, 0, 0, 0, 0], [0, -0.8, 0.4, 0, 0, 0, 0.05], [0, 0.8, -0.4, 0.2, 0, 0, 0]]
    uncertainties = [0.0, slow, config.uncertainty_stop]
    with SimWorld("arm", camera_size=small_camera, episode_timeout=1.5) as world:
        policy = Scripted(world, actions * 5, uncertainties * 5)
        result = run_episode(
            world, PolicyController(policy, world), 3, "reach the red cube", deployment
        )
    assert result.steps == 15
    # The same proposals at the same times through the safety node's own logic and settings.
    reference = SafetyGovernor(config)
    expected = []
    for stamp, action, uncertainty in policy.proposals:
        names = world.spec.action_names
        decision = reference.on_proposal(
            Proposal(stamp, names, action, uncertainty), stamp + deployment.latency
        )
        expected.append(decision.velocities)
    # The command in force at each picture is the decision on the previous one.
    np.testing.assert_allclose(np.array(policy.in_force[1:]), np.array(expected[:-1]), atol=1e-12)
    # ... and it is not the bare proposal: limits, acceleration, scaling and stops acted.
    assert np.abs(np.array(policy.in_force)).max() <= config.max_joint_velocity
    assert not np.allclose(np.array(policy.in_force[1:]), [p[1] for p in policy.proposals[:-1]])
    assert result.stopped == pytest.approx(5 * deployment.control_period)
    assert result.slowed == pytest.approx(5 * deployment.control_period)


@pytest.mark.parametrize(("moving_steps", "refused"), [(0, True), (5, True), (12, False)])
def test_a_command_naming_nothing_is_refused_only_when_the_robot_stops_within_a_second(
    small_camera, moving_steps, refused
):
    deployment = Deployment.for_scene("arm", latency=0.05)
    steps = round(REFUSAL_HORIZON / deployment.control_period)
    move = [0.0, -0.3, 0.3, 0, 0, 0, 0]
    actions = [move] * moving_steps + [[0.0] * 7] * (steps - moving_steps)
    with SimWorld("arm", camera_size=small_camera) as world:
        policy = Scripted(world, actions, [0.0] * steps)
        result = run_episode(
            world, PolicyController(policy, world), 3, "reach the green cube", deployment
        )
    assert result.state is TaskState.UNKNOWN_TARGET and result.steps == steps
    assert result.refused is refused and result.success is refused


def test_balanced_targets_show_each_placement_with_different_objects_named(
    tmp_path, small_camera, worlds
):
    collect(
        "arm",
        tmp_path,
        episodes=4,
        seed=5,
        image_size=(24, 32),
        camera_size=small_camera,
        targets_per_placement=2,
        progress=False,
    )
    first, second, third, _ = iter_episodes(tmp_path)
    # One placement, two commands: the same first picture and pose, other objects named.
    np.testing.assert_array_equal(first.images[0], second.images[0])
    np.testing.assert_array_equal(first.joint_positions[0], second.joint_positions[0])
    objects = worlds("arm").objects
    named = [make_task(e.instruction, objects).target for e in (first, second)]
    assert None not in named and named[0] != named[1]
    assert not np.array_equal(first.images[0], third.images[0])  # the next placement


def test_refusals_show_the_same_picture_with_a_command_naming_nothing_and_no_motion(
    tmp_path, small_camera, worlds
):
    scene = compositional("arm")
    collect(
        scene,
        tmp_path,
        episodes=9,
        seed=5,
        image_size=(24, 32),
        camera_size=small_camera,
        targets_per_placement=2,
        refusals=1,
        progress=False,
    )
    episodes = list(iter_episodes(tmp_path))
    world = worlds("arm", "compositional")
    for placement in range(3):
        first, second, refused = episodes[3 * placement : 3 * placement + 3]
        assert first.names_target and second.names_target and not refused.names_target
        np.testing.assert_array_equal(first.images[0], refused.images[0])
        world.reset(episode_seed(5, placement))
        status = world.set_instruction(refused.instruction)
        assert status.state is TaskState.UNKNOWN_TARGET, refused.instruction
        assert world.set_instruction(first.instruction).target is not None
        assert len(refused) == REFUSAL_DEMO_STEPS and not np.any(refused.actions)
        assert np.all(np.isnan(refused.target_pixels))
    # absent, ambiguous, nonsense in turn; nonsense from the training list, not evaluation's
    assert any(e.instruction in TRAINING_NONSENSE for e in episodes)
    assert not any(e.instruction in NONSENSE_COMMANDS for e in episodes)


def test_max_steps_keeps_the_first_steps_of_the_same_demonstrations(tmp_path, small_camera):
    common = dict(episodes=3, seed=5, image_size=(24, 32), camera_size=small_camera, progress=False)
    collect("arm", tmp_path / "whole", **common)
    summary = collect("arm", tmp_path / "first", max_steps=2, **common)
    assert summary.steps == 6 and summary.successes == 0  # cut short: not solved
    for whole, first in zip(
        iter_episodes(tmp_path / "whole"), iter_episodes(tmp_path / "first"), strict=True
    ):
        assert len(whole) > 2 and len(first) == 2 and whole.instruction == first.instruction
        np.testing.assert_array_equal(first.images, whole.images[:2])
        np.testing.assert_array_equal(first.actions, whole.actions[:2])
        np.testing.assert_array_equal(first.target_pixels, whole.target_pixels[:2])
    with pytest.raises(ValueError, match="max_steps"):
        collect("arm", tmp_path / "none", max_steps=0, **common)


RGB = {"red": 0, "green": 1, "blue": 2}


@pytest.mark.parametrize("scene", ["arm", "humanoid"])
def test_demonstrations_record_where_the_named_object_is_in_the_picture(tmp_path, worlds, scene):
    """The grounding head's label: at the recorded picture position, the picture shows the
    named object's colour (and moving the picture moves the label with it, see test_training)."""
    collect(
        scene,
        tmp_path,
        episodes=6,
        seed=11,
        image_size=(120, 160),
        camera_size=(240, 320),
        targets_per_placement=3,
        progress=False,
    )
    objects = worlds(scene).objects
    checked = 0
    for episode in iter_episodes(tmp_path):
        colour = make_task(episode.instruction, objects).target.colour
        assert episode.target_pixels.shape == (len(episode), 2)
        x, y = episode.target_pixels[0]
        assert -1 <= x <= 1 and -1 <= y <= 1, "the named object starts in view"
        if colour not in RGB:
            continue
        row, col = round((y + 1) / 2 * 119), round((x + 1) / 2 * 159)
        patch = episode.images[0, row - 2 : row + 3, col - 2 : col + 3].reshape(-1, 3).astype(int)
        channel = patch[:, RGB[colour]]
        others = np.delete(patch, RGB[colour], axis=1).max(1)
        # a pixel of the object's own colour within 2 pixels (the table is beige: R - G is 34)
        assert (channel - others > 60).any(), (episode.instruction, patch)
        checked += 1
    assert checked >= 3


def test_pick_and_place_demonstrations_take_turns_and_close_the_gripper(tmp_path, small_camera):
    summary = collect(
        "arm",
        tmp_path,
        episodes=2,
        seed=3,
        image_size=(24, 32),
        camera_size=small_camera,
        hold_steps=2,
        progress=False,
        tasks=(TaskKind.PICK, TaskKind.PLACE),
    )
    assert summary.successes == 2
    meta = read_meta(tmp_path)
    finger = list(meta.action_names).index("gripper_finger_joint")
    pick, place = iter_episodes(tmp_path)
    kinds = (TaskKind.REACH, TaskKind.PICK, TaskKind.PLACE)
    objects, places = worlds_objects(small_camera)
    assert make_task(pick.instruction, objects, places, kinds).kind is TaskKind.PICK
    assert make_task(place.instruction, objects, places, kinds).kind is TaskKind.PLACE
    for episode in (pick, place):
        assert (episode.actions[:, finger] < 0).any()  # the expert closed the fingers
    assert (place.actions[:, finger] > 0)[-10:].any()  # ... and opened them to let go


def worlds_objects(camera_size):
    with SimWorld("arm", camera_size=camera_size) as world:
        return world.objects, world.places
