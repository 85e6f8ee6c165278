"""Search codes stored next to the templates: sealed with the subject's key, erased with them, backfilled, migrated."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import text
from storage_helpers import FakeClock, count_rows, make_consent, new_tenant, raw_engine, template_bytes

from palmid.config import Settings
from palmid.errors import CryptoError, ValidationFailed
from palmid.storage.crypto import PURPOSE_TEMPLATE, search_code_purpose, unseal
from palmid.storage.keystore import KEYSTORE_FILENAME, Keystore
from palmid.storage.records import EnrolledSubject
from palmid.storage.repository import Store
from palmid.storage.search_codes import SearchCodeUpdate
from palmid.storage.subjects import data_key_for

CODE = b"\x03" + bytes(range(200)) + b"SEARCH-CODE-MARKER"
FORMAT = "test-format/1"


def _enroll(store: Store, clock: FakeClock, tenant_id: str, *, seed: int, code: bytes | None = CODE) -> EnrolledSubject:
    return store.enroll_subject(
        tenant_id=tenant_id,
        consent=make_consent(clock),
        template=template_bytes(seed),
        search_code=code,
        search_code_format=None if code is None else FORMAT,
    )


def _stored(store: Store) -> dict[str, tuple[str, bytes]]:
    return {c.subject_id: (c.code_format, c.code) for batch in store.search_codes.iter_batches() for c in batch}


def test_code_is_stored_sealed_and_read_back(settings: Settings, store: Store, clock: FakeClock) -> None:
    tenant = new_tenant(store)
    coded = _enroll(store, clock, tenant.tenant_id, seed=1)
    _enroll(store, clock, tenant.tenant_id, seed=2, code=None)

    assert _stored(store) == {coded.subject_id: (FORMAT, CODE)}
    engine = raw_engine(settings.effective_database_url)
    with engine.connect() as connection:
        sealed = connection.execute(text("SELECT ciphertext FROM search_codes")).scalar_one()
    engine.dispose()
    assert b"SEARCH-CODE-MARKER" not in sealed
    keystore = Keystore(path=settings.data_dir / KEYSTORE_FILENAME)
    try:
        wrapped = keystore.get(subject_id=coded.subject_id)
    finally:
        keystore.close()
    deps = store._subject_deps()
    data_key = data_key_for(deps, subject_id=coded.subject_id, wrapped=wrapped)
    purpose = search_code_purpose(FORMAT)
    assert unseal(data_key=data_key, sealed=sealed, subject_id=coded.subject_id, purpose=purpose) == CODE
    for wrong in (PURPOSE_TEMPLATE, search_code_purpose("test-format/2")):  # never a template, never relabelled
        with pytest.raises(CryptoError):
            unseal(data_key=data_key, sealed=sealed, subject_id=coded.subject_id, purpose=wrong)


@pytest.mark.parametrize(("code", "code_format"), [(CODE, None), (None, FORMAT), (b"", FORMAT), (CODE, "")])
def test_code_and_format_come_together(
    store: Store, clock: FakeClock, code: bytes | None, code_format: str | None
) -> None:
    tenant = new_tenant(store)
    with pytest.raises(ValidationFailed):
        store.enroll_subject(
            tenant_id=tenant.tenant_id,
            consent=make_consent(clock),
            template=template_bytes(1),
            search_code=code,
            search_code_format=code_format,
        )
    assert store.count_subjects() == 0


def test_erasure_removes_the_code_with_the_template(settings: Settings, store: Store, clock: FakeClock) -> None:
    tenant = new_tenant(store)
    erased = _enroll(store, clock, tenant.tenant_id, seed=1)
    kept = _enroll(store, clock, tenant.tenant_id, seed=2)

    store.erase_subject(subject_id=erased.subject_id, tenant_id=tenant.tenant_id)

    assert set(_stored(store)) == {kept.subject_id}
    engine = raw_engine(settings.effective_database_url)
    assert count_rows(engine, "search_codes") == 1
    assert count_rows(engine, "pending_key_destructions") == 0
    engine.dispose()
    assert store.export_subject(subject_id=kept.subject_id, tenant_id=tenant.tenant_id).template_count == 1


def test_missing_codes_are_listed_and_backfilled(store: Store, clock: FakeClock) -> None:
    tenant = new_tenant(store)
    old = [_enroll(store, clock, tenant.tenant_id, seed=n, code=None) for n in range(3)]
    coded = _enroll(store, clock, tenant.tenant_id, seed=9)
    store.erase_subject(subject_id=old[2].subject_id, tenant_id=tenant.tenant_id)

    assert [s for batch in store.search_codes.iter_missing() for s in batch] == [old[0].subject_id, old[1].subject_id]
    updates = [
        SearchCodeUpdate(subject_id=s.subject_id, code_format=FORMAT, code=b"\x01new") for s in (old[0], old[2])
    ] + [SearchCodeUpdate(subject_id=coded.subject_id, code_format="test-format/2", code=b"\x01replaced")]
    assert store.search_codes.save(updates) == 2  # the erased subject is skipped

    assert _stored(store) == {
        old[0].subject_id: (FORMAT, b"\x01new"),
        coded.subject_id: ("test-format/2", b"\x01replaced"),
    }
    assert [s for batch in store.search_codes.iter_missing() for s in batch] == [old[1].subject_id]


def test_upgrade_from_0002_keeps_templates_and_adds_codes(
    settings: Settings, open_store: Callable[..., Store], clock: FakeClock
) -> None:
    from alembic import command
    from alembic.config import Config

    from palmid.storage.db import MIGRATIONS_DIR

    store = open_store()
    tenant = new_tenant(store)
    subject = _enroll(store, clock, tenant.tenant_id, seed=5, code=None)
    store.close()
    engine = raw_engine(settings.effective_database_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0002_purposes")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == "0002_purposes"
    engine.dispose()

    reopened = open_store()  # upgrades 0002 -> 0003

    assert reopened.load_template(subject_id=subject.subject_id) == template_bytes(5)
    assert [s for batch in reopened.search_codes.iter_missing() for s in batch] == [subject.subject_id]
    assert reopened.search_codes.save([SearchCodeUpdate(subject_id=subject.subject_id, code_format=FORMAT, code=CODE)])
    assert _stored(reopened) == {subject.subject_id: (FORMAT, CODE)}


def test_orphan_sweep_checks_new_keys_once_and_finishes_interrupted_erasures(
    settings: Settings, open_store: Callable[..., Store], clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store()
    tenant = new_tenant(store)
    kept = _enroll(store, clock, tenant.tenant_id, seed=1)
    victim = _enroll(store, clock, tenant.tenant_id, seed=2)
    keystore = Keystore(path=settings.data_dir / KEYSTORE_FILENAME)
    try:
        keystore.put(subject_id="a" * 32, wrapped_key=b"x" * 60, master_key_id="m", created_at=clock.now)  # crash

        def crash(*, subject_ids: object) -> int:
            raise CryptoError("keystore crashed", code="key_unavailable")

        monkeypatch.setattr(store._keystore, "destroy", crash)  # the erasure dies between rows and key
        with pytest.raises(CryptoError):
            store.erase_subject(subject_id=victim.subject_id, tenant_id=tenant.tenant_id)
        monkeypatch.undo()
        assert keystore.get_many(subject_ids=[victim.subject_id])  # the key outlived its rows
        store.close()

        clock.advance(seconds=timedelta(minutes=11).total_seconds())
        reopened = open_store()

        left = keystore.get_many(subject_ids=[kept.subject_id, victim.subject_id, "a" * 32])
        assert set(left) == {kept.subject_id}  # the new orphan and the interrupted erasure's key are gone
        engine = raw_engine(settings.effective_database_url)
        assert count_rows(engine, "pending_key_destructions") == 0
        engine.dispose()

        # a key older than the last sweep's cutoff is not looked at again by the incremental sweep, only by a full one
        keystore.put(
            subject_id="b" * 32, wrapped_key=b"x" * 60, master_key_id="m", created_at=clock.now - timedelta(hours=1)
        )
        assert reopened.destroy_orphan_keys() == 0
        assert reopened.destroy_orphan_keys(full=True) == 1
        assert reopened.load_template(subject_id=kept.subject_id) == template_bytes(1)
    finally:
        keystore.close()
