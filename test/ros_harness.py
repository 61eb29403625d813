"""Real rclpy graphs for tests: in-process nodes, a probe node, and node executables as processes.

Nothing here imitates ROS: every helper publishes, subscribes and calls services through a real
DDS domain of the test's own.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import rclpy
from polling import wait_until
from rcl_interfaces.msg import Log
from rcl_interfaces.srv import SetParameters
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def publish_until(publisher, make, received, timeout=30.0):
    """Sensor data is best effort: send fresh messages until one is seen to arrive."""

    def attempt():
        publisher.publish(make())
        return wait_until(received, timeout=0.2)

    return wait_until(attempt, timeout)


class Collector:
    """Every message received on one topic, with its arrival time (time.monotonic())."""

    def __init__(self) -> None:
        self.items: list[tuple[float, Any]] = []
        self._lock = threading.Lock()

    def __call__(self, msg: Any) -> None:
        with self._lock:
            self.items.append((time.monotonic(), msg))

    @property
    def messages(self) -> list[Any]:
        with self._lock:
            return [msg for _, msg in self.items]

    def since(self, t: float) -> list[Any]:
        with self._lock:
            return [msg for arrived, msg in self.items if arrived >= t]

    @property
    def last(self) -> Any:
        messages = self.messages
        return messages[-1] if messages else None

    def wait_for(
        self,
        predicate: Callable[[Any], bool] = lambda m: True,
        timeout=10.0,
        after: float | None = None,
    ) -> Any:
        """The first message matching `predicate`, or None after `timeout`.

        With `after` (a time.monotonic() taken at a trigger), only messages that arrived after
        it count: a stop test must never be satisfied by zeros sent before the stop.
        """
        found: list[Any] = []

        def check() -> bool:
            candidates = self.messages if after is None else self.since(after)
            found[:] = [m for m in candidates if predicate(m)]
            return bool(found)

        return found[0] if wait_until(check, timeout) else None

    def clear(self) -> None:
        with self._lock:
            self.items.clear()


def stopped_after(collector: Collector, trigger: float, check: Callable[[Any], bool], count=5):
    """From the first message after `trigger` that passes `check` on, every one passes it (waits
    for `count`). Only messages that arrived after the trigger count: a stop test is never
    satisfied by zeros sent before the stop."""
    first = collector.wait_for(check, after=trigger)
    if first is None:
        return False
    arrived = next(t for t, m in collector.items if m is first)
    assert wait_until(lambda: len(collector.since(arrived)) >= count)
    return all(check(m) for m in collector.since(arrived))


class RosGraph:
    def __init__(self, domain_id: int) -> None:
        self.domain_id = domain_id
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        # not MultiThreadedExecutor: it spins on tasks its pool has not started (logic/worker.py)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.probe = Node("test_probe", context=self.context)
        self.executor.add_node(self.probe)
        self.nodes: list[Node] = []
        self.processes: list[subprocess.Popen] = []
        self._running = threading.Event()
        self._running.set()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while self._running.is_set():
            self.executor.spin_once(timeout_sec=0.05)

    # -- nodes in this process ----------------------------------------------------------------
    def add(self, node_class: type[Node], parameters: dict[str, Any] | None = None, **kw) -> Node:
        overrides = [Parameter(k, value=v) for k, v in (parameters or {}).items()]
        node = node_class(context=self.context, parameter_overrides=overrides, **kw)
        self.nodes.append(node)
        self.executor.add_node(node)
        return node

    def remove(self, node: Node) -> None:
        self.executor.remove_node(node)
        self.nodes.remove(node)
        node.destroy_node()

    # -- node executables as processes --------------------------------------------------------
    def start(
        self, executable: str, ros_args: Iterable[str] = (), pythonpath: Iterable[Path] = ()
    ) -> subprocess.Popen:
        """Start a node executable from the venv, in this graph's domain.

        `pythonpath` folders come before the repository: modules there shadow installed ones.
        """
        env = dict(os.environ)
        env.update(
            ROS_DOMAIN_ID=str(self.domain_id),
            PYTHONPATH=os.pathsep.join([*map(str, pythonpath), str(REPO)]),
            PYTHONUNBUFFERED="1",
        )
        process = subprocess.Popen(
            [str(BIN / executable), "--ros-args", *ros_args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.processes.append(process)
        return process

    def stop(self, process: subprocess.Popen, sig: int = signal.SIGTERM, timeout=15.0) -> str:
        """Signal a started process and return everything it printed."""
        if process.poll() is None:
            process.send_signal(sig)
        try:
            output, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        return output or ""

    # -- the probe's own I/O ------------------------------------------------------------------
    def collect(self, msg_type: type, topic: str, qos: QoSProfile | int = 10) -> Collector:
        collector = Collector()
        self.probe.create_subscription(msg_type, topic, collector, qos)
        return collector

    def publisher(self, msg_type: type, topic: str, qos: QoSProfile | int = 10):
        return self.probe.create_publisher(msg_type, topic, qos)

    def log(self) -> Collector:
        """Everything the graph's nodes log (/rosout)."""
        return self.collect(Log, "/rosout", 100)

    def call(self, srv_type: type, name: str, request: Any, timeout: float = 10.0) -> Any:
        client = self.probe.create_client(srv_type, name)
        try:
            if not client.wait_for_service(timeout_sec=timeout):
                raise TimeoutError(f"service {name} did not appear")
            future = client.call_async(request)
            if not wait_until(future.done, timeout):
                raise TimeoutError(f"service {name} did not answer")
            return future.result()
        finally:
            self.probe.destroy_client(client)

    def set_parameters(self, node_name: str, values: dict[str, Any]):
        """Set parameters through the node's own service, as `ros2 param set` does."""
        request = SetParameters.Request(
            parameters=[Parameter(k, value=v).to_parameter_msg() for k, v in values.items()]
        )
        return self.call(SetParameters, f"/{node_name}/set_parameters", request).results

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.communicate()
        self._running.clear()
        self._thread.join(timeout=5.0)
        self.executor.shutdown(timeout_sec=2.0)
        for node in [*self.nodes, self.probe]:
            node.destroy_node()
        rclpy.try_shutdown(context=self.context)


class Repeater:
    """Publishes `make()`'s message at a fixed rate from the probe until stopped."""

    def __init__(self, graph: RosGraph, publisher: Any, make: Callable[[], Any], rate_hz: float):
        self._graph = graph
        self._publisher = publisher
        self._make = make
        self.timer = graph.probe.create_timer(1.0 / rate_hz, self._tick)

    def _tick(self) -> None:
        self._publisher.publish(self._make())

    def stop(self) -> None:
        self._graph.probe.destroy_timer(self.timer)
