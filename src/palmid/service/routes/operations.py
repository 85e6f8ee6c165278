"""Operations: GET /healthz (liveness) and GET /metrics (Prometheus text format, coarse labels only).

The public retention schedule, GET /v1/policy/retention, is in :mod:`palmid.service.routes.policy`.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from palmid.service.deps import Context
from palmid.service.metrics import CONTENT_TYPE
from palmid.service.schemas import HealthResponse

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=HealthResponse, summary="Liveness")
async def healthz() -> HealthResponse:
    return HealthResponse(status="ok")


@router.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics")
async def metrics(context: Context) -> PlainTextResponse:
    return PlainTextResponse(context.metrics.render(), media_type=CONTENT_TYPE)
