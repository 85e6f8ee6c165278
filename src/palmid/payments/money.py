"""Amounts and currencies for payment authorizations: exact decimals, stored as integer minor units."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from types import MappingProxyType

from palmid.errors import ValidationFailed

#: ISO 4217 currencies accepted, with their number of decimal places.
CURRENCY_EXPONENTS = MappingProxyType(
    {
        "EUR": 2,
        "USD": 2,
        "GBP": 2,
        "CHF": 2,
        "CAD": 2,
        "AUD": 2,
        "SEK": 2,
        "NOK": 2,
        "DKK": 2,
        "PLN": 2,
        "INR": 2,
        "JPY": 0,
        "KRW": 0,
    }
)
#: Largest single authorization, in major units (a palm payment is for everyday purchases).
MAX_AMOUNT_MAJOR = Decimal("100000")
_AMOUNT_RE = re.compile(r"^[0-9]{1,9}(\.[0-9]{1,4})?$")


@dataclass(frozen=True, kw_only=True)
class Money:
    amount_minor: int
    """Amount in the currency's minor unit (cents for EUR)."""
    currency: str

    def as_decimal_text(self) -> str:
        """The amount as a decimal string with the currency's number of decimals (``"12.50"``)."""
        exponent = CURRENCY_EXPONENTS[self.currency]
        if exponent == 0:
            return str(self.amount_minor)
        major, minor = divmod(self.amount_minor, 10**exponent)
        return f"{major}.{minor:0{exponent}d}"


def parse_money(*, amount: str | None, currency: str | None) -> Money:
    """``amount`` (decimal string, e.g. ``"12.50"``) and ``currency`` (ISO 4217) -> :class:`Money`.

    Refused (ValidationFailed ``invalid_amount`` / ``invalid_currency``): missing values, unknown currencies,
    zero, negative or huge amounts, more decimals than the currency has.
    """
    if not currency or currency.strip().upper() not in CURRENCY_EXPONENTS:
        raise ValidationFailed(
            f"currency must be one of {', '.join(sorted(CURRENCY_EXPONENTS))}", code="invalid_currency"
        )
    code = currency.strip().upper()
    text = (amount or "").strip()
    if not _AMOUNT_RE.match(text):
        raise ValidationFailed("amount must be a positive decimal number such as 12.50", code="invalid_amount")
    try:
        value = Decimal(text)
    except InvalidOperation as exc:  # pragma: no cover (the pattern admits only valid decimals)
        raise ValidationFailed("amount is not a number", code="invalid_amount") from exc
    exponent = CURRENCY_EXPONENTS[code]
    minor = value.scaleb(exponent)
    if minor != minor.to_integral_value():
        raise ValidationFailed(f"{code} amounts have at most {exponent} decimals", code="invalid_amount")
    if value <= 0 or value > MAX_AMOUNT_MAJOR:
        raise ValidationFailed(f"amount must be above 0 and at most {MAX_AMOUNT_MAJOR}", code="invalid_amount")
    return Money(amount_minor=int(minor), currency=code)
