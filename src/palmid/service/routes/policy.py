"""GET /v1/policy/retention: the public retention schedule (BIPA 15(a)), no authentication."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from palmid.privacy.retention import retention_policy
from palmid.service.deps import Context

router = APIRouter(tags=["policy"])


class RetentionPolicyResponse(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    max_idle_days: int = Field(description="A palm is destroyed this many days after its last use.")
    max_total_days: int = Field(description="...and at the latest this many days after enrollment.")
    legal_max_days: int = Field(description="The ceiling no configuration may exceed (3 years, BIPA).")
    sweep_interval_s: float = Field(description="How often the service erases people past the limit.")
    notice_version: str = Field(description="Version of the notice text that states these limits at the kiosk.")
    notice_sha256: str = Field(description="SHA-256 (hex) of that exact notice text.")
    summary: str
    erasure: str = Field(description="How a person can be erased at once, before any limit.")


@router.get(
    "/v1/policy/retention",
    response_model=RetentionPolicyResponse,
    summary="The public retention schedule (no authentication)",
)
async def get_retention_policy(context: Context) -> RetentionPolicyResponse:
    policy = retention_policy(settings=context.settings)
    return RetentionPolicyResponse(
        max_idle_days=policy.max_idle_days,
        max_total_days=policy.max_total_days,
        legal_max_days=policy.legal_max_days,
        sweep_interval_s=policy.sweep_interval_s,
        notice_version=policy.notice_version,
        notice_sha256=policy.notice_sha256,
        summary=policy.summary,
        erasure="one call (DELETE /v1/subjects/{subject_ref}) at any participating merchant, with a signed receipt",
    )
