"""The gripper holds an object through a stop: the simulator, the safety node, a real graph."""

import json

import numpy as np
import pytest
from ros_harness import RosGraph, wait_until
from sensor_msgs.msg import JointState
from std_msgs.msg import String
from std_srvs.srv import Trigger

from vla_ros import graph
from vla_ros.logic.params import node_parameters, read_parameter_file
from vla_ros.nodes.safety_node import SafetyNode
from vla_ros.nodes.sim_node import SimNode
from vla_ros.ros import qos
from vla_ros.sim.experts import expert_action
from vla_ros.sim.tasks import LIFT_HEIGHT

pytestmark = pytest.mark.ros

FINGER = "gripper_finger_joint"


@pytest.fixture
def sim_ros(sim_domain_id):
    ros = RosGraph(sim_domain_id)
    yield ros
    ros.close()


def arm_safety_parameters() -> dict:
    """The safety node's settings for the arm, as config/arm.yaml gives them."""
    sections = read_parameter_file(graph.scene_config("arm"))
    values = node_parameters(sections, "safety_node")
    return {name: values[name] for name in ("output_mode", "joint_names", "gripper_joints")}


def test_the_gripper_holds_an_object_through_a_stop(sim_ros):
    status = sim_ros.collect(String, "/sim/task_status", qos.LATCHED)
    sim = sim_ros.add(SimNode, {"scene": "arm", "seed": 4, "task": "pick up the red cube"})
    sim_ros.add(SafetyNode, arm_safety_parameters())
    world = sim.world
    cube = world.find_object("red cube")
    names = world.spec.action_names
    proposals = sim_ros.publisher(JointState, "/vla/proposal", qos.LATEST)
    # The controller behind the safety node: first the expert picking the cube up, then a
    # policy gone wrong that opens the gripper.
    opening = np.zeros(len(names))
    opening[names.index(FINGER)] = world.spec.action_limits[names.index(FINGER)]
    controller = {"act": expert_action}

    def state(read):
        """`read(world)` between two physics steps (the sim node's lock: it steps on a thread)."""
        with sim._lock:
            return read(world)

    def lifted() -> bool:
        return state(lambda w: w.object_position(cube)[2] >= w.rest_height(cube) + LIFT_HEIGHT)

    def propose():
        action = state(controller["act"])
        message = JointState(name=list(names), velocity=action.tolist())
        message.effort = [0.0] * len(names)
        message.header.stamp = sim_ros.probe.get_clock().now().to_msg()
        proposals.publish(message)

    sim.create_timer(0.1, propose)
    picked = status.wait_for(lambda m: json.loads(m.data)["state"] == "succeeded", timeout=60.0)
    assert picked is not None, json.loads(status.last.data)
    assert json.loads(picked.data)["kind"] == "pick"
    assert state(lambda w: w.grasped(cube)) and lifted()

    assert sim_ros.call(Trigger, "/vla/stop", Trigger.Request()).success
    controller["act"] = lambda _: opening
    stopped_at, finger_at_stop = state(lambda w: (w.time, w.joint_positions([FINGER])[0]))
    assert wait_until(lambda: state(lambda w: w.time) > stopped_at + 1.5, timeout=60.0)
    # Judged by the simulator: still held, still lifted, the fingers where the stop found them.
    assert state(lambda w: w.grasped(cube)) and lifted()
    finger = state(lambda w: w.joint_positions([FINGER])[0])
    assert finger == pytest.approx(finger_at_stop, abs=1e-3)

    # The same proposals once the stop is lifted: the gripper opens and the cube drops, so
    # what held it above was the stop.
    assert sim_ros.call(Trigger, "/vla/resume", Trigger.Request()).success
    assert wait_until(
        lambda: (
            state(lambda w: w.object_position(cube)[2] < w.rest_height(cube) + 0.01)
            and not state(lambda w: w.grasped(cube))
        ),
        timeout=60.0,
    )
