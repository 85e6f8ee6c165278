"""Purposes (issue 8): link a payment token / membership id / age attestation to a person, then identify a palm
for one purpose -- ``entry``, ``payment`` (exactly once per ``Idempotency-Key``) or ``age_check``.

``POST /v1/identifications`` hands requests that carry a ``purpose`` field to :func:`identify_for_purpose`.
A purpose the person did not consent to is refused for that person (403 ``purpose_not_consented``).
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Request

from palmid.errors import ConflictError, ForbiddenError, NotFoundError, ValidationFailed
from palmid.payments.attributes import (
    SubjectLinks,
    age_on,
    check_date_of_birth,
    check_membership_id,
    check_payment_token,
)
from palmid.payments.gateway import AuthorizationRequest, PaymentGateway
from palmid.payments.idempotency import (
    IDEMPOTENCY_HEADER,
    StoredOutcome,
    check_idempotency_key,
    check_same_request,
    request_fingerprint,
    scoped_key_sha256,
)
from palmid.payments.money import Money, parse_money
from palmid.payments.purposes import Purpose, check_purpose_consented, parse_min_age, parse_purpose
from palmid.payments.sandbox import SandboxGateway
from palmid.privacy.refs import hash_ref
from palmid.service.deps import SCOPE_ENROLL, Context, ServiceContext, require_scope
from palmid.service.routes.common import ERROR_RESPONSES, check_ref_shape, resolve_own_ref
from palmid.service.routes.purpose_schemas import (
    AgeCheckResponse,
    AuthorizationBody,
    EntryResponse,
    LinksRequest,
    LinksResponse,
    PaymentResponse,
)
from palmid.service.uploads import UploadedForm
from palmid.storage.records import Tenant

log = logging.getLogger(__name__)
router = APIRouter(tags=["purposes"])

PurposeResponse = EntryResponse | PaymentResponse | AgeCheckResponse
#: ``app.state`` attribute holding the payment gateway (a real processor is set there; default: the sandbox).
GATEWAY_STATE = "palmid_payment_gateway"
#: Extra multipart fields of ``POST /v1/identifications`` (OpenAPI); the ``Idempotency-Key`` header goes with payments.
PURPOSE_FORM_PROPERTIES: dict[str, dict[str, object]] = {
    "purpose": {
        "type": "string",
        "enum": ["entry", "payment", "age_check"],
        "description": "What the identification is for; absent: a plain identification (matched + ref).",
    },
    "amount": {"type": "string", "description": "payment: decimal amount, e.g. 12.50.", "examples": ["12.50"]},
    "currency": {"type": "string", "description": "payment: ISO 4217 code, e.g. EUR.", "examples": ["EUR"]},
    "min_age": {"type": "string", "description": "age_check: minimum age in whole years, e.g. 18."},
}


def payment_gateway(request: Request) -> PaymentGateway:
    """The app's payment gateway; the clearly labelled :class:`SandboxGateway` unless a real one was set."""
    gateway: PaymentGateway | None = getattr(request.app.state, GATEWAY_STATE, None)
    if gateway is None:
        gateway = SandboxGateway()
        setattr(request.app.state, GATEWAY_STATE, gateway)
        log.warning("payments use the SANDBOX gateway: no money moves")
    return gateway


@router.post(
    "/v1/subjects/{subject_ref}/links",
    response_model=LinksResponse,
    responses=ERROR_RESPONSES,
    summary="Link a payment token, membership id or staff-checked date of birth to a person (at enrollment)",
)
async def link_subject(
    subject_ref: str,
    body: LinksRequest,
    context: Context,
    tenant: Annotated[Tenant, Depends(require_scope(SCOPE_ENROLL))],
) -> LinksResponse:
    check_ref_shape(subject_ref)
    today = context.now().date()
    links = SubjectLinks(
        payment_token=check_payment_token(body.payment_token) if body.payment_token is not None else None,
        membership_id=check_membership_id(body.membership_id) if body.membership_id is not None else None,
        date_of_birth=(
            check_date_of_birth(
                body.age_attestation.date_of_birth, today=today, document_checked=body.age_attestation.document_checked
            )
            if body.age_attestation is not None
            else None
        ),
    )
    if not links.kinds:
        raise ValidationFailed("nothing to link", code="nothing_to_link")
    await context.run_storage(lambda: link(context, tenant=tenant, subject_ref=subject_ref, links=links))
    return LinksResponse(subject_ref=subject_ref, linked=list(links.kinds))


