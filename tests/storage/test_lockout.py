"""Verification lockout (NIST SP 800-63B): 5 consecutive failures, then exponential back-off; success resets."""

from __future__ import annotations

import pytest
from storage_helpers import FakeClock, enroll_one, new_tenant

from palmid.errors import RateLimitedError
from palmid.storage.lockout import BASE_BACKOFF_S, MAX_BACKOFF_S, backoff_s
from palmid.storage.records import IssuedKey
from palmid.storage.repository import Store


def _fail(store: Store, subject_id: str, key: IssuedKey, times: int) -> None:
    for _ in range(times):
        store.check_not_locked(subject_id=subject_id, tenant_id=key.tenant_id, key_id=key.key_id)
        store.register_verification_result(
            subject_id=subject_id, tenant_id=key.tenant_id, key_id=key.key_id, matched=False
        )


def test_backoff_schedule() -> None:
    assert backoff_s(failures=4, max_failures=5) == 0
    assert backoff_s(failures=5, max_failures=5) == BASE_BACKOFF_S
    assert backoff_s(failures=6, max_failures=5) == 2 * BASE_BACKOFF_S
    assert backoff_s(failures=500, max_failures=5) == MAX_BACKOFF_S


def test_five_failures_lock_then_back_off_doubles(store: Store, clock: FakeClock) -> None:
    shop = new_tenant(store)
    subject = enroll_one(store, clock, tenant_id=shop.tenant_id).subject_id
    _fail(store, subject, shop, 5)
    with pytest.raises(RateLimitedError) as info:
        store.check_not_locked(subject_id=subject, tenant_id=shop.tenant_id, key_id=shop.key_id)
    assert info.value.code == "locked_out"
    assert info.value.retry_after_s == pytest.approx(BASE_BACKOFF_S)
    clock.advance(seconds=BASE_BACKOFF_S + 1)
    _fail(store, subject, shop, 1)  # the 6th failure doubles the wait
    with pytest.raises(RateLimitedError) as info:
        store.check_not_locked(subject_id=subject, tenant_id=shop.tenant_id, key_id=shop.key_id)
    assert info.value.retry_after_s == pytest.approx(2 * BASE_BACKOFF_S)


def test_success_resets_the_count(store: Store, clock: FakeClock) -> None:
    shop = new_tenant(store)
    subject = enroll_one(store, clock, tenant_id=shop.tenant_id).subject_id
    _fail(store, subject, shop, 4)
    store.register_verification_result(subject_id=subject, tenant_id=shop.tenant_id, key_id=shop.key_id, matched=True)
    _fail(store, subject, shop, 4)  # would lock at 5 without the reset
    store.check_not_locked(subject_id=subject, tenant_id=shop.tenant_id, key_id=shop.key_id)


def test_lockouts_are_per_subject_and_per_key(store: Store, clock: FakeClock) -> None:
    shop = new_tenant(store, "shop")
    stadium = new_tenant(store, "stadium")
    first = enroll_one(store, clock, tenant_id=shop.tenant_id, seed=1).subject_id
    second = enroll_one(store, clock, tenant_id=shop.tenant_id, seed=2).subject_id
    _fail(store, first, shop, 5)
    # The same person through another merchant's key is not locked by the first merchant's failures...
    store.check_not_locked(subject_id=first, tenant_id=stadium.tenant_id, key_id=stadium.key_id)
    # ...but the failing key is locked for every subject (spraying refs does not help).
    with pytest.raises(RateLimitedError):
        store.check_not_locked(subject_id=second, tenant_id=shop.tenant_id, key_id=shop.key_id)
    other_key = store.issue_key(tenant_id=shop.tenant_id, scopes=frozenset({"verify"}))
    with pytest.raises(RateLimitedError):  # and the subject is locked for this merchant whatever the key
        store.check_not_locked(subject_id=first, tenant_id=shop.tenant_id, key_id=other_key.key_id)
    store.check_not_locked(subject_id=second, tenant_id=shop.tenant_id, key_id=other_key.key_id)


def test_erasure_clears_subject_lock_state(store: Store, clock: FakeClock) -> None:
    shop = new_tenant(store)
    subject = enroll_one(store, clock, tenant_id=shop.tenant_id).subject_id
    _fail(store, subject, shop, 5)
    store.erase_subject(subject_id=subject, tenant_id=shop.tenant_id)
    other_key = store.issue_key(tenant_id=shop.tenant_id, scopes=frozenset({"verify"}))
    store.check_not_locked(subject_id=subject, tenant_id=shop.tenant_id, key_id=other_key.key_id)


def test_concurrent_failures_are_all_counted(store: Store, clock: FakeClock) -> None:
    import threading

    shop = new_tenant(store)
    subject = enroll_one(store, clock, tenant_id=shop.tenant_id).subject_id
    errors: list[BaseException] = []

    def fail_once() -> None:
        try:
            store.register_verification_result(
                subject_id=subject, tenant_id=shop.tenant_id, key_id=shop.key_id, matched=False
            )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=fail_once) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    with pytest.raises(RateLimitedError) as info:  # 6 failures: the second back-off step
        store.check_not_locked(subject_id=subject, tenant_id=shop.tenant_id, key_id=shop.key_id)
    assert info.value.retry_after_s == pytest.approx(2 * BASE_BACKOFF_S)
