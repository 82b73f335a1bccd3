"""In-memory token buckets per client, sized by role. One gateway replica = one set of buckets.

Each replica limits on its own (N replicas allow N times the rate); that is acceptable for
protecting the services from a runaway client, which is the goal here.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass
class Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(
        self, limits: Mapping[str, tuple[float, float]], *, clock: Callable[[], float] = time.monotonic, max_clients: int = 100_000
    ):
        self.limits = dict(limits)
        self.clock = clock
        self.max_clients = max_clients
        self._buckets: dict[tuple[str, str], Bucket] = {}

    def check(self, client_key: str, role: str) -> float | None:
        """Take one token. None when allowed; otherwise the seconds to wait (for Retry-After)."""
        rate, burst = self.limits.get(role) or self.limits.get("anonymous") or (1.0, 10.0)
        now = self.clock()
        key = (role, client_key)
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_clients:
                self._evict(now)
            bucket = self._buckets[key] = Bucket(burst, now)
        else:
            bucket.tokens = min(burst, bucket.tokens + (now - bucket.updated) * rate)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / rate if rate > 0 else 3600.0

    def _evict(self, now: float) -> None:
        """Drop buckets that would be full by now (they carry no information)."""
        for key, bucket in list(self._buckets.items()):
            rate, burst = self.limits.get(key[0]) or (1.0, 10.0)
            if bucket.tokens + (now - bucket.updated) * rate >= burst:
                del self._buckets[key]
        if len(self._buckets) >= self.max_clients:
            self._buckets.clear()


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