def link(context: ServiceContext, *, tenant: Tenant, subject_ref: str, links: SubjectLinks) -> None:
    """Store the links; a payment token needs consent to ``payment``, a date of birth consent to ``age_check``."""
    subject_id = resolve_own_ref(context, tenant=tenant, subject_ref=subject_ref)
    consented = context.store.consented_purposes(subject_id=subject_id)
    if links.payment_token is not None:
        check_purpose_consented("payment", consented=consented)
    if links.date_of_birth is not None:
        check_purpose_consented("age_check", consented=consented)
    context.store.link_attributes(
        subject_id=subject_id,
        tenant_id=tenant.tenant_id,
        payment_token=links.payment_token,
        membership_id=links.membership_id,
        date_of_birth=links.date_of_birth,
    )


async def identify_for_purpose(
    request: Request, context: ServiceContext, *, tenant: Tenant, image: bytes, form: UploadedForm
) -> PurposeResponse:
    """``POST /v1/identifications`` with a ``purpose`` field (the caller already applied the rate limit)."""
    purpose = parse_purpose(form.field("purpose") or "")
    if purpose == "age_check":
        min_age = parse_min_age(form.field("min_age"))
        return await context.run_blocking(lambda: check_age(context, tenant=tenant, image=image, min_age=min_age))
    if purpose == "payment":
        key = check_idempotency_key(request.headers.get(IDEMPOTENCY_HEADER))
        money = parse_money(amount=form.field("amount"), currency=form.field("currency"))
        gateway = payment_gateway(request)
        return await context.run_blocking(
            lambda: pay(context, tenant=tenant, image=image, key=key, money=money, gateway=gateway)
        )
    return await context.run_blocking(lambda: enter(context, tenant=tenant, image=image))


def match_for_purpose(
    context: ServiceContext, *, tenant: Tenant, image: bytes, purpose: Purpose
) -> tuple[str, str] | None:
    """(subject_id, the merchant's ref) when the palm matches someone who consented to ``purpose``; None when it
    matches nobody. ForbiddenError(purpose_not_consented) for a person who did not consent. Audit: "identify"."""
    probe = context.recognizer.template_from_bytes(image)
    subject_id = context.matcher.identify(probe)
    subject_ref: str | None = None
    consented: tuple[str, ...] = ()
    if subject_id is not None:
        try:
            subject_ref = context.store.ref_for(subject_id=subject_id, tenant_id=tenant.tenant_id)
            consented = context.store.consented_purposes(subject_id=subject_id)
        except NotFoundError:  # erased meanwhile: never a match again
            context.matcher.remove(subject_id)
            subject_ref = None
    if subject_id is None or subject_ref is None:
        _audit(context, tenant=tenant, ref=None, detail=f"not_matched purpose={purpose}")
        context.metrics.count_decision(operation="identify", outcome="not_matched")
        return None
    try:
        check_purpose_consented(purpose, consented=consented)
    except ForbiddenError:
        _audit(context, tenant=tenant, ref=subject_ref, detail=f"refused purpose={purpose}")
        context.metrics.count_decision(operation="identify", outcome="purpose_not_consented")
        raise
    context.store.touch_subject(subject_id=subject_id)
    _audit(context, tenant=tenant, ref=subject_ref, detail=f"matched purpose={purpose}")
    context.metrics.count_decision(operation="identify", outcome="matched")
    return subject_id, subject_ref


