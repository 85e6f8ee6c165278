"""Enrollment: one transaction (consent + subject + encrypted template + ref + audit), immutable consent,
database constraints, and no half-enrolled subject or orphan template after a failure or a crash."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from storage_helpers import FakeClock, count_rows, enroll_one, make_consent, new_tenant, raw_engine, template_bytes

from palmid.config import Settings
from palmid.errors import ConsentError, NotFoundError, ValidationFailed
from palmid.storage import subjects
from palmid.storage.keystore import Keystore
from palmid.storage.repository import Store

SUBJECT_TABLES = ("consents", "subjects", "templates", "subject_refs")


def _assert_nothing_enrolled(store: Store, settings: Settings) -> None:
    engine = raw_engine(settings.effective_database_url)
    counts = {table: count_rows(engine, table) for table in SUBJECT_TABLES}
    engine.dispose()
    assert counts == dict.fromkeys(SUBJECT_TABLES, 0)
    assert list(store.iter_templates()) == []
    assert store.verify_audit().ok


def _keystore_count(settings: Settings) -> int:
    keystore = Keystore(path=settings.data_dir / "keystore.db")
    try:
        return keystore.count()
    finally:
        keystore.close()


def test_enroll_stores_everything_once(store: Store, settings: Settings, clock: FakeClock) -> None:
    tenant = new_tenant(store)
    enrolled = enroll_one(store, clock, tenant_id=tenant.tenant_id)
    assert enrolled.subject_ref.startswith("sr_")
    assert list(store.iter_templates()) == [(enrolled.subject_id, template_bytes())]
    assert store.load_template(subject_id=enrolled.subject_id) == template_bytes()
    assert store.count_subjects() == 1
    engine = raw_engine(settings.effective_database_url)
    assert {table: count_rows(engine, table) for table in SUBJECT_TABLES} == dict.fromkeys(SUBJECT_TABLES, 1)
    with engine.connect() as connection:
        consent = connection.execute(text("SELECT notice_version, purposes, retention_days FROM consents")).one()
    engine.dispose()
    assert consent[0] == "2026-01"
    assert json.loads(consent[1]) == ["payment"]
    assert consent[2] == settings.retention.max_total_days
    assert _keystore_count(settings) == 1
    assert store.verify_audit().checked == 2  # key issued + enroll


def test_record_consent_then_enroll_with_consent_id(store: Store, clock: FakeClock) -> None:
    tenant = new_tenant(store)
    other = new_tenant(store, name="other")
    consent_id = store.record_consent(tenant_id=tenant.tenant_id, consent=make_consent(clock))
    with pytest.raises(ConsentError):  # another merchant cannot use it
        store.enroll_subject(tenant_id=other.tenant_id, consent_id=consent_id, template=template_bytes())
    enrolled = store.enroll_subject(tenant_id=tenant.tenant_id, consent_id=consent_id, template=template_bytes())
    assert store.load_template(subject_id=enrolled.subject_id) == template_bytes()
    with pytest.raises(ConsentError):  # one consent, one enrollment
        store.enroll_subject(tenant_id=tenant.tenant_id, consent_id=consent_id, template=template_bytes(2))
    with pytest.raises(ConsentError):
        store.enroll_subject(tenant_id=tenant.tenant_id, consent_id="f" * 32, template=template_bytes(2))
    with pytest.raises(ValidationFailed):
        store.enroll_subject(tenant_id=tenant.tenant_id, template=template_bytes(2))
    assert store.count_subjects() == 1


def test_stale_unused_consents_are_deleted(store: Store, clock: FakeClock) -> None:
    tenant = new_tenant(store)
    consent_id = store.record_consent(tenant_id=tenant.tenant_id, consent=make_consent(clock))
    clock.advance(seconds=25 * 3600)
    with pytest.raises(ConsentError, match="too old"):
        store.enroll_subject(tenant_id=tenant.tenant_id, consent_id=consent_id, template=template_bytes())
    assert store.delete_unused_consents() == 1


def test_consent_records_are_immutable(store: Store, settings: Settings, clock: FakeClock) -> None:
    tenant = new_tenant(store)
    enroll_one(store, clock, tenant_id=tenant.tenant_id)
    engine = raw_engine(settings.effective_database_url)
    with pytest.raises(DBAPIError), engine.begin() as connection:
        connection.execute(text("UPDATE consents SET purposes = '[\"marketing\"]'"))
    engine.dispose()


def test_database_refuses_orphan_template_and_subject_without_consent(
    store: Store, settings: Settings, clock: FakeClock
) -> None:
    tenant = new_tenant(store)
    engine = raw_engine(settings.effective_database_url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", lambda conn, _rec: conn.execute("PRAGMA foreign_keys = ON"))
    with pytest.raises(DBAPIError), engine.begin() as connection:
        connection.execute(
            text("INSERT INTO templates (subject_id, ciphertext, created_at) VALUES ('nobody', :c, :t)"),
            {"c": b"x", "t": clock.now},
        )
    with pytest.raises(DBAPIError), engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO subjects (id, consent_id, enrolled_tenant_id, created_at, last_interaction_at) "
                "VALUES ('s1', 'no-consent', :tenant, :t, :t)"
            ),
            {"tenant": tenant.tenant_id, "t": clock.now},
        )
    engine.dispose()


def test_unknown_tenant_and_empty_template_are_refused(store: Store, clock: FakeClock) -> None:
    with pytest.raises(NotFoundError):
        store.enroll_subject(tenant_id="0" * 32, consent=make_consent(clock), template=template_bytes())
    tenant = new_tenant(store)
    with pytest.raises(ValidationFailed):
        store.enroll_subject(tenant_id=tenant.tenant_id, consent=make_consent(clock), template=b"")


class InjectedFailure(RuntimeError):
    pass


def _boom(*_args: object, **_kwargs: object) -> None:
    raise InjectedFailure("injected")


@pytest.mark.parametrize("point", ["seal", "append_event", "commit"])
def test_failure_mid_transaction_leaves_nothing(
    store: Store, settings: Settings, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, point: str
) -> None:
    tenant = new_tenant(store)
    consent_id = store.record_consent(tenant_id=tenant.tenant_id, consent=make_consent(clock))
    if point == "commit":
        event.listen(Session, "before_commit", _boom)
    else:
        monkeypatch.setattr(subjects, point, _boom)
    try:
        with pytest.raises(InjectedFailure):
            store.enroll_subject(tenant_id=tenant.tenant_id, consent=make_consent(clock), template=template_bytes())
        with pytest.raises(InjectedFailure):
            store.enroll_subject(tenant_id=tenant.tenant_id, consent_id=consent_id, template=template_bytes())
    finally:
        if point == "commit":
            event.remove(Session, "before_commit", _boom)
    store.delete_unused_consents()
    clock.advance(seconds=25 * 3600)
    store.delete_unused_consents()
    _assert_nothing_enrolled(store, settings)
    assert _keystore_count(settings) == 0  # the data key written first was destroyed again


_CRASHER = textwrap.dedent(
    """
    import os, sys
    from datetime import datetime, UTC
    from palmid.config import Settings
    from palmid.privacy.consent import build_consent
    from palmid.storage import subjects
    from palmid.storage.repository import Store

    settings = Settings(data_dir=sys.argv[1], database_url=sys.argv[2] or None)
    store = Store.open(settings=settings)
    tenant = store.create_tenant(name="shop", scopes=frozenset({"enroll"}))
    real_append = subjects.append_event

    def crash(session, **kwargs):
        real_append(session, **kwargs)
        session.flush()
        os._exit(137)  # the process dies with the transaction open: nothing may survive

    subjects.append_event = crash
    now = datetime.now(UTC)
    consent = build_consent(notice_version="2026-01", purposes=["payment"], accepted_at=now, now=now)
    store.enroll_subject(tenant_id=tenant.tenant_id, consent=consent, template=b"CRASH-TEMPLATE" * 50)
    """
)


def test_process_crash_mid_enrollment_leaves_no_half_enrolled_subject(
    settings: Settings, open_store: Callable[..., Store], clock: FakeClock, tmp_path: Path
) -> None:
    script = tmp_path / "crash.py"
    script.write_text(_CRASHER)
    result = subprocess.run(
        [sys.executable, str(script), str(settings.data_dir), settings.database_url or ""],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 137, result.stderr.decode()[-2000:]
    assert _keystore_count(settings) == 1  # the wrapped key was written before the crash...
    # ...and is swept as an orphan at the next open after the grace period (the child used the real clock).
    clock.now = datetime.now(UTC) + timedelta(hours=1)
    store = open_store()
    _assert_nothing_enrolled(store, settings)
    assert _keystore_count(settings) == 0
    assert store.verify_audit().checked == 1  # only the key-issued event


def test_swapped_or_flipped_template_rows_fail_closed(store: Store, settings: Settings, clock: FakeClock) -> None:
    from palmid.errors import CryptoError

    tenant = new_tenant(store)
    first = enroll_one(store, clock, tenant_id=tenant.tenant_id, seed=1)
    second = enroll_one(store, clock, tenant_id=tenant.tenant_id, seed=2)
    engine = raw_engine(settings.effective_database_url)
    with engine.begin() as connection:
        rows: dict[str, bytes] = dict(connection.execute(text("SELECT subject_id, ciphertext FROM templates")).all())
        swap = "UPDATE templates SET ciphertext = :c WHERE subject_id = :s"
        connection.execute(text(swap), {"c": rows[second.subject_id], "s": first.subject_id})
        flipped = bytearray(rows[second.subject_id])
        flipped[-1] ^= 0x80
        connection.execute(text(swap), {"c": bytes(flipped), "s": second.subject_id})
    engine.dispose()
    for subject in (first, second):
        with pytest.raises(CryptoError) as info:
            store.load_template(subject_id=subject.subject_id)
        assert info.value.code == "decrypt_failed"
    with pytest.raises(CryptoError):
        list(store.iter_templates())
