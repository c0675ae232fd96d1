"""Per-key rate limits: a token bucket per key name (``ApiConfig.rate_per_minute``, ``rate_burst``).

Contract: a bucket holds at most ``burst`` tokens and refills at ``per_minute`` tokens a minute; each
request takes one. :meth:`RateLimiter.take` answers 0 when a token was taken, else the seconds until
one will be there (the ``Retry-After`` of the 429). ``per_minute`` 0 turns the limit off. Thread-safe;
the buckets live in the server process (one worker, docs/api.md).
"""

from __future__ import annotations

import threading
import time


class RateLimiter:
    """One token bucket per key name: ``burst`` tokens, refilled at ``per_minute`` a minute."""

    def __init__(self, per_minute: float, burst: int) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}  # name -> (tokens, when)
        self._lock = threading.Lock()

    def take(self, name: str) -> float:
        """0 when a token was taken, else the seconds until one will be there."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
            tokens, when = self._buckets.get(name, (self.burst, now))
            tokens = min(self.burst, tokens + (now - when) * self.rate)
            if tokens >= 1.0:
                self._buckets[name] = (tokens - 1.0, now)
                return 0.0
            self._buckets[name] = (tokens, now)
            return (1.0 - tokens) / self.rate
