"""The purposes a palm can be used for, and the consent each one needs.

The API's ``purpose`` values are ``entry``, ``payment`` and ``age_check`` (issue 8). The kiosk's consent notice
(:data:`palmid.kiosk.NOTICE_PURPOSES`) names them ``check_in``, ``payment`` and ``age_check``; ``entry`` is
allowed by a consent to ``check_in`` (or to ``entry``). A purpose the person did not consent to is refused for
that person (403 ``purpose_not_consented``).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Literal

from palmid.errors import ForbiddenError, ValidationFailed

Purpose = Literal["entry", "payment", "age_check"]
PURPOSES: tuple[Purpose, ...] = ("entry", "payment", "age_check")

#: API purpose -> consent purposes any one of which allows it.
CONSENT_FOR_PURPOSE = MappingProxyType(
    {
        "entry": frozenset({"check_in", "entry"}),
        "payment": frozenset({"payment"}),
        "age_check": frozenset({"age_check"}),
    }
)
MIN_AGE_LIMITS = (1, 125)


def parse_purpose(value: str) -> Purpose:
    clean = value.strip()
    for purpose in PURPOSES:
        if clean == purpose:
            return purpose
    raise ValidationFailed(f"purpose must be one of {', '.join(PURPOSES)}", code="invalid_purpose")


def parse_min_age(value: str | None) -> int:
    text = (value or "").strip()
    low, high = MIN_AGE_LIMITS
    if not text.isdigit() or not low <= int(text) <= high:
        raise ValidationFailed(f"min_age must be a whole number from {low} to {high}", code="invalid_min_age")
    return int(text)


def check_purpose_consented(purpose: Purpose, *, consented: tuple[str, ...]) -> None:
    """Raise ForbiddenError(purpose_not_consented) unless the person's consent covers ``purpose``."""
    if not CONSENT_FOR_PURPOSE[purpose] & set(consented):
        raise ForbiddenError(
            f"this person did not consent to use their palm for {purpose!r}", code="purpose_not_consented"
        )
