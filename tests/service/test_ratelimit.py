"""Per-key token buckets for identifications."""

from __future__ import annotations

import pytest

from palmid.errors import RateLimitedError
from palmid.service.ratelimit import RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


def test_burst_up_to_the_rate_then_refused_with_retry_after() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate_per_minute=3, clock=clock)
    for _ in range(3):
        limiter.acquire("key-a")
    with pytest.raises(RateLimitedError) as caught:
        limiter.acquire("key-a")
    assert caught.value.code == "rate_limited"
    assert 19.0 < caught.value.retry_after_s <= 20.0  # one token per 20 s


def test_keys_are_independent_and_tokens_refill() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate_per_minute=1, clock=clock)
    limiter.acquire("key-a")
    limiter.acquire("key-b")
    with pytest.raises(RateLimitedError):
        limiter.acquire("key-a")
    clock.now_s += 60.0
    limiter.acquire("key-a")


def test_refill_never_exceeds_capacity() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate_per_minute=2, clock=clock)
    clock.now_s += 3600.0
    limiter.acquire("k")
    limiter.acquire("k")
    with pytest.raises(RateLimitedError):
        limiter.acquire("k")


def test_memory_is_bounded() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate_per_minute=1, clock=clock, max_keys=2)
    limiter.acquire("a")
    limiter.acquire("b")
    with pytest.raises(RateLimitedError):
        limiter.acquire("c")  # both buckets are still empty: no room, refused rather than unbounded
    clock.now_s += 60.0
    limiter.acquire("c")  # full buckets were forgotten


def test_bad_rate() -> None:
    with pytest.raises(ValueError, match="rate_per_minute"):
        RateLimiter(rate_per_minute=0)
