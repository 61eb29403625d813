"""sim_node in a real rclpy graph: what a robot stack sees on the topics and services."""

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from geometry_msgs.msg import Twist
from ros_harness import Collector, Repeater, RosGraph, wait_until
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from vla_ros.ros import qos
from vla_ros.ros.messages import image_pixels, seconds
from vla_ros.sim.experts import expert_action

pytestmark = pytest.mark.ros

REPO = Path(__file__).resolve().parents[2]
SMALL = {"camera_width": 64, "camera_height": 48}


@pytest.fixture
def sim_ros(sim_domain_id):
    graph = RosGraph(sim_domain_id)
    yield graph
    graph.close()


def start_sim(ros, **parameters):
    from vla_ros.nodes.sim_node import SimNode

    node = ros.add(SimNode, {**SMALL, **parameters})
    return node


def statuses(collector: Collector) -> list[dict]:
    return [json.loads(msg.data) for msg in collector.messages]


def latest_joints(collector: Collector, names) -> np.ndarray:
    msg = collector.last
    return np.array([msg.position[list(msg.name).index(name)] for name in names])


def test_images_arrive_at_the_set_rate_and_the_clock_advances(sim_ros):
    images = sim_ros.collect(Image, "/camera/image_raw", qos.SENSOR)
    clock = sim_ros.collect(Clock, "/clock", 10)
    start_sim(sim_ros, camera_rate_hz=20.0)
    assert images.wait_for() is not None
    window_start = time.monotonic()
    time.sleep(1.5)
    window = images.since(window_start)
    # One picture every 1/20 s of simulated time. On a busy machine the simulation runs slower
    # than real time (and says so on /diagnostics), so the count follows the simulated time.
    stamps = np.array([seconds(msg.header.stamp) for msg in window])
    np.testing.assert_allclose(np.diff(stamps), 0.05, atol=0.011)
    assert stamps[-1] - stamps[0] > 0.3
    assert len(window) == pytest.approx(20 * (stamps[-1] - stamps[0]) + 1, abs=2)
    image = images.last
    assert (image.width, image.height, image.encoding) == (64, 48, "rgb8")
    assert image_pixels(image).std() > 10
    ticks = [seconds(msg.clock) for msg in clock.messages]
    assert ticks[-1] > ticks[0] + 0.5
    assert all(b >= a for a, b in itertools.pairwise(ticks))


def test_the_picture_shows_the_objects_where_the_scene_put_them(sim_ros):
    images = sim_ros.collect(Image, "/camera/image_raw", qos.SENSOR)
    node = start_sim(sim_ros, scene="arm", seed=3)
    assert images.wait_for() is not None
    pixels = image_pixels(images.last)
    world = node.world
    for obj in world.objects:
        row, column = world.camera_pixel(world.object_position(obj))
        patch = pixels[int(row) - 1 : int(row) + 2, int(column) - 1 : int(column) + 2].astype(int)
        channel = {"red": 0, "green": 1, "blue": 2}.get(obj.colour)
        if channel is None:  # yellow: red and green high, blue low
            assert (patch[..., 0] > patch[..., 2] + 60).any() and (patch[..., 1] > 80).any()
        else:
            others = [c for c in range(3) if c != channel]
            assert (patch[..., channel] > patch[..., others].max(axis=-1) + 40).any(), obj.name


def moved(collector: Collector, names, before) -> np.ndarray:
    return latest_joints(collector, names) - before