def _audit(context: ServiceContext, *, tenant: Tenant, ref: str | None, detail: str) -> None:
    context.store.append_audit(
        event="identify", tenant_id=tenant.tenant_id, subject_ref_hash=hash_ref(ref) if ref else None, detail=detail
    )


def enter(context: ServiceContext, *, tenant: Tenant, image: bytes) -> EntryResponse:
    found = match_for_purpose(context, tenant=tenant, image=image, purpose="entry")
    if found is None:
        return EntryResponse(purpose="entry", matched=False, subject_ref=None)
    subject_id, subject_ref = found
    links = context.store.load_attributes(subject_id=subject_id, tenant_id=tenant.tenant_id)
    return EntryResponse(purpose="entry", matched=True, subject_ref=subject_ref, membership_id=links.membership_id)


def check_age(context: ServiceContext, *, tenant: Tenant, image: bytes, min_age: int) -> AgeCheckResponse:
    """Only yes/no: no attestation on file counts as "does not meet" (fail closed); the date never leaves."""
    found = match_for_purpose(context, tenant=tenant, image=image, purpose="age_check")
    if found is None:
        return AgeCheckResponse(purpose="age_check", matched=False, meets_min_age=False)
    subject_id, _ = found
    birth = context.store.load_attributes(subject_id=subject_id, tenant_id=tenant.tenant_id).date_of_birth
    today = context.now().date()
    meets = birth is not None and age_on(date_of_birth=birth, today=today) >= min_age
    return AgeCheckResponse(purpose="age_check", matched=True, meets_min_age=meets)


def pay(
    context: ServiceContext, *, tenant: Tenant, image: bytes, key: str, money: Money, gateway: PaymentGateway
) -> PaymentResponse:
    """Exactly once per (merchant, Idempotency-Key): a stored outcome is replayed without a new palm search."""
    key_sha256 = scoped_key_sha256(tenant_id=tenant.tenant_id, key=key)
    fingerprint = request_fingerprint(purpose="payment", money=money)
    stored = context.store.find_idempotency(tenant_id=tenant.tenant_id, key_sha256=key_sha256)
    if stored is not None:
        return payment_response(check_same_request(stored, request_sha256=fingerprint))
    found = match_for_purpose(context, tenant=tenant, image=image, purpose="payment")
    if found is None:  # nothing happened: not recorded, the merchant may retry with the same key
        return PaymentResponse(purpose="payment", matched=False, authorization=None)
    subject_id, _ = found
    token = context.store.load_attributes(subject_id=subject_id, tenant_id=tenant.tenant_id).payment_token
    if token is None:
        raise ConflictError("this person has not linked a means of payment", code="payment_not_linked")
    authorization = gateway.authorize(
        request=AuthorizationRequest(
            payment_token=token, money=money, merchant_id=tenant.tenant_id, idempotency_key=key_sha256
        )
    )
    record = context.store.save_idempotency(
        tenant_id=tenant.tenant_id,
        key_sha256=key_sha256,
        request_sha256=fingerprint,
        response_json=StoredOutcome.from_authorization(authorization).to_json(),
        subject_id=subject_id,
        audit_detail=(
            f"authorization={authorization.authorization_id} status={authorization.status} gateway={gateway.name}"
        ),
    )
    return payment_response(check_same_request(record, request_sha256=fingerprint))


def payment_response(outcome: StoredOutcome) -> PaymentResponse:
    money = Money(amount_minor=outcome.amount_minor, currency=outcome.currency)
    return PaymentResponse(
        purpose="payment",
        matched=True,
        authorization=AuthorizationBody(
            authorization_id=outcome.authorization_id,
            status=outcome.status,
            amount=money.as_decimal_text(),
            currency=outcome.currency,
            gateway=outcome.gateway,
            sandbox=outcome.sandbox,
            decline_code=outcome.decline_code,
        ),
    )
