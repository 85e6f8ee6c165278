"""API key format: ``pk_live_<key id: 16 hex>_<secret: 32 random bytes, urlsafe base64>``.

Only SHA-256 of the whole key is stored; keys are compared with :func:`hmac.compare_digest`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from palmid.errors import AuthError, ValidationFailed
from palmid.privacy.audit import append_event
from palmid.storage.models import ApiKeyRow, TenantRow
from palmid.storage.records import KNOWN_SCOPES, ApiKeyInfo, IssuedKey, Tenant

KEY_PREFIX = "pk_live_"
_DUMMY_DIGEST = "0" * 64
_KEY_RE = re.compile(r"^pk_live_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")


def new_api_key() -> tuple[str, str]:
    """A fresh ``(key_id, api_key)``."""
    key_id = secrets.token_hex(8)
    return key_id, f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def key_id_of(api_key: str) -> str | None:
    """The key id embedded in a well-formed key, else None."""
    match = _KEY_RE.match(api_key)
    return match.group(1) if match else None


def hash_api_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


def parse_scopes(scopes: frozenset[str] | set[str] | list[str]) -> frozenset[str]:
    """Validate scopes (non-empty, all known)."""
    result = frozenset(scope.strip() for scope in scopes if scope.strip())
    if not result:
        raise ValidationFailed("at least one scope is required")
    unknown = sorted(result - KNOWN_SCOPES)
    if unknown:
        raise ValidationFailed(f"unknown scope(s): {', '.join(unknown)}; known: {', '.join(sorted(KNOWN_SCOPES))}")
    return result


def format_scopes(scopes: frozenset[str]) -> str:
    return ",".join(sorted(scopes))


def insert_key(session: Session, *, tenant_id: str, scopes: frozenset[str], now: datetime) -> IssuedKey:
    """Add a new key for ``tenant_id`` (and its audit event) inside the caller's transaction."""
    valid = parse_scopes(scopes)
    key_id, api_key = new_api_key()
    session.add(
        ApiKeyRow(
            key_id=key_id,
            tenant_id=tenant_id,
            key_sha256=hash_api_key(api_key),
            scopes=format_scopes(valid),
            created_at=now,
            revoked_at=None,
        )
    )
    append_event(
        session,
        event="admin_key_issued",
        tenant_id=tenant_id,
        subject_ref_hash=None,
        detail=f"key_id={key_id} scopes={format_scopes(valid)}",
        now=now,
    )
    return IssuedKey(tenant_id=tenant_id, key_id=key_id, api_key=api_key, scopes=valid)


def find_key(session: Session, *, key_id: str) -> tuple[ApiKeyRow, str] | None:
    """The key row and its tenant's name."""
    row = session.execute(
        select(ApiKeyRow, TenantRow.name)
        .join(TenantRow, TenantRow.id == ApiKeyRow.tenant_id)
        .where(ApiKeyRow.key_id == key_id)
    ).one_or_none()
    return (row[0], row[1]) if row is not None else None


def check_key(found: tuple[ApiKeyRow, str] | None, *, api_key: str) -> Tenant:
    """Constant-time comparison of the presented key with the stored hash (a dummy hash when unknown)."""
    digest = hash_api_key(api_key)
    stored = found[0].key_sha256 if found is not None else _DUMMY_DIGEST
    if not hmac.compare_digest(stored, digest) or found is None:
        raise AuthError("invalid API key")
    key, tenant_name = found
    if key.revoked_at is not None:
        raise AuthError("this API key was revoked", code="key_revoked")
    return Tenant(tenant_id=key.tenant_id, name=tenant_name, scopes=frozenset(key.scopes.split(",")), key_id=key.key_id)


def list_key_infos(session: Session) -> list[ApiKeyInfo]:
    rows = session.execute(
        select(ApiKeyRow, TenantRow.name)
        .join(TenantRow, TenantRow.id == ApiKeyRow.tenant_id)
        .order_by(TenantRow.name, ApiKeyRow.created_at)
    ).all()
    return [
        ApiKeyInfo(
            key_id=key.key_id,
            tenant_id=key.tenant_id,
            tenant_name=name,
            scopes=frozenset(key.scopes.split(",")),
            created_at=key.created_at,
            revoked_at=key.revoked_at,
        )
        for key, name in rows
    ]
