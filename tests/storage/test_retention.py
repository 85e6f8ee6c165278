"""Retention schedule (BIPA 15(a)): erase at min(consent term, last interaction + max idle), with receipts."""

from __future__ import annotations

from collections.abc import Callable

from storage_helpers import FakeClock, enroll_one, new_tenant

from palmid.config import RetentionSettings, Settings
from palmid.privacy.receipts import verify_receipt
from palmid.storage.repository import Store

DAY_S = 24 * 3600.0


def test_idle_person_is_erased_with_a_receipt(open_store: Callable[..., Store], clock: FakeClock) -> None:
    store = open_store(retention=RetentionSettings(max_idle_days=30, max_total_days=365))
    shop = new_tenant(store)
    idle = enroll_one(store, clock, tenant_id=shop.tenant_id, seed=1)
    active = enroll_one(store, clock, tenant_id=shop.tenant_id, seed=2)
    clock.advance(seconds=20 * DAY_S)
    store.touch_subject(subject_id=active.subject_id)
    clock.advance(seconds=9 * DAY_S)
    assert store.sweep_retention() == []  # day 29: nobody is due yet
    clock.advance(seconds=2 * DAY_S)
    swept = store.sweep_retention()
    assert [item.subject_id for item in swept] == [idle.subject_id]
    assert swept[0].receipt.subject_ref == idle.subject_ref
    assert verify_receipt(receipt=swept[0].receipt, public_key_b64=store.receipt_public_key_b64)
    assert [subject for subject, _ in store.iter_templates()] == [active.subject_id]
    assert store.verify_audit().ok


def test_consent_term_ends_retention_even_for_active_people(open_store: Callable[..., Store], clock: FakeClock) -> None:
    store = open_store(retention=RetentionSettings(max_idle_days=30, max_total_days=60))
    shop = new_tenant(store)
    enrolled = enroll_one(store, clock, tenant_id=shop.tenant_id)
    for days in (20, 20, 19):  # keeps interacting: never idle for 30 days
        clock.advance(seconds=days * DAY_S)
        store.touch_subject(subject_id=enrolled.subject_id)
        assert store.sweep_retention() == []
    clock.advance(seconds=1 * DAY_S)  # day 60: the consent's retention term is over
    assert [item.subject_id for item in store.sweep_retention()] == [enrolled.subject_id]
    assert store.count_subjects() == 0


def test_sweep_reaches_due_people_behind_not_yet_due_ones(settings: Settings, clock: FakeClock) -> None:
    long_term = settings.model_copy(update={"retention": RetentionSettings(max_idle_days=1000, max_total_days=400)})
    store = Store.open(settings=long_term, clock=clock)
    shop = new_tenant(store)
    for seed in (1, 2, 3):
        enroll_one(store, clock, tenant_id=shop.tenant_id, seed=seed)
    store.close()
    short_term = settings.model_copy(update={"retention": RetentionSettings(max_idle_days=1000, max_total_days=60)})
    store = Store.open(settings=short_term, clock=clock)
    try:
        clock.advance(seconds=1)
        short = enroll_one(store, clock, tenant_id=shop.tenant_id, seed=4)
        clock.advance(seconds=61 * DAY_S)
        assert [item.subject_id for item in store.sweep_retention(limit=2)] == [short.subject_id]
        assert store.count_subjects() == 3
    finally:
        store.close()
