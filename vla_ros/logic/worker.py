"""A job run on a thread of its own each time it is triggered; a trigger that finds it busy is
dropped, never queued.

The fusion node runs inference this way beside a single-threaded ROS executor. rclpy's
MultiThreadedExecutor re-submits every task its pool has not started yet on each pass of its
loop: when inference held a worker, the executor thread spun at 75-90 % of a core, flooded the
pool with duplicates and stalled the 10 Hz loop for up to a second at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class TriggeredWorker:
    """Runs `job` on its own thread once per accepted `trigger()`.

    `on_error` gets any exception the job raises (the thread keeps serving triggers).
    """

    def __init__(
        self,
        job: Callable[[], None],
        on_error: Callable[[BaseException], None],
        name: str = "worker",
    ) -> None:
        self._job = job
        self._on_error = on_error
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._pending = False
        self._busy = False
        self._stopping = False
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def trigger(self) -> bool:
        """Start the job now; False (and nothing started) if it is still running or stopped."""
        with self._lock:
            if self._busy or self._pending or self._stopping:
                return False
            self._pending = True
            self._wake.notify()
            return True

    @property
    def busy(self) -> bool:
        with self._lock:
            return self._busy or self._pending

    def stop(self, timeout: float = 5.0) -> bool:
        """Let a running job finish (up to `timeout` s) and end the thread; True if it ended."""
        with self._lock:
            self._stopping = True
            self._wake.notify()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _serve(self) -> None:
        while True:
            with self._lock:
                while not (self._pending or self._stopping):
                    self._wake.wait()
                if self._stopping:
                    return
                self._pending, self._busy = False, True
            try:
                self._job()
            except Exception as error:  # reported by the owner; the thread must keep serving
                self._on_error(error)
            finally:
                with self._lock:
                    self._busy = False


class BackgroundLoader:
    """Builds something slow (a policy) on a thread of its own while the old one keeps serving.

    `request(args)` starts a load (a request made during a load waits, and only the newest
    waiting one is kept); a finished result is handed over once by `take()`, so the thread that
    uses it decides when to switch. A load that raises goes to `on_error(args, error)`, and
    nothing is handed over.
    """

    def __init__(
        self,
        load: Callable[[dict], object],
        on_error: Callable[[dict, BaseException], None],
        name: str = "loader",
    ) -> None:
        self._load = load
        self._on_error = on_error
        self._name = name
        self._lock = threading.Lock()
        self._waiting: dict | None = None
        self._loading = False
        self._result: tuple[dict, object] | None = None

    def request(self, args: dict) -> None:
        with self._lock:
            self._waiting = args
            if self._loading:
                return
            self._loading = True
        threading.Thread(target=self._serve, name=self._name, daemon=True).start()

    @property
    def busy(self) -> bool:
        with self._lock:
            return self._loading

    def take(self) -> tuple[dict, object] | None:
        """The newest finished (args, result), once; None if nothing new has loaded."""
        with self._lock:
            result, self._result = self._result, None
            return result

    def _serve(self) -> None:
        while True:
            with self._lock:
                args, self._waiting = self._waiting, None
                if args is None:
                    self._loading = False
                    return
            try:
                result = self._load(args)
            except Exception as error:  # reported by the owner, who keeps what it had
                self._on_error(args, error)
                continue
            with self._lock:
                self._result = (args, result)
