"""Random input to every input node of a running graph: no node dies, nothing malformed moves the
robot. Hypothesis generates the messages; one graph serves all examples of a test."""

import math
import time

import pytest
from geometry_msgs.msg import Twist
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from rcl_interfaces.srv import GetParameters
from rclpy.parameter import Parameter
from ros_harness import publish_until, wait_until
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Header, String

from vla_ros.bench.feed import textured_scene
from vla_ros.logic.images import SUPPORTED_ENCODINGS
from vla_ros.ros import qos
from vla_ros.ros.messages import rgb_image, to_stamp

pytestmark = [pytest.mark.ros, pytest.mark.slow]

FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
JOINTS = ["left_wheel_joint", "right_wheel_joint"]


def moving(twist):
    return any(
        abs(v) > 1e-9 for v in (twist.linear.x, twist.linear.y, twist.angular.z, twist.angular.x)
    )


class FuzzedGraph:
    """The probe's ends of the graph: what it publishes and what it collects."""

    def __init__(self, ros):
        self.cmd = ros.collect(Twist, "/cmd_vel")
        self.pictures = ros.collect(Image, "/vla/image", qos.LATEST)
        self.joints = ros.collect(JointState, "/vla/joint_states", qos.LATEST)
        self.instructions = ros.collect(String, "/vla/instruction", qos.LATCHED)
        self.camera = ros.publisher(Image, "/camera/image_raw", qos.SENSOR)
        self.joint_states = ros.publisher(JointState, "/joint_states", qos.SENSOR)
        self.voice = ros.publisher(String, "/voice_command", qos.COMMANDS)
        self._stamp = time.time()

    def next_stamp(self):
        self._stamp += 0.001  # stamps keep advancing, as a driver's do
        return to_stamp(self._stamp)


@pytest.fixture
def graph(ros, control_graph):
    """Every control node, given a command; only the test publishes pictures and joint states."""
    fuzzed = FuzzedGraph(ros)
    control_graph(robot=False)
    assert wait_until(lambda: fuzzed.voice.get_subscription_count() > 0)
    fuzzed.voice.publish(String(data="go to the red cube"))
    assert fuzzed.instructions.wait_for(lambda m: m.data == "go to the red cube") is not None
    return fuzzed


def alive_and_still(graph):
    """Each input node still answers sane input."""
    sane = rgb_image(textured_scene(), Image().header)
    sane.header.stamp = graph.next_stamp()
    recovered = time.monotonic()
    assert publish_until(
        graph.camera,
        lambda: _restamped(sane, graph),
        lambda: graph.pictures.wait_for(lambda m: m.width == 64, after=recovered, timeout=0.1),
    )
    assert publish_until(
        graph.joint_states,
        lambda: JointState(name=JOINTS, position=[0.0, 0.0], header=_header(graph)),
        lambda: graph.joints.wait_for(lambda m: len(m.name) == 2, after=recovered, timeout=0.1),
    )
    graph.voice.publish(String(data="turn left"))
    assert graph.instructions.wait_for(lambda m: m.data == "turn left", after=recovered)


def _header(graph):
    return Header(stamp=graph.next_stamp())


def _restamped(msg, graph):
    msg.header.stamp = graph.next_stamp()
    return msg


encodings = st.sampled_from([*SUPPORTED_ENCODINGS, "yuv422", "16UC1", "", "RGB8 ", "\x00"])


@st.composite
def malformed_pictures(draw):
    """Pictures whose header and data disagree (the sane ones are tested for conversion)."""
    width, height = draw(st.integers(0, 48)), draw(st.integers(0, 48))
    encoding = draw(encodings)
    channels = SUPPORTED_ENCODINGS.get(encoding.strip().lower(), 3)
    step = draw(st.one_of(st.just(0), st.integers(0, 4 * width + 8)))
    needed = (step or width * channels) * height
    size = draw(st.integers(0, needed + 64).filter(lambda n: n != needed or needed == 0))
    data = draw(st.binary(min_size=size, max_size=size))
    return Image(width=width, height=height, encoding=encoding, step=step, data=data)


@FUZZ
@given(picture=malformed_pictures())
def test_malformed_pictures_never_move_the_robot(graph, picture):
    picture.header.stamp = graph.next_stamp()
    graph.camera.publish(picture)
    # every joint state sane: only the pictures are wrong
    graph.joint_states.publish(JointState(name=JOINTS, position=[0.0, 0.0], header=_header(graph)))
    assert not any(m.width for m in graph.pictures.messages)  # never forwarded as usable
    assert not any(moving(t) for t in graph.cmd.messages)