def test_a_twist_drives_the_base_and_a_stale_one_stops_it(sim_ros):
    joints = sim_ros.collect(JointState, "/joint_states", qos.SENSOR)
    status = sim_ros.collect(String, "/sim/task_status", qos.LATCHED)
    start_sim(sim_ros, seed=2, task="go to the green ball", command_timeout=0.3)
    cmd_vel = sim_ros.publisher(Twist, "/cmd_vel", qos.COMMANDS)
    assert joints.wait_for() is not None and status.wait_for() is not None
    wheels = ("left_wheel_joint", "right_wheel_joint")
    distance_before = statuses(status)[-1]["distance"]

    forward = Twist()
    forward.linear.x = 0.3
    before = latest_joints(joints, wheels)
    repeater = Repeater(sim_ros, cmd_vel, lambda: forward, rate_hz=10.0)
    assert wait_until(lambda: (moved(joints, wheels, before) > 2.0).all())
    repeater.stop()
    left, right = moved(joints, wheels, before)
    assert left == pytest.approx(right, rel=0.05)  # straight ahead: both wheels alike
    assert wait_until(lambda: statuses(status)[-1]["distance"] != distance_before)
    # No more commands: after the driver timeout the wheels stand still.
    assert wait_until(lambda: np.allclose(joints.last.velocity, 0.0, atol=1e-3))

    turn = Twist()
    turn.angular.z = 1.0
    before = latest_joints(joints, wheels)
    repeater = Repeater(sim_ros, cmd_vel, lambda: turn, rate_hz=10.0)
    assert wait_until(lambda: np.abs(moved(joints, wheels, before)).min() > 0.5)
    repeater.stop()
    left, right = moved(joints, wheels, before)
    assert left < 0 < right and left == pytest.approx(-right, rel=0.05)  # left, on the spot


def test_joint_commands_move_the_commanded_joints(sim_ros):
    joints = sim_ros.collect(JointState, "/joint_states", qos.SENSOR)
    node = start_sim(sim_ros, scene="arm")
    names = node.world.spec.joint_names
    commands = sim_ros.publisher(Float64MultiArray, "/joint_commands", qos.COMMANDS)
    assert joints.wait_for() is not None
    before = latest_joints(joints, names)
    velocity = np.zeros(len(names))
    velocity[names.index("shoulder_pan_joint")] = 0.5
    repeater = Repeater(
        sim_ros, commands, lambda: Float64MultiArray(data=velocity.tolist()), rate_hz=10.0
    )
    assert wait_until(lambda: moved(joints, names, before)[0] > 0.2)
    repeater.stop()
    assert np.abs(moved(joints, names, before)[1:]).max() < 0.05


def test_a_trajectory_point_moves_joints_towards_its_positions(sim_ros):
    joints = sim_ros.collect(JointState, "/joint_states", qos.SENSOR)
    node = start_sim(sim_ros, scene="arm")
    trajectories = sim_ros.publisher(JointTrajectory, "/joint_trajectory", qos.COMMANDS)
    assert joints.wait_for() is not None
    goal = node.world.joint_positions(("wrist_2_joint",))[0] + 0.3
    point = JointTrajectoryPoint(positions=[goal])
    point.time_from_start.nanosec = 200_000_000
    assert wait_until(lambda: trajectories.get_subscription_count() > 0)
    trajectories.publish(JointTrajectory(joint_names=["wrist_2_joint"], points=[point]))
    assert wait_until(
        lambda: abs(latest_joints(joints, ["wrist_2_joint"])[0] - goal) < 0.02, timeout=5.0
    )


def test_reset_with_the_same_seed_gives_the_same_scene(sim_ros):
    images = sim_ros.collect(Image, "/camera/image_raw", qos.SENSOR)
    status = sim_ros.collect(String, "/sim/task_status", qos.LATCHED)
    start_sim(sim_ros, seed=7, task="go to the red cube")
    cmd_vel = sim_ros.publisher(Twist, "/cmd_vel", qos.COMMANDS)
    assert images.wait_for() is not None

    def reset():
        answer = sim_ros.call(Trigger, "/sim/reset", Trigger.Request())
        assert answer.success
        episode = int(answer.message.split()[1].rstrip(":"))
        report = status.wait_for(lambda m: json.loads(m.data)["episode"] == episode)
        started = json.loads(report.data)["started_at"]
        # The picture published at the very start of the episode.
        first = images.wait_for(lambda m: abs(seconds(m.header.stamp) - started) < 1e-6)
        return json.loads(report.data), image_pixels(first)

    spin = Twist()
    spin.angular.z = 1.0
    cmd_vel.publish(spin)
    first_status, first_image = reset()
    cmd_vel.publish(spin)  # the robot moves away in between
    time.sleep(0.3)
    again_status, again_image = reset()
    assert again_status["seed"] == first_status["seed"] == 7
    assert again_status["distance"] == pytest.approx(first_status["distance"])
    np.testing.assert_array_equal(first_image, again_image)
    assert again_status["started_at"] > first_status["started_at"]  # the clock never runs back

    assert all(r.successful for r in sim_ros.set_parameters("sim_node", {"seed": 8}))
    other_status, other_image = reset()
    assert other_status["seed"] == 8
    assert not np.array_equal(first_image, other_image)


