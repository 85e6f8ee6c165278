"""Tenants and API keys: only a hash is stored, constant-time check, scopes, immediate revocation."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import text
from storage_helpers import new_tenant, raw_engine

from palmid.config import Settings
from palmid.errors import AuthError, ConflictError, NotFoundError, ValidationFailed
from palmid.storage.repository import Store


def test_issued_key_format_and_only_hash_stored(store: Store, settings: Settings) -> None:
    issued = new_tenant(store, scopes=frozenset({"enroll", "identify"}))
    assert issued.api_key.startswith(f"pk_live_{issued.key_id}_")
    assert len(issued.api_key) > 60
    engine = raw_engine(settings.effective_database_url)
    with engine.connect() as connection:
        stored = connection.execute(text("SELECT key_sha256 FROM api_keys")).scalar_one()
        dumped = " ".join(
            str(value)
            for table in ("api_keys", "tenants", "audit_events")
            for row in connection.execute(text(f"SELECT * FROM {table}"))
            for value in row
        )
    engine.dispose()
    assert stored == hashlib.sha256(issued.api_key.encode()).hexdigest()
    secret_part = issued.api_key.split("_", 3)[3]
    assert secret_part not in dumped
    assert issued.api_key not in dumped


def test_authenticate_returns_tenant_and_scopes(store: Store) -> None:
    issued = new_tenant(store, name="stadium", scopes=frozenset({"identify"}))
    tenant = store.authenticate(api_key=issued.api_key)
    assert (tenant.tenant_id, tenant.name, tenant.key_id) == (issued.tenant_id, "stadium", issued.key_id)
    assert tenant.scopes == frozenset({"identify"})


@pytest.mark.parametrize("mangle", ["wrong_secret", "unknown_id", "garbage", "empty"])
def test_bad_keys_are_refused(store: Store, mangle: str) -> None:
    issued = new_tenant(store)
    candidates = {
        "wrong_secret": issued.api_key[:-4] + ("AAAA" if not issued.api_key.endswith("AAAA") else "BBBB"),
        "unknown_id": issued.api_key.replace(issued.key_id, "0" * 16),
        "garbage": "Bearer nonsense",
        "empty": "",
    }
    with pytest.raises(AuthError) as info:
        store.authenticate(api_key=candidates[mangle])
    assert info.value.code == "unauthenticated"


def test_revocation_takes_effect_at_once(store: Store) -> None:
    issued = new_tenant(store)
    other = store.issue_key(tenant_id=issued.tenant_id, scopes=frozenset({"identify"}))
    store.authenticate(api_key=issued.api_key)
    store.revoke_key(key_id=issued.key_id)
    with pytest.raises(AuthError) as info:
        store.authenticate(api_key=issued.api_key)
    assert info.value.code == "key_revoked"
    assert store.authenticate(api_key=other.api_key).tenant_id == issued.tenant_id
    listed = {key.key_id: key for key in store.list_keys()}
    assert listed[issued.key_id].revoked_at is not None
    assert listed[other.key_id].revoked_at is None
    with pytest.raises(NotFoundError):
        store.revoke_key(key_id="0" * 16)


def test_duplicate_tenant_and_bad_scopes_are_refused(store: Store) -> None:
    new_tenant(store, name="shop")
    with pytest.raises(ConflictError):
        new_tenant(store, name="shop")
    with pytest.raises(ValidationFailed, match="unknown scope"):
        store.create_tenant(name="other", scopes=frozenset({"enroll", "superuser"}))
    with pytest.raises(ValidationFailed):
        store.create_tenant(name="other", scopes=frozenset())
    with pytest.raises(ValidationFailed):
        store.create_tenant(name="  ", scopes=frozenset({"enroll"}))
    assert [key.tenant_name for key in store.list_keys()] == ["shop"]


def test_key_management_is_audited(store: Store) -> None:
    issued = new_tenant(store)
    store.revoke_key(key_id=issued.key_id)
    result = store.verify_audit()
    assert result.ok
    assert result.checked == 2
