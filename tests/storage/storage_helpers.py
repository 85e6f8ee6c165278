"""Helpers for the storage tests (a settable clock, consents, recognisable fake templates)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, create_engine, text

from palmid.privacy.consent import ConsentInput, build_consent
from palmid.storage.records import EnrolledSubject, IssuedKey
from palmid.storage.repository import Store


class FakeClock:
    """A settable UTC clock for the store."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, *, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def make_consent(clock: FakeClock, *, purposes: tuple[str, ...] = ("payment",)) -> ConsentInput:
    return build_consent(notice_version="2026-01", purposes=list(purposes), accepted_at=clock.now, now=clock.now)


def template_bytes(seed: int = 7) -> bytes:
    """A recognisable fake template (a real one is opaque bytes too)."""
    return bytes((seed * 31 + i * 17) % 251 for i in range(1024)) + b"PALMID-TEMPLATE-MARKER"


def raw_engine(store_url: str) -> Engine:
    """A plain engine on the store's database, to look at (or tamper with) rows behind the store's back."""
    return create_engine(store_url)


def new_tenant(store: Store, name: str = "shop", scopes: frozenset[str] | None = None) -> IssuedKey:
    return store.create_tenant(name=name, scopes=scopes or frozenset({"enroll", "identify", "verify", "erase"}))


def enroll_one(store: Store, clock: FakeClock, *, tenant_id: str, seed: int = 7) -> EnrolledSubject:
    return store.enroll_subject(tenant_id=tenant_id, consent=make_consent(clock), template=template_bytes(seed))


def count_rows(engine: Engine, table: str) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one())
