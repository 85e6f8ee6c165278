"""Request and response bodies for purposes (issue 8): links at enrollment, and identification per purpose.

Each purpose answers only what it needs: ``entry`` -> matched + the merchant's ref (+ its own membership id);
``payment`` -> matched + the authorization; ``age_check`` -> matched + meets_min_age (never the birth date).
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AgeAttestationRequest(_Frozen):
    """A date of birth that a member of staff read from an ID document (the document is never sent or kept)."""

    date_of_birth: date
    document_checked: bool = Field(description="Staff confirm they checked an ID document; must be true.")


class LinksRequest(_Frozen):
    """What the person links at enrollment; each part optional. Card numbers are refused (processor tokens only)."""

    payment_token: str | None = Field(
        default=None, max_length=200, description="Opaque token from the payment processor (never a card number)."
    )
    membership_id: str | None = Field(
        default=None, max_length=64, description="The person's membership/loyalty id at the calling merchant."
    )
    age_attestation: AgeAttestationRequest | None = None


class LinksResponse(_Frozen):
    subject_ref: str
    linked: list[str] = Field(description="Kinds now linked by this request (never their values).")


class EntryResponse(_Frozen):
    purpose: Literal["entry"]
    matched: bool
    subject_ref: str | None
    membership_id: str | None = Field(default=None, description="The calling merchant's own membership id, if any.")


class AuthorizationBody(_Frozen):
    authorization_id: str
    status: Literal["approved", "declined"]
    amount: str = Field(description="Decimal amount, e.g. 12.50.")
    currency: str
    gateway: str
    sandbox: bool = Field(description="True: a SANDBOX gateway answered and no money moved.")
    decline_code: str | None = None


class PaymentResponse(_Frozen):
    purpose: Literal["payment"]
    matched: bool
    authorization: AuthorizationBody | None


class AgeCheckResponse(_Frozen):
    purpose: Literal["age_check"]
    matched: bool
    meets_min_age: bool
