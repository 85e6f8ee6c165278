"""SandboxGateway: the default payment gateway. A SANDBOX -- no money moves, every authorization says so.

Deterministic, so it is idempotent without any state (like a real processor honouring an idempotency key): the
authorization id is derived from the idempotency key and the request, so asking again after a crash returns the
same authorization. Test tokens: ``tok_sandbox_decline`` is declined (``card_declined``); amounts above
:data:`SANDBOX_LIMIT_MINOR` are declined (``amount_limit``); ``tok_sandbox_unavailable`` simulates an outage.
"""

from __future__ import annotations

import hashlib
import json

from palmid.errors import StorageError
from palmid.payments.gateway import Authorization, AuthorizationRequest

SANDBOX_NAME = "sandbox"
SANDBOX_AUTH_PREFIX = "sbx_auth_"
DECLINE_TOKEN = "tok_sandbox_decline"  # noqa: S105 (a test token, not a secret)
UNAVAILABLE_TOKEN = "tok_sandbox_unavailable"  # noqa: S105 (a test token, not a secret)
SANDBOX_LIMIT_MINOR = 50_000


class SandboxGateway:
    """A clearly labelled sandbox: ``name == "sandbox"``, ``sandbox is True`` and every authorization too."""

    def __init__(self) -> None:
        self.calls = 0
        """How many times :meth:`authorize` was called (tests check exactly-once behaviour with it)."""

    @property
    def name(self) -> str:
        return SANDBOX_NAME

    @property
    def sandbox(self) -> bool:
        return True

    def authorize(self, *, request: AuthorizationRequest) -> Authorization:
        self.calls += 1
        if request.payment_token == UNAVAILABLE_TOKEN:
            raise StorageError("the sandbox payment gateway is unavailable (simulated)", code="gateway_unavailable")
        canonical = json.dumps(
            {
                "key": request.idempotency_key,
                "merchant": request.merchant_id,
                "token": request.payment_token,
                "amount_minor": request.money.amount_minor,
                "currency": request.money.currency,
            },
            sort_keys=True,
        )
        authorization_id = SANDBOX_AUTH_PREFIX + hashlib.sha256(canonical.encode()).hexdigest()[:24]
        decline_code = None
        if request.payment_token == DECLINE_TOKEN:
            decline_code = "card_declined"
        elif request.money.amount_minor > SANDBOX_LIMIT_MINOR:
            decline_code = "amount_limit"
        return Authorization(
            authorization_id=authorization_id,
            status="declined" if decline_code else "approved",
            money=request.money,
            gateway=SANDBOX_NAME,
            sandbox=True,
            decline_code=decline_code,
        )
