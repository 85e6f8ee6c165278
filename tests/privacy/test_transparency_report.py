"""Transparency counts from the audit log, and legal requests recorded by the operator."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from palmid.config import Settings
from palmid.errors import ValidationFailed
from palmid.privacy.consent import build_consent
from palmid.privacy.transparency import build_report, legal_request, record_legal_request, report_period
from palmid.storage.repository import Store

TODAY = date(2026, 11, 25)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Iterator[Store]:
    with Store.open(settings=Settings(data_dir=tmp_path / "data"), clock=clock) as opened:
        yield opened


def _enroll(store: Store, clock: Clock, *, tenant_id: str, seed: int) -> str:
    consent = build_consent(notice_version="2026-01", purposes=["payment"], accepted_at=clock.now, now=clock.now)
    template = bytes((seed * 13 + i) % 256 for i in range(512))
    return store.enroll_subject(tenant_id=tenant_id, consent=consent, template=template).subject_id


def test_report_counts_what_happened_in_the_period(store: Store, clock: Clock) -> None:
    shop = store.create_tenant(name="shop", scopes=frozenset({"enroll"}))
    clock.now = datetime(2026, 10, 15, tzinfo=UTC)  # last month: outside the November report
    old = _enroll(store, clock, tenant_id=shop.tenant_id, seed=1)
    store.append_audit(event="identify", tenant_id=shop.tenant_id, subject_ref_hash=None, detail="not_matched")
    clock.now = datetime(2026, 11, 20, tzinfo=UTC)
    _enroll(store, clock, tenant_id=shop.tenant_id, seed=2)
    _enroll(store, clock, tenant_id=shop.tenant_id, seed=3)
    store.erase_subject(subject_id=old, tenant_id=shop.tenant_id)
    for detail in ("matched", "not_matched", "matched purpose=payment"):
        store.append_audit(event="identify", tenant_id=shop.tenant_id, subject_ref_hash=None, detail=detail)
    for disclosed in ("none", "partial", "none"):
        request = legal_request(
            kind="subpoena", received_on=TODAY, disclosed=disclosed, reference="case-2026/17", today=TODAY
        )
        record_legal_request(store, request=request)
    november = report_period(since=date(2026, 11, 1), until=date(2026, 11, 30), now=clock.now)
    report = build_report(store, period=november)
    assert report.enrolled_now == 2
    assert report.enrollments == 2
    assert report.erasures == 1
    assert report.identification_requests == 3
    assert report.legal_requests == 3
    assert report.legal_requests_with_disclosure == 1
    october = build_report(
        store, period=report_period(since=date(2026, 10, 1), until=date(2026, 10, 31), now=clock.now)
    )
    assert (october.enrollments, october.identification_requests, october.legal_requests) == (1, 1, 0)
    assert store.verify_audit().ok  # legal requests sit in the tamper-evident chain


def test_periods_default_to_the_year_so_far_and_are_checked() -> None:
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)
    period = report_period(since=None, until=None, now=now)
    assert (period.start, period.end) == (datetime(2026, 1, 1, tzinfo=UTC), now)
    day = report_period(since=TODAY, until=TODAY, now=now)
    assert day.end - day.start == timedelta(days=1)
    for since, until in ((date(2026, 11, 2), date(2026, 11, 1)), (date(2020, 1, 1), date(2026, 1, 1))):
        with pytest.raises(ValidationFailed) as info:
            report_period(since=since, until=until, now=now)
        assert info.value.code == "invalid_period"


@pytest.mark.parametrize(
    ("kind", "received", "disclosed", "reference"),
    [
        ("fishing", TODAY, "none", "case-1"),
        ("warrant", TODAY + timedelta(days=1), "none", "case-1"),
        ("warrant", TODAY, "some", "case-1"),
        ("warrant", TODAY, "none", "sr_aaaaaaaaaaaaaaaaaaaaaaaaaa; drop"),
        ("warrant", TODAY, "none", ""),
    ],
)
def test_bad_legal_requests_are_refused(kind: str, received: date, disclosed: str, reference: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        legal_request(kind=kind, received_on=received, disclosed=disclosed, reference=reference, today=TODAY)
    assert info.value.code == "invalid_legal_request"
