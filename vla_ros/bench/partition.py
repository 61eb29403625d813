"""Two hosts on one machine, and a network partition between them.

Host A runs the model side of the graph (camera, joint-state, voice and fusion nodes), host B the
robot side (the simulator and the safety node), as a GPU workstation and a robot would. The hosts
are network namespaces cabled to a bridge in a third (the switch; needs root and `ip`). Cutting
the link must stop the robot within `watchdog_timeout` plus one control period; healing it must
let it move again.

`measure_partitions` is what the two-host test and `vla-ros bench --partition N` run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vla_ros import graph
from vla_ros.ros.launcher import NodeProcesses

# Addresses only on the veth pair this module creates, inside namespaces it owns and deletes.
_ADDRESSES = ("10.213.7.1/24", "10.213.7.2/24")
_MULTICAST = "224.0.0.0/4"
PARTITION_DOMAIN = 91
CONTROL_PERIOD_S = 0.1


class HostsUnavailable(RuntimeError):
    """This machine cannot make network namespaces (not root, no `ip`, no veth support)."""


def _ip(*args: str) -> None:
    try:
        subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)
    except FileNotFoundError:
        raise HostsUnavailable("the `ip` command (iproute2) is not installed") from None
    except subprocess.CalledProcessError as error:
        raise HostsUnavailable(f"ip {' '.join(args)}: {error.stderr.strip()}") from None


@dataclass
class Link:
    """Host A and host B, each plugged by a veth pair into a bridge (the switch between them)."""

    hosts: tuple[str, str]
    switch: str
    ports: tuple[str, str]  # the switch's ends of the two cables

    def run_on(self, host: int) -> list[str]:
        """The command prefix that runs a program on host 0 (A) or 1 (B)."""
        return ["ip", "netns", "exec", self.hosts[host]]

    def cut(self) -> None:
        """Unplug host A's cable from the switch.

        Its end keeps its carrier, as with a failed switch or a radio out of range: with the
        carrier gone, Linux would queue what the other host sends until its sockets fill up,
        a different failure (and one that stalls any publisher, the simulator's included).
        """
        _ip("-n", self.switch, "link", "set", self.ports[0], "nomaster")

    def heal(self) -> None:
        _ip("-n", self.switch, "link", "set", self.ports[0], "master", "bridge")


@contextlib.contextmanager
def two_hosts() -> Iterator[Link]:
    """Two hosts (network namespaces) and a switch between them; deleted again at the end.

    Each host gets a machine id of its own (`ip netns exec` puts /etc/netns/NAME/machine-id over
    /etc/machine-id): Fast DDS takes participants with the same machine id for one host and
    would carry their data through shared memory, past the cut link.
    """
    tag = f"vla{os.getpid() % 100000}"
    hosts = (f"{tag}a", f"{tag}b")
    switch = f"{tag}s"
    ports = (f"{tag}pa", f"{tag}pb")
    made: list[str] = []
    try:
        for name in (*hosts, switch):
            _ip("netns", "add", name)
            made.append(name)
        _ip("-n", switch, "link", "add", "bridge", "type", "bridge")
        _ip("-n", switch, "link", "set", "bridge", "up")
        for index, (host, port, address) in enumerate(zip(hosts, ports, _ADDRESSES, strict=True)):
            etc = Path("/etc/netns") / host
            etc.mkdir(parents=True, exist_ok=True)
            (etc / "machine-id").write_text(f"{os.getpid():016x}{index:016x}\n")
            _ip("-n", switch, "link", "add", port, "type", "veth", "peer", "name", "eth0",
                "netns", host)  # fmt: skip
            _ip("-n", switch, "link", "set", port, "master", "bridge")
            _ip("-n", switch, "link", "set", port, "up")
            _ip("-n", host, "addr", "add", address, "dev", "eth0")
            _ip("-n", host, "link", "set", "lo", "up")
            _ip("-n", host, "link", "set", "eth0", "up")
            _ip("-n", host, "route", "add", _MULTICAST, "dev", "eth0")
        yield Link(hosts, switch, ports)
    finally:
        for name in made:  # deleting a namespace deletes the cables' ends in it
            with contextlib.suppress(HostsUnavailable):
                _ip("netns", "del", name)
            shutil.rmtree(Path("/etc/netns") / name, ignore_errors=True)


@dataclass
class PartitionResult:
    """Per cut: time from the cut to the first stop command (on the robot's ROS clock, which the
    watchdog runs on, and on the wall clock), and from healing to motion (wall clock).

    The robot's clock is the simulator's: on a loaded machine it runs slower than the wall clock,
    and 0.5 s of it can take longer than 0.5 s of wall time.
    """

    stop_latencies: list[float] = field(default_factory=list)
    wall_stop_latencies: list[float] = field(default_factory=list)
    resume_times: list[float] = field(default_factory=list)
    stayed_stopped: list[bool] = field(default_factory=list)
    watchdog_timeout: float = 0.0

    def summary(self) -> dict[str, object]:
        def stats(values: list[float]) -> tuple[float | None, float | None]:
            return (float(np.median(values)), float(np.max(values))) if values else (None, None)

        median, worst = stats(self.stop_latencies)
        wall_median, wall_worst = stats(self.wall_stop_latencies)
        return {
            "cuts": len(self.stop_latencies),
            "watchdog_timeout_s": self.watchdog_timeout,
            "bound_s": self.watchdog_timeout + CONTROL_PERIOD_S,
            "stop_latency_median_s": median,
            "stop_latency_max_s": worst,
            "wall_stop_latency_median_s": wall_median,
            "wall_stop_latency_max_s": wall_worst,
            "resume_median_s": float(np.median(self.resume_times)) if self.resume_times else None,
            "stayed_stopped_while_cut": all(self.stayed_stopped),
        }


class _Commands:
    """What the observer on host B heard on cmd_vel: (wall time, ROS time, moving) per message."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.items: list[tuple[float, float, bool]] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._read, args=(process,), daemon=True).start()

    def _read(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            parts = line.split()
            if len(parts) == 3:
                with self._lock:
                    self.items.append((float(parts[0]), float(parts[1]), parts[2] == "1"))

    def first(self, moving: bool, after: float, timeout: float) -> tuple[float, float] | None:
        """(wall, ROS time) of the first command after wall time `after` that is (not) moving."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                found = [(t, r) for t, r, m in self.items if t > after and m == moving]
            if found:
                return found[0]
            time.sleep(0.01)
        return None

    def ros_time_at(self, wall: float) -> float:
        """The robot's ROS time at wall time `wall`, from the commands heard around it."""
        with self._lock:
            walls = np.array([t for t, _, _ in self.items])
            ros = np.array([r for _, r, _ in self.items])
        return float(np.interp(wall, walls, ros))

    def any_moving(self, start: float, end: float) -> bool:
        with self._lock:
            return any(m for t, _, m in self.items if start <= t <= end)


def measure_partitions(
    cuts: int,
    watchdog_timeout: float = 0.5,
    cut_for: float = 1.5,
    domain_id: int = PARTITION_DOMAIN,
    log_dir: Path | None = None,
    progress: bool = False,
) -> PartitionResult:
    """Drive the simulated base across two hosts and cut the link `cuts` times.

    Raises HostsUnavailable where namespaces cannot be made, RuntimeError if the graph does not
    come up (the node logs in `log_dir` say why).
    """
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="vla_ros_partition_"))
    env = {
        "ROS_DOMAIN_ID": str(domain_id),
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET",
    }
    files = [graph.scene_config("mobile")]
    everyone = {spec.executable: {"use_sim_time": True} for spec in graph.nodes(True)}
    everyone["safety_node"]["watchdog_timeout"] = watchdog_timeout
    everyone["sim_node"]["episode_timeout"] = 3600.0
    model_side = [s for s in graph.CONTROL_NODES if s.executable != "safety_node"]
    robot_side = [s for s in graph.nodes(True) if s.executable in ("safety_node", "sim_node")]
    result = PartitionResult(watchdog_timeout=watchdog_timeout)
    with two_hosts() as link:
        host_a = NodeProcesses(model_side, files, everyone, log_dir / "a", env=env,
                               prefix=link.run_on(0))  # fmt: skip
        host_b = NodeProcesses(robot_side, files, everyone, log_dir / "b", env=env,
                               prefix=link.run_on(1))  # fmt: skip
        observer = subprocess.Popen(
            [*link.run_on(1), sys.executable, "-m", "vla_ros.bench.partition", "observe"],
            env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            with host_a, host_b:
                commands = _Commands(observer)
                if commands.first(True, 0.0, timeout=180.0) is None:
                    raise RuntimeError(f"the robot never moved across the two hosts; see {log_dir}")
                for cut in range(cuts):
                    _wait_moving(commands)
                    cut_at = time.monotonic()
                    link.cut()
                    stopped = commands.first(False, cut_at, timeout=10.0)
                    time.sleep(cut_for)
                    healed_at = time.monotonic()
                    link.heal()
                    if stopped is None:
                        result.stop_latencies.append(float("inf"))
                        result.wall_stop_latencies.append(float("inf"))
                        result.stayed_stopped.append(False)
                    else:
                        stopped_wall, stopped_ros = stopped
                        result.stop_latencies.append(stopped_ros - commands.ros_time_at(cut_at))
                        result.wall_stop_latencies.append(stopped_wall - cut_at)
                        result.stayed_stopped.append(
                            not commands.any_moving(stopped_wall, healed_at)
                        )
                    moved = commands.first(True, healed_at, timeout=60.0)
                    result.resume_times.append(
                        float("inf") if moved is None else moved[0] - healed_at
                    )
                    if progress:
                        print(
                            f"cut {cut + 1}/{cuts}: stopped after "
                            f"{result.stop_latencies[-1] * 1e3:.0f} ms of ROS time "
                            f"({result.wall_stop_latencies[-1] * 1e3:.0f} ms wall), moving again "
                            f"{result.resume_times[-1]:.1f} s after healing",
                            file=sys.stderr,
                            flush=True,
                        )
        finally:
            observer.terminate()
            try:
                observer.wait(timeout=10)
            except subprocess.TimeoutExpired:  # a loaded machine; nothing of it is needed now
                observer.kill()
                observer.wait()
    return result


def _wait_moving(commands: _Commands, timeout: float = 60.0) -> None:
    if commands.first(True, time.monotonic(), timeout) is None:
        raise RuntimeError("the robot did not move again after the link was healed")


def observe(command: str) -> int:
    """On host B: give the command until the robot moves; print every cmd_vel as
    `wall-time ros-time moving` (ROS time from /clock: the robot's, the watchdog's). Ends, like
    every node, on SIGTERM from the benchmark; returns the exit status."""
    import rclpy
    from geometry_msgs.msg import Twist
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from std_msgs.msg import String

    from vla_ros.ros import qos
    from vla_ros.ros.runner import run_node

    def make_node() -> Node:
        node = rclpy.create_node(
            "partition_observer", parameter_overrides=[Parameter("use_sim_time", value=True)]
        )
        voice = node.create_publisher(String, "voice_command", qos.COMMANDS)
        moved = threading.Event()

        def on_command(msg: Twist) -> None:
            moving = abs(msg.linear.x) > 1e-9 or abs(msg.angular.z) > 1e-9
            if moving:
                moved.set()
            ros_time = node.get_clock().now().nanoseconds * 1e-9
            print(f"{time.monotonic():.4f} {ros_time:.4f} {int(moving)}", flush=True)

        node.create_subscription(Twist, "cmd_vel", on_command, qos.COMMANDS)
        # until the robot moves (the voice node across the link may not have been discovered yet)
        node.create_timer(1.0, lambda: moved.is_set() or voice.publish(String(data=command)))
        return node

    return run_node(make_node)


def main() -> None:
    parser = argparse.ArgumentParser(description="the two-host partition benchmark's parts")
    sub = parser.add_subparsers(dest="part", required=True)
    sub.add_parser("observe").add_argument("--command", default="go to the red cube")
    args = parser.parse_args()
    raise SystemExit(observe(args.command))


if __name__ == "__main__":
    main()
