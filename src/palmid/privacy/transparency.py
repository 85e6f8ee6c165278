"""Transparency: public counts for a report, and the operator's record of government and legal requests.

The counts come from the hash-chained audit log (no new personal data is kept for them): enrollments, erasures
(by the person, a merchant or the retention sweep), identification requests and legal requests in a period, plus
how many people are enrolled now. A legal request (subpoena, warrant, court order, ...) is recorded by the operator
with ``palmid legal-request record`` as an audit event ``legal_request`` whose detail names the kind, the date
received, what was disclosed and the operator's own case reference -- never a person's identifier.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

from palmid.errors import ValidationFailed
from palmid.storage.repository import Store

LegalRequestKind = Literal["subpoena", "warrant", "court_order", "national_security", "preservation", "other"]
LEGAL_REQUEST_KINDS: tuple[LegalRequestKind, ...] = (
    "subpoena",
    "warrant",
    "court_order",
    "national_security",
    "preservation",
    "other",
)
Disclosure = Literal["none", "partial", "full"]
DISCLOSURES: tuple[Disclosure, ...] = ("none", "partial", "full")

LEGAL_REQUEST_EVENT = "legal_request"
#: Audit event slugs counted by the report.
ENROLL_EVENT = "enroll"
ERASE_EVENT = "erase"
IDENTIFY_EVENT = "identify"

_REFERENCE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$")
#: The longest period one report may cover.
MAX_PERIOD = timedelta(days=3 * 366)


@dataclass(frozen=True, kw_only=True)
class ReportPeriod:
    """A half-open period ``[start, end)`` in UTC."""

    start: datetime
    end: datetime


@dataclass(frozen=True, kw_only=True)
class TransparencyReport:
    """Counts for a public transparency report (no per-person or per-merchant figure)."""

    period: ReportPeriod
    enrolled_now: int
    enrollments: int
    erasures: int
    identification_requests: int
    legal_requests: int
    legal_requests_with_disclosure: int


@dataclass(frozen=True, kw_only=True)
class LegalRequest:
    """A government or legal request as recorded by the operator."""

    kind: LegalRequestKind
    received_on: date
    disclosed: Disclosure
    reference: str
    """The operator's own case reference (letters, digits, ``. _ / -``); never a person's identifier."""

    def audit_detail(self) -> str:
        return (
            f"kind={self.kind};received={self.received_on.isoformat()};disclosed={self.disclosed};"
            f"reference={self.reference}"
        )


def legal_request(*, kind: str, received_on: date, disclosed: str, reference: str, today: date) -> LegalRequest:
    """Validate a legal request before it is recorded (ValidationFailed with a clear message otherwise)."""
    known_kind = next((item for item in LEGAL_REQUEST_KINDS if item == kind), None)
    if known_kind is None:
        raise ValidationFailed(f"kind must be one of {', '.join(LEGAL_REQUEST_KINDS)}", code="invalid_legal_request")
    known_disclosure = next((item for item in DISCLOSURES if item == disclosed), None)
    if known_disclosure is None:
        raise ValidationFailed(f"disclosed must be one of {', '.join(DISCLOSURES)}", code="invalid_legal_request")
    if received_on > today:
        raise ValidationFailed("received date lies in the future", code="invalid_legal_request")
    if not _REFERENCE_RE.match(reference):
        raise ValidationFailed(
            "reference must be 1-64 characters: letters, digits, '.', '_', '/', '-'", code="invalid_legal_request"
        )
    return LegalRequest(kind=known_kind, received_on=received_on, disclosed=known_disclosure, reference=reference)


def record_legal_request(store: Store, *, request: LegalRequest) -> None:
    """Append the request to the audit log (tamper-evident; counted by :func:`build_report`)."""
    store.append_audit(event=LEGAL_REQUEST_EVENT, tenant_id=None, subject_ref_hash=None, detail=request.audit_detail())


def report_period(*, since: date | None, until: date | None, now: datetime) -> ReportPeriod:
    """``[since 00:00, until + 1 day 00:00)`` in UTC; default: the current calendar year up to now."""
    now = now.astimezone(UTC)
    start = datetime.combine(since, time(0), tzinfo=UTC) if since else datetime(now.year, 1, 1, tzinfo=UTC)
    end = datetime.combine(until + timedelta(days=1), time(0), tzinfo=UTC) if until else now
    if end <= start:
        raise ValidationFailed("the period must end after it starts", code="invalid_period")
    if end - start > MAX_PERIOD:
        raise ValidationFailed("a report covers at most 3 years", code="invalid_period")
    return ReportPeriod(start=start, end=end)


def build_report(store: Store, *, period: ReportPeriod) -> TransparencyReport:
    """Count what happened in ``period`` from the audit log."""

    def count(event: str) -> int:
        return store.count_audit_events(event=event, since=period.start, until=period.end)

    disclosed = sum(
        store.count_audit_events(
            event=LEGAL_REQUEST_EVENT, since=period.start, until=period.end, detail_contains=f"disclosed={kind};"
        )
        for kind in DISCLOSURES
        if kind != "none"
    )
    return TransparencyReport(
        period=period,
        enrolled_now=store.count_subjects(),
        enrollments=count(ENROLL_EVENT),
        erasures=count(ERASE_EVENT),
        identification_requests=count(IDENTIFY_EVENT),
        legal_requests=count(LEGAL_REQUEST_EVENT),
        legal_requests_with_disclosure=disclosed,
    )
