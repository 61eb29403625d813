"""The main() every node executable shares: init, spin, and a clean exit on Ctrl-C, SIGTERM or
SIGHUP."""

from __future__ import annotations

import ctypes
import gc
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence

import rclpy
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from vla_ros.ros.launcher import PARENT_ENV

_PR_SET_PDEATHSIG = 1


def _end_with_parent() -> None:
    """Ask Linux for SIGTERM when the launcher dies, however it dies (even SIGKILL)."""
    parent = os.environ.get(PARENT_ENV)
    if not parent or not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if str(os.getppid()) != parent:  # it died before the request was in place
        os.kill(os.getpid(), signal.SIGTERM)


def run_node(make_node: Callable[[], Node], args: Sequence[str] | None = None) -> int:
    """Run one node until Ctrl-C, SIGTERM or SIGHUP; returns the process exit status.

    rclpy's own signal handlers would shut the context down before the node could act, so this
    catches the signals itself and calls the node's `before_shutdown()` (if it has one) while it
    can still publish: the safety node's last stop command depends on it.
    """
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda *_: stop.set())
    _end_with_parent()
    node = None
    status = 0
    executor = SingleThreadedExecutor()
    try:
        node = make_node()
        # What start-up created (imports, a model: ~400k objects) is never garbage; frozen, the
        # collector's full passes skip it instead of pausing the node for ~200 ms.
        gc.freeze()
        executor.add_node(node)
        while not stop.is_set() and rclpy.ok():
            executor.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (ValueError, ParameterException) as error:
        # Configuration errors (bad parameter values at start-up) end the node with a reason.
        print(f"{sys.argv[0]}: {error}", file=sys.stderr)
        status = 2
    finally:
        before_shutdown = getattr(node, "before_shutdown", None)
        if before_shutdown is not None and rclpy.ok():
            before_shutdown()
        executor.shutdown()
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return status
