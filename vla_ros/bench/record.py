"""Can `vla-ros record` keep up? A camera at 30 Hz, 640x480 rgb8 (900 kB a picture), and joint
states at 100 Hz, published by one process and recorded by `vla-ros record` in another, as on a
robot. Every message carries its sequence number, so the bag tells exactly which ones it lacks.

    python -m vla_ros.bench.record [--duration 20]       (or: vla-ros bench --record)

The publisher waits until the recorder has subscribed, publishes for `duration` seconds, waits a
moment, and the recorder is stopped with SIGINT, as a user stops it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

IMAGE_SIZE = (480, 640)  # (height, width)
IMAGE_HZ = 30.0
JOINT_HZ = 100.0
JOINTS = tuple(f"joint_{i}" for i in range(7))
BENCH_DOMAIN = 96
# Fast DDS 3 and Fast DDS 2 read their XML profile from these.
PROFILE_VARIABLES = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")


def publish(duration: float, out: Path, reliable: bool) -> None:
    """The robot's side: publish until `duration` has passed, then write what was sent."""
    import numpy as np
    import rclpy
    from rclpy.duration import Duration
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from sensor_msgs.msg import Image, JointState

    from vla_ros.ros import qos
    from vla_ros.ros.messages import to_stamp

    rclpy.init()
    node = Node("bench_robot")
    images = node.create_publisher(
        Image, "/camera/image_raw", qos.COMMANDS if reliable else qos.SENSOR
    )
    joints = node.create_publisher(JointState, "/joint_states", 10)
    deadline = time.monotonic() + 30.0
    while images.get_subscription_count() == 0 or joints.get_subscription_count() == 0:
        if time.monotonic() > deadline:
            raise SystemExit("the recorder did not subscribe within 30 s")
        time.sleep(0.05)
    time.sleep(1.0)  # let discovery finish both ways: best effort loses what is sent before
    height, width = IMAGE_SIZE
    pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), np.uint8).tobytes()
    sent = {"images": 0, "joints": 0}

    def camera() -> None:
        stamp = to_stamp(time.time())
        msg = Image(height=height, width=width, encoding="rgb8", step=width * 3, data=pixels)
        msg.header.stamp, msg.header.frame_id = stamp, str(sent["images"])
        images.publish(msg)
        sent["images"] += 1

    def joint_states() -> None:
        msg = JointState(name=list(JOINTS), position=[float(sent["joints"])] * len(JOINTS))
        msg.header.stamp = to_stamp(time.time())
        joints.publish(msg)
        sent["joints"] += 1

    node.create_timer(1.0 / IMAGE_HZ, camera)
    node.create_timer(1.0 / JOINT_HZ, joint_states)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    started = time.monotonic()
    while time.monotonic() - started < duration:
        executor.spin_once(timeout_sec=0.01)
    elapsed = time.monotonic() - started
    # A reliable message is only delivered once acknowledged: exiting sooner would lose the
    # last ones, which the recorder would be blamed for.
    for publisher in (images, joints):
        publisher.wait_for_all_acked(Duration(seconds=5.0))
    out.write_text(json.dumps({**sent, "seconds": elapsed}))
    node.destroy_node()
    rclpy.try_shutdown()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_benchmark(
    duration: float = 20.0, camera_reliable: bool = False, camera_profile: Path | None = None
) -> dict[str, Any]:
    """One run: the camera publishing best effort (sensor-data QoS, as most drivers do) or
    reliable, and with a Fast DDS profile in its process or Fast DDS's defaults."""
    from rosbags.highlevel import AnyReader

    from vla_ros.data.bags import typestore

    folder = Path(tempfile.mkdtemp(prefix="vla_ros_bench_record_"))
    bag = folder / "bag"
    env = {**os.environ, "ROS_DOMAIN_ID": str(BENCH_DOMAIN), "PYTHONUNBUFFERED": "1"}
    vla_ros = Path(sys.executable).parent / "vla-ros"
    recorder = subprocess.Popen(
        [str(vla_ros), "record", "--out", str(bag), "--no-keys"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    cpu_before = _cpu_seconds(recorder.pid)
    sent_file = folder / "sent.json"
    robot = ["--duration", str(duration), "--publish", str(sent_file)]
    robot += ["--reliable-camera"] if camera_reliable else []
    profile = {}
    if camera_profile is not None:
        profile = dict.fromkeys(PROFILE_VARIABLES, str(camera_profile))
    publisher = subprocess.run(
        [sys.executable, "-m", "vla_ros.bench.record", *robot],
        env={**env, **profile},
        capture_output=True,
        text=True,
        timeout=duration + 90,
    )
    time.sleep(1.0)  # the last messages reach the recorder
    cpu = _cpu_seconds(recorder.pid) - cpu_before
    recorder.send_signal(signal.SIGINT)
    output, _ = recorder.communicate(timeout=60)
    if publisher.returncode != 0:
        raise RuntimeError(f"the publisher failed:\n{publisher.stdout}{publisher.stderr}")
    sent = json.loads(sent_file.read_text())
    received: dict[str, list[int]] = {"images": [], "joints": []}
    with AnyReader([bag], default_typestore=typestore()) as reader:
        wanted = [
            c for c in reader.connections if c.topic in ("/camera/image_raw", "/joint_states")
        ]
        for connection, _, raw in reader.messages(connections=wanted):
            msg = reader.deserialize(raw, connection.msgtype)
            if connection.topic == "/camera/image_raw":
                received["images"].append(int(msg.header.frame_id))
            else:
                received["joints"].append(int(msg.position[0]))
        size = sum(f.stat().st_size for f in bag.iterdir())
    seconds = sent["seconds"]
    result: dict[str, Any] = {
        "duration_s": round(seconds, 2),
        "recorder_cpu_fraction_of_one_core": round(cpu / seconds, 3),
        "bag_mb": round(size / 1e6, 1),
        "cpu_cores": os.cpu_count(),
        "camera_qos": ("reliable" if camera_reliable else "best effort (sensor data)")
        + (f", camera with {camera_profile.name}" if camera_profile else ""),
    }
    for name, target in (("images", IMAGE_HZ), ("joints", JOINT_HZ)):
        numbers = sorted(set(received[name]))
        result[name] = {
            "target_hz": target,
            "sent": sent[name],
            "sent_hz": round(sent[name] / seconds, 2),
            "recorded": len(numbers),
            "recorded_hz": round(len(numbers) / seconds, 2),
            "dropped": sent[name] - len(numbers),
        }
    result["recorder_summary"] = output.strip().splitlines()[-4:]
    return result


def render(result: dict[str, Any]) -> str:
    lines = [
        f"camera {result['camera_qos']}: {result['duration_s']} s, {result['cpu_cores']} cores, "
        f"recorder at {100 * result['recorder_cpu_fraction_of_one_core']:.0f} % of a core, "
        f"{result['bag_mb']} MB",
        f"{'stream':<34}{'target':>8}{'sent':>8}{'recorded':>10}{'dropped':>9}",
    ]
    for name, label in (
        ("images", "/camera/image_raw 640x480 rgb8"),
        ("joints", "/joint_states (7 joints)"),
    ):
        row = result[name]
        lines.append(
            f"{label:<34}{row['target_hz']:>6.0f}Hz{row['sent_hz']:>6.1f}Hz"
            f"{row['recorded_hz']:>8.1f}Hz{row['dropped']:>9d}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--publish", type=Path, help=argparse.SUPPRESS)  # the robot's process
    parser.add_argument("--reliable-camera", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help="write the result as JSON here")
    args = parser.parse_args(argv)
    if args.publish:
        publish(args.duration, args.publish, args.reliable_camera)
        return 0
    results = run_all(args.duration)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    return 0


def run_all(duration: float) -> list[dict[str, Any]]:
    """Both camera QoS kinds, printed as they finish."""
    print("vla-ros record keeping up with a 640x480 camera at 30 Hz and joints at 100 Hz")
    from vla_ros.paths import config_dir

    profile = config_dir() / "fastdds_large_messages.xml"
    results = []
    for reliable, camera_profile in ((False, None), (True, None), (False, profile)):
        results.append(run_benchmark(duration, reliable, camera_profile))
        print(render(results[-1]), flush=True)
    return results


if __name__ == "__main__":
    raise SystemExit(main())
