"""Loop statistics for diagnostics and summaries: rates and latency percentiles."""

from __future__ import annotations

from collections import deque

import numpy as np


class RateMeter:
    """Events per second over a sliding window of recent event times."""

    def __init__(self, window: float = 2.0) -> None:
        if window <= 0:
            raise ValueError("window must be > 0 s")
        self.window = window
        self._times: deque[float] = deque()

    def tick(self, now: float) -> None:
        self._times.append(now)
        self._trim(now)

    def rate(self, now: float) -> float:
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
        self.count = 0

    def add(self, seconds: float) -> None:
        self._samples.append(seconds)
        self.count += 1

    def percentile(self, q: float) -> float:
        if not self._samples:
            return float("nan")
        return float(np.percentile(np.fromiter(self._samples, float), q))

    def summary_ms(self) -> dict[str, float]:
        return {
            "p50_ms": 1e3 * self.percentile(50),
            "p99_ms": 1e3 * self.percentile(99),
            "max_ms": 1e3 * max(self._samples, default=float("nan")),
        }
