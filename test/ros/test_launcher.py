"""`vla-ros run` and `vla-ros sim` as a service manager or a closed ssh session ends them."""

import os
import signal
import subprocess
import threading
from pathlib import Path

import pytest
from geometry_msgs.msg import Twist
from ros_harness import BIN, REPO, wait_until

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def children_of(pid):
    """The processes whose parent is `pid` (from /proc: no extra dependency)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def running(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class Launched:
    """`vla-ros` as a process whose output (its own and its nodes') is read as it comes: a pipe
    left unread fills up and blocks every node that logs into it, at exit too."""

    def __init__(self, ros, *args):
        env = {**os.environ, "ROS_DOMAIN_ID": str(ros.domain_id), "PYTHONPATH": str(REPO)}
        self.process = subprocess.Popen(
            [str(BIN / "vla-ros"), *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.pid = self.process.pid
        self.lines = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line)

    def send_signal(self, sig):
        self.process.send_signal(sig)

    def finish(self, timeout=30.0):
        """Wait for the end of the process and of its output (every node that shared it)."""
        try:
            self.process.wait(timeout=timeout)
            self._reader.join(timeout=timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
        return "".join(self.lines)

    @property
    def returncode(self):
        return self.process.returncode


def start(ros, *args):
    return Launched(ros, *args)


@pytest.mark.parametrize(
    ("args", "nodes", "sig"),
    [
        (["run"], 5, signal.SIGTERM),
        (["run"], 5, signal.SIGHUP),
        (["run"], 5, signal.SIGKILL),  # nothing can be handled: the nodes end with their parent
        (["sim", "--duration", "600"], 6, signal.SIGTERM),
    ],
    ids=["run-SIGTERM", "run-SIGHUP", "run-SIGKILL", "sim-SIGTERM"],
)
def test_a_stop_signal_ends_every_node_and_the_safety_node_stops_the_robot(ros, args, nodes, sig):
    cmd = ros.collect(Twist, "/cmd_vel")
    parent = start(ros, *args)
    try:
        assert wait_until(lambda: len(children_of(parent.pid)) == nodes, timeout=60.0)
        assert cmd.wait_for(timeout=90.0) is not None  # the safety node is up and publishing
        children = children_of(parent.pid)
        parent.send_signal(sig)
        # SIGKILL cannot be handled: the kernel tells each node, which then stops on its own,
        # with no launcher left to hurry it (the 5 s promise is for the signals it can handle)
        within = 20.0 if sig == signal.SIGKILL else 5.0
        ended = wait_until(lambda: not any(running(pid) for pid in children), timeout=within)
        left = [Path(f"/proc/{pid}/cmdline").read_text() for pid in children if running(pid)]
        assert ended, f"still running: {left}"
    finally:
        output = parent.finish()
    assert "published a stop command before shutting down" in output + node_logs(output)
    if sig != signal.SIGKILL:
        assert parent.returncode in (0, 130), output[-3000:]


def node_logs(output):
    """The node logs `vla-ros sim` names at its start (`vla-ros run` prints them itself)."""
    for line in output.splitlines():
        if "node logs in " in line:
            folder = Path(line.split("node logs in ")[1].split()[0])
            return "".join(log.read_text() for log in folder.glob("*.log"))
    return ""


def test_a_node_that_dies_ends_the_run_and_is_reported(ros):
    cmd = ros.collect(Twist, "/cmd_vel")
    parent = start(ros, "run")
    try:
        assert wait_until(lambda: len(children_of(parent.pid)) == 5, timeout=60.0)
        assert cmd.wait_for(timeout=90.0) is not None
        fusion = next(
            pid
            for pid in children_of(parent.pid)
            if "fusion_node" in Path(f"/proc/{pid}/cmdline").read_text()
        )
        children = children_of(parent.pid)
        os.kill(fusion, signal.SIGKILL)
    finally:
        output = parent.finish()
    assert parent.returncode == 1
    assert "fusion_node" in output and "stopping the others" in output
    assert not any(running(pid) for pid in children)


def test_skipped_nodes_are_not_started(ros):
    """A GPU workstation whose robot runs the safety node: `vla-ros run --skip safety_node`."""
    parent = start(ros, "run", "--skip", "safety_node", "--skip", "fusion_node")
    own = Path(f"/proc/{parent.pid}/cmdline").read_text()

    def nodes():
        """Children's command lines, once each runs its node: one forked but not yet exec'd
        still shows the parent's own (its --skip arguments name the skipped nodes)."""
        commands = []
        for pid in children_of(parent.pid):
            try:
                commands.append(Path(f"/proc/{pid}/cmdline").read_text())
            except OSError:
                continue
        return [c for c in commands if c != own]

    try:
        assert wait_until(lambda: len(nodes()) == 3, timeout=60.0)
        assert not any("safety_node" in c or "fusion_node" in c for c in nodes())
        parent.send_signal(signal.SIGTERM)
    finally:
        parent.finish()
    assert parent.returncode == 0
