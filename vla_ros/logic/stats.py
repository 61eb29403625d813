"""Loop statistics for diagnostics and summaries: rates and latency percentiles.

Each may be fed from one thread (a control loop) and read from another (a diagnostics timer).
"""

from __future__ import annotations

import threading
from collections import deque

import numpy as np


class RateMeter:
    """Events per second over a sliding window of recent event times."""

    def __init__(self, window: float = 2.0) -> None:
        if window <= 0:
            raise ValueError("window must be > 0 s")
        self.window = window
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def tick(self, now: float) -> None:
        with self._lock:
            self._times.append(now)
            self._trim(now)

    def rate(self, now: float) -> float:
        with self._lock:
            self._trim(now)
            if len(self._times) < 2:
                return 0.0
            span = now - self._times[0]
            return (len(self._times) - 1) / span if span > 0 else 0.0

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] > self.window:
            self._times.popleft()


class LatencyStats:
    """Percentiles over the last `capacity` samples (seconds in, seconds out)."""

    def __init__(self, capacity: int = 1000) -> None:
        self._samples: deque[float] = deque(maxlen=capacity)
        self._lock = threading.Lock()

    def add(self, seconds: float) -> None:
        with self._lock:
            self._samples.append(seconds)

    def _values(self) -> np.ndarray:
        with self._lock:
            return np.fromiter(self._samples, float)

    def summary_ms(self) -> dict[str, float]:
        values = self._values()
        if not values.size:
            return {"p50_ms": float("nan"), "p99_ms": float("nan"), "max_ms": float("nan")}
        p50, p99 = np.percentile(values, [50, 99])
        return {"p50_ms": 1e3 * p50, "p99_ms": 1e3 * p99, "max_ms": 1e3 * values.max()}
