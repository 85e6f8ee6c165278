"""GET /v1/transparency: public counts for a transparency report (no authentication, no per-person data).

The endpoint is public, so answers are cached for :data:`CACHE_TTL_S` per requested period: anyone may read the
report, nobody can turn it into a stream of database scans.
"""

from __future__ import annotations

import threading
import time
from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from palmid.privacy.transparency import build_report, report_period
from palmid.service.deps import Context
from palmid.service.routes.common import ERROR_RESPONSES

router = APIRouter(tags=["transparency"])

CACHE_TTL_S = 10.0
CACHE_MAX_ENTRIES = 64
_CACHE_STATE = "palmid_transparency_cache"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PeriodBody(_Frozen):
    start: datetime
    end: datetime = Field(description="Exclusive.")


class TransparencyResponse(_Frozen):
    period: PeriodBody
    enrolled_now: int = Field(description="People enrolled at the time of the report.")
    enrollments: int
    erasures: int = Field(description="People erased in the period (on request or by the retention schedule).")
    identification_requests: int
    legal_requests: int = Field(description="Government and legal requests recorded by the operator.")
    legal_requests_with_disclosure: int = Field(description="Of those, how many led to any disclosure.")
    generated_at: datetime


class ReportCache:
    """Recent reports by requested period (``app.state``; thread-safe; oldest entries dropped first)."""

    def __init__(self, *, ttl_s: float = CACHE_TTL_S, max_entries: int = CACHE_MAX_ENTRIES) -> None:
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._entries: dict[tuple[date | None, date | None], tuple[float, TransparencyResponse]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[date | None, date | None], *, now_s: float) -> TransparencyResponse | None:
        with self._lock:
            entry = self._entries.get(key)
        return entry[1] if entry is not None and now_s - entry[0] < self._ttl_s else None

    def put(self, key: tuple[date | None, date | None], value: TransparencyResponse, *, now_s: float) -> None:
        with self._lock:
            self._entries[key] = (now_s, value)
            while len(self._entries) > self._max_entries:
                del self._entries[next(iter(self._entries))]


def _cache(request: Request) -> ReportCache:
    cache = getattr(request.app.state, _CACHE_STATE, None)
    if not isinstance(cache, ReportCache):
        cache = ReportCache()
        setattr(request.app.state, _CACHE_STATE, cache)
    return cache


@router.get(
    "/v1/transparency",
    response_model=TransparencyResponse,
    responses={status: ERROR_RESPONSES[status] for status in (400, 422)},
    summary="Counts for the public transparency report (no authentication)",
)
async def get_transparency(
    request: Request,
    context: Context,
    since: Annotated[date | None, Query(description="First day (UTC) of the period; default 1 January.")] = None,
    until: Annotated[date | None, Query(description="Last day (UTC), inclusive; default today.")] = None,
) -> TransparencyResponse:
    cache, now_s = _cache(request), time.monotonic()
    cached = cache.get((since, until), now_s=now_s)
    if cached is not None:
        return cached
    now = context.now()
    period = report_period(since=since, until=until, now=now)
    report = await context.run_storage(lambda: build_report(context.store, period=period))
    response = TransparencyResponse(
        period=PeriodBody(start=report.period.start, end=report.period.end),
        enrolled_now=report.enrolled_now,
        enrollments=report.enrollments,
        erasures=report.erasures,
        identification_requests=report.identification_requests,
        legal_requests=report.legal_requests,
        legal_requests_with_disclosure=report.legal_requests_with_disclosure,
        generated_at=now,
    )
    cache.put((since, until), response, now_s=now_s)
    return response