def test_success_is_reported_when_the_expert_solves_the_task(sim_ros):
    status = sim_ros.collect(String, "/sim/task_status", qos.LATCHED)
    node = start_sim(sim_ros, scene="arm", seed=4, task="touch the blue can")
    commands = sim_ros.publisher(Float64MultiArray, "/joint_commands", qos.COMMANDS)
    # The scripted expert as an outside controller at 10 Hz; its timer shares the node's
    # callback group, so it never reads the world in the middle of a physics step.
    node.create_timer(
        0.1, lambda: commands.publish(Float64MultiArray(data=expert_action(node.world).tolist()))
    )
    done = status.wait_for(lambda m: json.loads(m.data)["state"] == "succeeded", timeout=15.0)
    assert done is not None, statuses(status)[-1]
    report = json.loads(done.data)
    assert report["target"] == "blue cylinder" and report["instruction"] == "touch the blue can"
    assert report["finished_at"] > report["started_at"]
    assert report["distance"] <= node.world.spec.success_distance


def test_a_compositional_scene_shows_what_its_seed_draws_and_is_solved(sim_ros):
    from vla_ros.sim.scenes import compositional
    from vla_ros.sim.world import SimWorld

    with SimWorld(compositional("arm"), camera_size=(8, 8), seed=4) as reference:
        drawn = reference.objects
    status = sim_ros.collect(String, "/sim/task_status", qos.LATCHED)
    target = drawn[0]
    node = start_sim(
        sim_ros, scene="arm", objects="compositional", seed=4, task=f"touch the {target.name}"
    )
    assert node.world.objects == drawn and 3 <= len(drawn) <= 5
    commands = sim_ros.publisher(Float64MultiArray, "/joint_commands", qos.COMMANDS)
    node.create_timer(
        0.1, lambda: commands.publish(Float64MultiArray(data=expert_action(node.world).tolist()))
    )
    done = status.wait_for(lambda m: json.loads(m.data)["state"] == "succeeded", timeout=15.0)
    assert done is not None, statuses(status)[-1]
    assert json.loads(done.data)["target"] == target.name


def test_the_task_follows_voice_commands_but_not_stop_words(sim_ros):
    status = sim_ros.collect(String, "/sim/task_status", qos.LATCHED)
    start_sim(sim_ros, scene="humanoid")
    voice = sim_ros.publisher(String, "/voice_command", qos.COMMANDS)
    assert status.wait_for(lambda m: json.loads(m.data)["state"] == "idle") is not None
    assert wait_until(lambda: voice.get_subscription_count() > 0)
    voice.publish(String(data="Reach the YELLOW pill"))
    assert status.wait_for(lambda m: json.loads(m.data)["target"] == "yellow capsule")
    voice.publish(String(data="stop!"))
    voice.publish(String(data="reach the purple cone"))
    unknown = status.wait_for(lambda m: json.loads(m.data)["state"] == "unknown_target")
    assert "purple cone" in json.loads(unknown.data)["message"]
    assert not any(json.loads(m.data)["instruction"] == "stop!" for m in status.messages)


