"""The payment gateway interface. palmid never sees card numbers: it holds an opaque processor token per person
and asks the gateway to authorize an amount against it.

A gateway must be idempotent per ``idempotency_key`` (as real processors are): asking twice with the same key and
the same request returns the same authorization and moves money once. palmid relies on that to stay exactly-once
when it crashes between the gateway call and the commit of its own idempotency record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from palmid.payments.money import Money

AuthorizationStatus = Literal["approved", "declined"]


@dataclass(frozen=True, kw_only=True)
class AuthorizationRequest:
    payment_token: str
    """Opaque token from the processor, linked by the person at enrollment."""
    money: Money
    merchant_id: str
    """The calling merchant (tenant id)."""
    idempotency_key: str
    """Scoped to the merchant by the caller; the gateway must treat repeats as the same authorization."""


@dataclass(frozen=True, kw_only=True)
class Authorization:
    authorization_id: str
    status: AuthorizationStatus
    money: Money
    gateway: str
    """Name of the gateway that decided (``"sandbox"`` for the sandbox)."""
    sandbox: bool
    """True when no real money moved (test gateway)."""
    decline_code: str | None = None


class PaymentGateway(Protocol):
    """What a payment processor integration implements."""

    @property
    def name(self) -> str: ...

    @property
    def sandbox(self) -> bool: ...

    def authorize(self, *, request: AuthorizationRequest) -> Authorization:
        """Authorize ``request.money`` against the token; idempotent per ``request.idempotency_key``.

        Processor outages raise :class:`palmid.errors.StorageError` (``gateway_unavailable``): nothing was
        recorded, the caller may retry with the same key.
        """
        ...
