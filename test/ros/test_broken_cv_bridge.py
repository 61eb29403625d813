"""A ROS install's cv_bridge that cannot work in this environment never takes the camera down.

cv_bridge is native code built for the distribution's numpy. Under numpy 2 its import raises
SystemError (not ImportError), and the ROS 1 cv_bridge from PyPI imports but fails on every
conversion. Each failure is imitated by a real `cv_bridge` package placed in front of the
camera node's own.
"""

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from ros_harness import publish_until
from sensor_msgs.msg import Image

from vla_ros.bench.feed import textured_scene
from vla_ros.ros import qos
from vla_ros.ros.messages import rgb_image

pytestmark = pytest.mark.ros

BROKEN_BRIDGES = {
    "import raises SystemError": (
        'raise SystemError("initialization of cv_bridge_boost raised unreported exception")\n',
        "SystemError: initialization of cv_bridge_boost",
    ),
    "conversion raises": (
        "class CvBridge:\n"
        "    def imgmsg_to_cv2(self, msg, desired_encoding):\n"
        "        raise AttributeError(\"'numpy.ndarray' object has no attribute 'tostring'\")\n",
        "AttributeError: 'numpy.ndarray' object has no attribute 'tostring'",
    ),
}


@pytest.mark.parametrize("broken", BROKEN_BRIDGES.values(), ids=BROKEN_BRIDGES.keys())
def test_camera_node_forwards_pictures_and_reports_a_broken_cv_bridge_once(ros, tmp_path, broken):
    source, reason = broken
    (tmp_path / "cv_bridge").mkdir()
    (tmp_path / "cv_bridge" / "__init__.py").write_text(source)
    out = ros.collect(Image, "/vla/image", qos.LATEST)
    diagnostics = ros.collect(DiagnosticArray, "/diagnostics", qos.COMMANDS)
    raw = ros.publisher(Image, "/camera/image_raw", qos.SENSOR)
    process = ros.start("camera_node", ["-p", "image_width:=32"], pythonpath=[tmp_path])

    def picture():
        msg = rgb_image(textured_scene(), Image().header)
        msg.header.stamp = ros.probe.get_clock().now().to_msg()
        return msg

    # one picture after another, each converted and forwarded
    for count in range(1, 6):
        assert publish_until(raw, picture, lambda n=count: len(out.messages) >= n)
    assert all(m.width == 32 and len(m.data) == 32 * m.height * 3 for m in out.messages)
    assert publish_until(raw, picture, lambda: _reported(diagnostics, reason))
    output = ros.stop(process)
    assert process.returncode == 0
    assert output.count(reason) == 1, output


def _reported(diagnostics, reason: str) -> bool:
    return any(
        reason in value.value
        for array in diagnostics.messages
        for status in array.status
        if status.name == "vla_ros/camera_node"
        for value in status.values
        if value.key == "converter_problem"
    )
