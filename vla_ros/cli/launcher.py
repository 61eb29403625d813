"""Starting the node graph as processes, for users without `ros2 launch` (vla-ros run / sim)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO

from vla_ros.graph import NodeSpec, ros_arguments


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
    ) -> None:
        """`parameters` maps node names to values given on top of the files (`-p`).

        With `log_dir`, each node writes to `<log_dir>/<node>.log`; otherwise it shares this
        terminal.
        """
        self.specs = tuple(specs)
        self.params_files = params_files
        self.parameters = parameters or {}
        self.log_dir = log_dir
        self.log_level = log_level
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
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
        )
        return [sys.executable, "-m", spec.module, *args]

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

    def stop(self, timeout: float = 10.0) -> None:
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
