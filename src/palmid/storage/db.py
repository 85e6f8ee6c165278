"""Engines, sessions and schema upgrades.

SQLite (default, ``<data_dir>/palmid.db``): WAL journal, foreign keys on, a busy timeout, and every transaction
starts with ``BEGIN IMMEDIATE`` so writers are serialized up front (no lock-upgrade deadlocks, audit appends cannot
fork the chain). PostgreSQL: ``postgresql+psycopg://`` URLs; appends lock the audit head row ``FOR UPDATE``.
The schema is created and upgraded by the Alembic migrations shipped in ``palmid/storage/migrations``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from palmid.errors import StorageError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: Execution option marking a read-only transaction (SQLite then uses a deferred BEGIN: readers do not queue).
READ_ONLY_OPTION = "palmid_read_only"


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` (and parents) with mode 0700 if missing. Refuses a path that is not a directory."""
    if path.exists():
        if not path.is_dir():
            raise StorageError(f"data dir {path} is not a directory", code="storage_unavailable")
        return
    path.mkdir(mode=0o700, parents=True)
    os.chmod(path, 0o700)


def _configure_sqlite(engine: Engine, *, journal_mode: str) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute(f"PRAGMA journal_mode = {journal_mode}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA secure_delete = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        read_only = connection.get_execution_options().get(READ_ONLY_OPTION, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def create_private_file(path: Path) -> None:
    """Create an empty file with mode 0600 if it does not exist (SQLite then keeps that mode for -wal/-shm)."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(descriptor)


def create_db_engine(url: str, *, sqlite_journal_mode: Literal["WAL", "DELETE"] = "WAL") -> Engine:
    """Engine for ``url`` with palmid's per-backend settings. Raises StorageError for unsupported URLs.

    ``sqlite_journal_mode="DELETE"`` (the keystore) keeps no write-ahead log, so with ``secure_delete`` a destroyed
    row's bytes are overwritten in the file at commit and survive in no log file.
    """
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database and database != ":memory:" and not database.startswith("file:"):
            create_private_file(Path(database))
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        _configure_sqlite(engine, journal_mode=sqlite_journal_mode)
        return engine
    if url.startswith("postgresql+psycopg"):
        return create_engine(url, pool_pre_ping=True)
    raise StorageError("database URL must be sqlite:/// or postgresql+psycopg://", code="storage_unavailable")


def upgrade_schema(engine: Engine) -> None:
    """Run Alembic ``upgrade head`` on ``engine`` (idempotent)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except (OperationalError, InterfaceError) as exc:
        raise StorageError(f"database unreachable: {type(exc).__name__}", code="storage_unavailable") from exc
    except SQLAlchemyError as exc:
        raise StorageError(f"schema upgrade failed: {type(exc).__name__}", code="migration_required") from exc


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)
