"""Per-key rate limits (identifications are a costly resource and an oracle: OWASP API4, hill-climbing).

A token bucket per API key: ``rate_per_minute`` tokens, refilled continuously. In-process state; verification
lockouts (which must survive restarts) are kept by the storage layer instead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from palmid.errors import RateLimitedError

Clock = Callable[[], float]
"""Monotonic seconds."""


@dataclass
class _Bucket:
    tokens: float
    updated_s: float


class RateLimiter:
    """Token buckets keyed by an opaque string (the API key id)."""

    def __init__(self, *, rate_per_minute: int, clock: Clock = time.monotonic, max_keys: int = 100_000) -> None:
        if rate_per_minute < 1:
            raise ValueError("rate_per_minute must be at least 1")
        self.capacity = float(rate_per_minute)
        self.refill_per_s = rate_per_minute / 60.0
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str) -> None:
        """Take one token for ``key`` or raise :class:`RateLimitedError` (``rate_limited``) with a retry delay."""
        with self._lock:
            now_s = self._clock()
            bucket = self._buckets.get(key)
            if bucket is None:
                self._evict_full(now_s)
                bucket = self._buckets[key] = _Bucket(tokens=self.capacity, updated_s=now_s)
            bucket.tokens = min(self.capacity, bucket.tokens + (now_s - bucket.updated_s) * self.refill_per_s)
            bucket.updated_s = now_s
            if bucket.tokens < 1.0:
                retry_after_s = (1.0 - bucket.tokens) / self.refill_per_s
                raise RateLimitedError(
                    "too many requests for this API key; retry later", code="rate_limited", retry_after_s=retry_after_s
                )
            bucket.tokens -= 1.0

    def _evict_full(self, now_s: float) -> None:
        """Forget keys whose bucket has refilled (they are indistinguishable from new keys)."""
        if len(self._buckets) < self._max_keys:
            return
        full = [
            key
            for key, bucket in self._buckets.items()
            if bucket.tokens + (now_s - bucket.updated_s) * self.refill_per_s >= self.capacity
        ]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) >= self._max_keys:
            raise RateLimitedError("service busy; retry later", code="rate_limited", retry_after_s=60.0)
