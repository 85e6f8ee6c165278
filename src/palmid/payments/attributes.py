"""What a person may link at enrollment, validated before anything is stored.

* a payment token: the opaque token a payment processor issued for the person's card. palmid never sees card
  numbers: anything that looks like a primary account number (a run of 12 to 19 digits, spaces and dashes
  ignored) is refused with ``card_number_refused``;
* a membership (loyalty) id for the enrolling merchant only;
* an age attestation: the date of birth a member of staff read from an ID document. Only the date is kept,
  encrypted under the person's data key (erasure shreds it); the document itself is never sent or stored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from palmid.errors import ValidationFailed

_TOKEN_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{7,199}$")
_MEMBERSHIP_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_PAN_RUN_RE = re.compile(r"[0-9]{12,19}")
MAX_AGE_YEARS = 130


@dataclass(frozen=True, kw_only=True)
class SubjectLinks:
    """Validated links for one person (``None``: nothing to link of that kind)."""

    payment_token: str | None = None
    membership_id: str | None = None
    date_of_birth: date | None = None

    @property
    def kinds(self) -> tuple[str, ...]:
        """Which kinds are linked (what the audit log and the export may show; never the values)."""
        return tuple(
            kind
            for kind, value in (
                ("payment_token", self.payment_token),
                ("membership_id", self.membership_id),
                ("date_of_birth", self.date_of_birth),
            )
            if value is not None
        )


def looks_like_card_number(text: str) -> bool:
    """True when ``text`` contains 12 to 19 consecutive digits once spaces and dashes are removed."""
    return bool(_PAN_RUN_RE.search(re.sub(r"[\s-]", "", text)))


def check_payment_token(token: str) -> str:
    """An opaque processor token (8-200 characters: letters, digits, ``_ . : -``); card numbers are refused."""
    clean = token.strip()
    if looks_like_card_number(clean):
        raise ValidationFailed(
            "this looks like a card number: palmid never takes card numbers, link the payment processor's token",
            code="card_number_refused",
        )
    if not _TOKEN_RE.match(clean):
        raise ValidationFailed(
            "payment_token must be the processor's opaque token (8-200 letters, digits, '_', '.', ':', '-')",
            code="invalid_payment_token",
        )
    return clean


def check_membership_id(membership_id: str) -> str:
    clean = membership_id.strip()
    if looks_like_card_number(clean):
        raise ValidationFailed("a membership id must not be a card number", code="card_number_refused")
    if not _MEMBERSHIP_RE.match(clean):
        raise ValidationFailed(
            "membership_id must be 1-64 letters, digits, '_', '.', ':', '-'", code="invalid_membership_id"
        )
    return clean


def age_on(*, date_of_birth: date, today: date) -> int:
    """Age in whole years on ``today`` (someone born on 29 February turns a year older on 1 March)."""
    years = today.year - date_of_birth.year
    if (today.month, today.day) < (date_of_birth.month, date_of_birth.day):
        years -= 1
    return years


def check_date_of_birth(date_of_birth: date, *, today: date, document_checked: bool) -> date:
    """A staff-attested date of birth: the member of staff must confirm they checked an ID document."""
    if not document_checked:
        raise ValidationFailed(
            "an age attestation needs document_checked=true (staff checked an ID document)",
            code="age_attestation_unchecked",
        )
    if date_of_birth > today or age_on(date_of_birth=date_of_birth, today=today) > MAX_AGE_YEARS:
        raise ValidationFailed("date_of_birth is not plausible", code="invalid_date_of_birth")
    return date_of_birth
