"""The audit chain in the database: append-only by trigger, tampering reported at the first broken event,
and concurrent appends never fork the chain (SQLite BEGIN IMMEDIATE / PostgreSQL SELECT ... FOR UPDATE)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from storage_helpers import FakeClock, enroll_one, new_tenant, raw_engine

from palmid.config import Settings
from palmid.errors import ValidationFailed
from palmid.privacy.refs import hash_ref
from palmid.storage.repository import Store


def _fill(store: Store, count: int) -> None:
    for index in range(count):
        store.append_audit(event="identify", tenant_id="t1", subject_ref_hash=None, detail=f"not_matched {index}")


def _drop_guards(engine: Engine) -> None:
    """An insider with database access can drop the triggers; the chain must still expose the edit."""
    with engine.begin() as connection:
        for name in ("audit_events_no_update", "audit_events_no_delete"):
            if engine.dialect.name == "postgresql":
                connection.execute(text(f"DROP TRIGGER {name} ON audit_events"))
            else:
                connection.execute(text(f"DROP TRIGGER {name}"))


def test_chain_records_events_without_payload(store: Store, clock: FakeClock) -> None:
    shop = new_tenant(store)
    enrolled = enroll_one(store, clock, tenant_id=shop.tenant_id)
    store.append_audit(
        event="verify", tenant_id=shop.tenant_id, subject_ref_hash=hash_ref(enrolled.subject_ref), detail="matched"
    )
    result = store.verify_audit()
    assert (result.ok, result.checked, result.first_broken_id) == (True, 3, None)


def test_bad_events_are_refused(store: Store) -> None:
    with pytest.raises(ValidationFailed):
        store.append_audit(event="Not A Slug", tenant_id=None, subject_ref_hash=None, detail="")
    with pytest.raises(ValidationFailed):
        store.append_audit(event="identify", tenant_id=None, subject_ref_hash=None, detail="x" * 501)


def test_triggers_refuse_update_and_delete(store: Store, settings: Settings) -> None:
    _fill(store, 3)
    engine = raw_engine(settings.effective_database_url)
    with pytest.raises(DBAPIError), engine.begin() as connection:
        connection.execute(text("UPDATE audit_events SET detail = 'edited' WHERE seq = 2"))
    with pytest.raises(DBAPIError), engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_events WHERE seq = 3"))
    engine.dispose()
    assert store.verify_audit().ok


@pytest.mark.parametrize(
    ("tamper", "first_broken"),
    [
        ("UPDATE audit_events SET detail = 'matched' WHERE seq = 4", 4),
        ("UPDATE audit_events SET tenant_id = 't2' WHERE seq = 2", 2),
        ("DELETE FROM audit_events WHERE seq = 3", 3),
        ("DELETE FROM audit_events WHERE seq = 6", 6),
        ("UPDATE audit_events SET prev_hash = hash WHERE seq = 5", 5),
    ],
)
def test_tampering_is_reported_at_the_first_broken_event(
    store: Store, settings: Settings, tamper: str, first_broken: int
) -> None:
    _fill(store, 6)
    engine = raw_engine(settings.effective_database_url)
    _drop_guards(engine)
    with engine.begin() as connection:
        connection.execute(text(tamper))
    engine.dispose()
    result = store.verify_audit()
    assert not result.ok
    assert result.first_broken_id == first_broken
    assert result.reason


def test_recomputed_hash_still_breaks_the_next_link(store: Store, settings: Settings) -> None:
    from palmid.privacy.audit import event_hash

    _fill(store, 5)
    engine = raw_engine(settings.effective_database_url)
    _drop_guards(engine)
    with engine.begin() as connection:
        row = connection.execute(text("SELECT * FROM audit_events WHERE seq = 2")).mappings().one()
        forged = event_hash(
            seq=2,
            created_at=row["created_at"],
            event=row["event"],
            tenant_id=row["tenant_id"],
            subject_ref_hash=row["subject_ref_hash"],
            detail="forged",
            prev_hash=row["prev_hash"],
        )
        connection.execute(text("UPDATE audit_events SET detail = 'forged', hash = :h WHERE seq = 2"), {"h": forged})
    engine.dispose()
    result = store.verify_audit()
    assert (result.ok, result.first_broken_id) == (False, 3)


def test_concurrent_appends_keep_one_chain(open_store: Callable[..., Store]) -> None:
    stores = [open_store(), open_store()]  # two "processes" (separate engines) plus threads within each
    errors: list[BaseException] = []
    threads_per_store, appends = 3, 8

    def worker(store: Store, worker_id: int) -> None:
        try:
            for index in range(appends):
                store.append_audit(
                    event="identify", tenant_id=None, subject_ref_hash=None, detail=f"w{worker_id} {index}"
                )
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=worker, args=(store, number * 10 + index))
        for number, store in enumerate(stores)
        for index in range(threads_per_store)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    result = stores[0].verify_audit()
    assert result.ok, result
    assert result.checked == len(stores) * threads_per_store * appends