def test_bad_input_is_refused_without_crashing_or_moving_the_robot(sim_ros):
    joints = sim_ros.collect(JointState, "/joint_states", qos.SENSOR)
    node = start_sim(sim_ros, scene="mobile", seed=1)
    cmd_vel = sim_ros.publisher(Twist, "/cmd_vel", qos.COMMANDS)
    commands = sim_ros.publisher(Float64MultiArray, "/joint_commands", qos.COMMANDS)
    trajectories = sim_ros.publisher(JointTrajectory, "/joint_trajectory", qos.COMMANDS)
    voice = sim_ros.publisher(String, "/voice_command", qos.COMMANDS)
    assert joints.wait_for() is not None
    assert wait_until(lambda: voice.get_subscription_count() > 0)
    pose = node.world.base_pose()
    nan = Twist()
    nan.linear.x = float("nan")
    cmd_vel.publish(nan)
    commands.publish(Float64MultiArray(data=[1.0, 2.0, 3.0]))
    trajectories.publish(
        JointTrajectory(joint_names=["elbow_joint"], points=[JointTrajectoryPoint(positions=[1.0])])
    )
    # Invalid UTF-8, serialized by hand: encapsulation header, length with NUL, bytes, NUL.
    voice.publish(b"\x00\x01\x00\x00" + (3).to_bytes(4, "little") + b"\xff\xfe\x00")
    assert wait_until(lambda: node.faults.total >= 4), node.faults.counts
    time.sleep(0.3)
    assert node.world.base_pose() == pytest.approx(pose, abs=1e-6)
    assert joints.since(time.monotonic() - 0.2)  # still running


def test_the_executable_runs_a_scene_and_stops_cleanly_on_sigterm(sim_domain_id):
    env = {
        **os.environ,
        "ROS_DOMAIN_ID": str(sim_domain_id),
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "PYTHONPATH": str(REPO),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vla_ros.nodes.sim_node",
            "--ros-args",
            "--params-file",
            str(REPO / "config" / "humanoid.yaml"),
            "-p",
            "camera_width:=32",
            "-p",
            "camera_height:=24",
            "-p",
            "task:=reach the red cube",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    graph = RosGraph(sim_domain_id)
    try:
        # A late joiner still gets the task status (transient local).
        status = graph.collect(String, "/sim/task_status", qos.LATCHED)
        joints = graph.collect(JointState, "/joint_states", qos.SENSOR)
        report = status.wait_for(timeout=20.0)
        assert report is not None, "no task status from the sim_node process"
        assert json.loads(report.data)["scene"] == "humanoid"
        assert json.loads(report.data)["target"] == "red cube"
        assert joints.wait_for() is not None and len(joints.last.name) == 15
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
        graph.close()
    assert process.returncode == 0, output
    assert "Traceback" not in output


@pytest.mark.parametrize("scene", ["mobile", "arm", "humanoid"])
def test_each_scene_config_matches_the_simulated_robot(scene):
    from vla_ros import graph
    from vla_ros.logic.params import node_parameters, read_parameter_file
    from vla_ros.sim.scenes import scene_spec
    from vla_ros.sim.world import DEFAULT_CAMERA_SIZE

    defaults = read_parameter_file(graph.scene_config("mobile"))
    sections = {**defaults, **read_parameter_file(graph.scene_config(scene))}
    sim = {**node_parameters(defaults, "sim_node"), **node_parameters(sections, "sim_node")}
    spec = scene_spec(scene)
    assert sim["scene"] == scene
    # The safety node publishes joint commands in the order the simulator reads them.
    assert tuple(node_parameters(sections, "safety_node")["joint_names"]) == spec.joint_names
    # Demonstrations are rendered at the camera size the node publishes by default.
    assert (sim["camera_height"], sim["camera_width"]) == DEFAULT_CAMERA_SIZE
    if scene != "mobile":
        safety = node_parameters(sections, "safety_node")
        assert safety["output_mode"] == "joint_velocity"
        assert safety["max_joint_velocity"] == max(spec.action_limits)
