"""Client-side rate limit: a token bucket that refills at a fixed number of requests/s."""

from __future__ import annotations

import threading
import time
from typing import Callable


class TokenBucket:
    """Allow bursts of ``burst`` requests, then at most ``rate`` requests per second.

    ``clock`` and ``sleep`` are injectable so tests run on a fake clock.
    """

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not rate > 0:
            raise ValueError(f"TokenBucket rate must be > 0 requests per second, got {rate!r}")
        if burst < 1:
            raise ValueError(f"TokenBucket burst must be >= 1, got {burst!r}")
        self.rate = float(rate)
        self.burst = int(burst)
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._last = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now

    def acquire(self) -> float:
        """Take one token, sleeping until one is available; return the seconds waited."""
        with self._lock:
            self._refill()
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return 0.0
            delay = (1.0 - self._tokens) / self.rate
            self._sleep(delay)
            # The token that accrued during the sleep is spent now; ``_last`` moves at
            # least by ``delay`` so a clock that lags the sleep cannot grant extra tokens.
            self._tokens = 0.0
            self._last = max(self._clock(), self._last + delay)
            return delay