def forwarded_sane(graph):
    """What the input nodes passed on: only joint states in order with finite positions, and
    normalised commands of an acceptable length."""
    for joints in graph.joints.messages:
        assert list(joints.name) in ([], JOINTS)
        assert all(math.isfinite(p) for p in joints.position)
    for instruction in graph.instructions.messages:
        assert 0 < len(instruction.data) <= 500
        assert instruction.data == instruction.data.strip().lower()


@pytest.fixture
def fuzz_done(graph):
    """Checks, after all of a test's examples (their messages arrive late), that every node
    lives, that what was forwarded is sane, and that the robot never moved on fuzzed input (the
    sane picture, joint state and command that show the nodes alive may move it, as they should)."""
    yield graph
    time.sleep(0.5)  # what the last examples set off arrives
    fuzzed_until = time.monotonic()
    alive_and_still(graph)
    forwarded_sane(graph)
    on_fuzz = [twist for arrived, twist in graph.cmd.items if arrived < fuzzed_until]
    assert not any(moving(t) for t in on_fuzz)


floats = st.floats(allow_nan=True, allow_infinity=True, width=64)
joint_names = st.lists(st.sampled_from([*JOINTS, "gripper", "", "ä", "x" * 300]), max_size=5)


@st.composite
def joint_states(draw):
    """Names with arrays mostly of the same length (so values are looked at), sometimes not."""
    names = draw(joint_names)

    def array():
        length = draw(st.one_of(st.just(len(names)), st.integers(0, 6)))
        return draw(st.lists(floats, min_size=length, max_size=length))

    return JointState(name=names, position=array(), velocity=array(), effort=array())


@FUZZ
@given(message=joint_states())
@example(message=JointState(name=JOINTS, position=[math.nan, 0.0]))
@example(message=JointState(name=JOINTS, position=[0.0, 0.0], velocity=[math.nan, math.inf]))
def test_any_joint_state_is_forwarded_sane_or_not_at_all(fuzz_done, message):
    graph = fuzz_done
    message.header.stamp = graph.next_stamp()
    graph.joint_states.publish(message)
    forwarded_sane(graph)


@FUZZ
@given(
    text=st.one_of(
        st.text(max_size=600), st.text(min_size=1, max_size=3).map(lambda t: t * 350_000)
    )
)
def test_any_text_is_a_command_a_stop_or_refused(fuzz_done, text):
    graph = fuzz_done
    graph.voice.publish(String(data=text))
    forwarded_sane(graph)


NODE_PARAMETERS = {
    "safety_node": ["max_linear_speed", "uncertainty_stop", "output_mode", "joint_names",
                    "watchdog_timeout", "cmd_vel_stamped", "max_joint_brake", "no_such"],
    "camera_node": ["image_width", "dark_level", "fault_fraction", "bright_level"],
    "joint_state_node": ["joint_names"],
    "voice_command_node": ["max_length"],
    "fusion_node": ["rate_hz", "mc_samples", "max_image_age", "device", "checkpoint"],
}  # fmt: skip
values = st.one_of(
    st.booleans(),
    st.integers(-(2**40), 2**40),
    floats,
    st.text(max_size=20),
    st.lists(st.text(max_size=8), max_size=3),
)


@pytest.fixture
def nodes_answer(ros, graph):
    """After all examples: every node still answers on its parameter service."""
    yield graph
    for node in NODE_PARAMETERS:
        request = GetParameters.Request(names=["use_sim_time"])
        assert ros.call(GetParameters, f"/{node}/get_parameters", request).values
    assert not any(moving(t) for t in graph.cmd.messages)


@FUZZ
@given(node=st.sampled_from(sorted(NODE_PARAMETERS)), data=st.data())
def test_random_parameter_values_never_end_a_node(nodes_answer, ros, node, data):
    name = data.draw(st.sampled_from(NODE_PARAMETERS[node]))
    value = data.draw(values)
    try:
        Parameter(name, value=value)
    except (TypeError, ValueError):
        return  # not a value a ROS parameter can carry at all
    ros.set_parameters(node, {name: value})  # accepted or refused: either way, an answer
