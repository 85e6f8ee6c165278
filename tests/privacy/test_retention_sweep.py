"""The retention sweeper (privacy/retention.py) on a real store with an injected clock, and the public policy.

(Named test_retention_sweep.py: tests/storage/test_retention.py already owns the basename test_retention.py.)
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from palmid.config import BIPA_MAX_DAYS, RetentionSettings, Settings
from palmid.errors import ValidationFailed
from palmid.kiosk import NOTICE_VERSION, render_notice
from palmid.privacy.consent import build_consent
from palmid.privacy.receipts import verify_receipt
from palmid.privacy.retention import retention_policy, sweep_retention
from palmid.storage.records import EnrolledSubject
from palmid.storage.repository import Store


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", retention=RetentionSettings(max_idle_days=30, max_total_days=90))


@pytest.fixture
def store(settings: Settings, clock: Clock) -> Iterator[Store]:
    with Store.open(settings=settings, clock=clock) as opened:
        yield opened


def _enroll(store: Store, clock: Clock, *, tenant_id: str, seed: int) -> EnrolledSubject:
    consent = build_consent(notice_version="2026-01", purposes=["payment"], accepted_at=clock.now, now=clock.now)
    template = bytes((seed * 13 + i) % 256 for i in range(512))
    return store.enroll_subject(tenant_id=tenant_id, consent=consent, template=template)


def test_sweep_erases_the_idle_with_receipts_and_tells_the_index(store: Store, clock: Clock) -> None:
    shop = store.create_tenant(name="shop", scopes=frozenset({"enroll"}))
    people = [_enroll(store, clock, tenant_id=shop.tenant_id, seed=n) for n in range(3)]
    clock.now += timedelta(days=29)
    store.touch_subject(subject_id=people[2].subject_id)  # still a customer
    assert sweep_retention(store).erased == 0
    clock.now += timedelta(days=1, seconds=1)  # day 30 for the first two
    dropped: list[str] = []
    sweep = sweep_retention(store, on_erased=dropped.append, batch_size=1)  # several batches
    assert sorted(dropped) == sorted(person.subject_id for person in people[:2])
    assert sorted(receipt.subject_ref for receipt in sweep.receipts) == sorted(p.subject_ref for p in people[:2])
    for receipt in sweep.receipts:
        assert verify_receipt(receipt=receipt, public_key_b64=store.receipt_public_key_b64)
        assert any(item.startswith("data_key:1") for item in receipt.destroyed)  # crypto-shredded
    assert [subject for subject, _ in store.iter_templates()] == [people[2].subject_id]
    assert store.verify_audit().ok
    clock.now += timedelta(days=60)  # day 90 for the last one: the total term ends even for the active
    store.touch_subject(subject_id=people[2].subject_id)
    assert [r.subject_ref for r in sweep_retention(store).receipts] == [people[2].subject_ref]
    assert store.count_subjects() == 0


def test_a_sweep_can_be_bounded(store: Store, clock: Clock) -> None:
    shop = store.create_tenant(name="shop", scopes=frozenset({"enroll"}))
    for n in range(3):
        _enroll(store, clock, tenant_id=shop.tenant_id, seed=n)
    clock.now += timedelta(days=31)
    assert sweep_retention(store, batch_size=1, max_batches=2).erased == 2
    assert sweep_retention(store, batch_size=1).erased == 1
    with pytest.raises(ValidationFailed):
        sweep_retention(store, batch_size=0)


def test_policy_states_the_enforced_limits_and_the_notice(settings: Settings) -> None:
    policy = retention_policy(settings=settings)
    assert (policy.max_idle_days, policy.max_total_days) == (30, 90)
    assert policy.legal_max_days == BIPA_MAX_DAYS == 3 * 365
    assert policy.notice_version == NOTICE_VERSION
    notice = render_notice(settings=settings)
    assert policy.notice_sha256 == notice.sha256
    assert "30 days" in notice.text and "90 days" in notice.text  # the notice states the same limits
    assert "30 days" in policy.summary and "90 days" in policy.summary
    default = retention_policy(settings=Settings(data_dir=settings.data_dir))
    assert default.max_idle_days == 365 and default.max_total_days <= BIPA_MAX_DAYS
