"""Starting the node graph as processes, for users without `ros2 launch` (vla-ros run / sim),
the control benchmark and the tests.

The nodes run in sessions of their own (a Ctrl-C in the terminal reaches only the parent, which
stops them in order). So that none outlives the parent whatever ends it: SIGINT, SIGTERM and
SIGHUP to the parent stop every node within STOP_TIMEOUT_S (`handle_stop_signals`), and each
node asks the kernel to send it SIGTERM if the parent dies without stopping it (PARENT_ENV,
read by vla_ros.ros.runner).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO

from vla_ros.graph import NodeSpec, ros_arguments

# Every node has ended this long after the parent was told to stop (the contract says 5 s).
STOP_TIMEOUT_S = 4.0
PARENT_ENV = "VLA_ROS_PARENT_PID"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StopRequested(KeyboardInterrupt):
    """A stop signal reached the parent; raised where it was, like Ctrl-C's KeyboardInterrupt."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signal_name = signal.Signals(signum).name


@contextlib.contextmanager
def handle_stop_signals() -> Iterator[None]:
    """SIGTERM (systemd, docker stop) and SIGHUP (a closed ssh session) stop the run as Ctrl-C
    does: by default they would end the parent at once and leave its nodes driving the robot."""

    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        if stopping:
            return  # a stop is under way; a second signal must not interrupt it
        stopping = True
        raise StopRequested(signum)

    previous = {signum: signal.signal(signum, stop) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class NodeProcesses:
    """One process per node; stopped together, gently first, when the block ends."""

    def __init__(
        self,
        specs: Iterable[NodeSpec],
        params_files: list[Path],
        parameters: Mapping[str, Mapping[str, object]] | None = None,
        log_dir: Path | None = None,
        log_level: str | None = None,
        env: Mapping[str, str] | None = None,
        namespace: str = "",
        prefix: Sequence[str] = (),
    ) -> None:
        """`parameters` maps node names to values given on top of the files (`-p`).

        With `log_dir`, each node writes to `<log_dir>/<node>.log`; otherwise it shares this
        terminal. `prefix` goes before each command (`ip netns exec host_a`: another host).
        """
        self.specs = tuple(specs)
        self.params_files = params_files
        self.parameters = parameters or {}
        self.log_dir = log_dir
        self.log_level = log_level
        self.namespace = namespace
        self.prefix = list(prefix)
        self.env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            PARENT_ENV: str(os.getpid()),
            **(env or {}),
        }
        self.processes: dict[str, subprocess.Popen] = {}
        self._logs: list[IO[str]] = []

    def __enter__(self) -> NodeProcesses:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def command(self, spec: NodeSpec) -> list[str]:
        args = ros_arguments(
            self.params_files,
            self.parameters.get(spec.executable, {}),
            log_level=self.log_level,
            node=spec.executable,
            namespace=self.namespace,
        )
        return [*self.prefix, sys.executable, "-m", spec.module, *args]

    def start(self) -> None:
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
        for spec in self.specs:
            output = None
            if self.log_dir is not None:
                output = open(self.log_path(spec.executable), "w")  # noqa: SIM115 (closed in stop)
                self._logs.append(output)
            self.processes[spec.executable] = subprocess.Popen(
                self.command(spec),
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT if output else None,
                stdin=subprocess.DEVNULL,
                # Own process group: Ctrl-C reaches only us, and we stop the nodes in order.
                start_new_session=True,
            )

    def log_path(self, executable: str) -> Path:
        assert self.log_dir is not None
        return self.log_dir / f"{executable}.log"

    def exited(self) -> dict[str, int]:
        """Nodes that have ended, with their exit status."""
        return {
            name: code
            for name, process in self.processes.items()
            if (code := process.poll()) is not None
        }

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """SIGINT every node (each shuts down cleanly; the safety node's last word is a stop),
        then SIGKILL whatever is still running after `timeout`."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + timeout
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in self._logs:
            log.close()
        self._logs.clear()

    def tail(self, executable: str, lines: int = 15) -> str:
        if self.log_dir is None:
            return ""
        path = self.log_path(executable)
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
