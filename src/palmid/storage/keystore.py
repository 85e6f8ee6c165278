"""The keystore: per-subject data keys, wrapped by the master key, in a file SEPARATE from the main database.

Backup model (the assumption crypto-shredding rests on): the main database (``palmid.db`` or PostgreSQL) is what
gets backed up and copied around; the keystore (``<data_dir>/keystore.db``) is small, stays on the service host
and is not part of those backups (or is backed up only on its own short rotation). Erasure deletes the subject's
wrapped key here (SQLite ``secure_delete`` overwrites the freed bytes), so an old copy of the main database holds
only ciphertext whose key no longer exists anywhere. The keystore uses a rollback journal (no WAL), so the
destroyed key's bytes do not linger in a log file either. A backup that contains the keystore AND the master key from
before the erasure is, by construction, not protected by crypto-shredding: keep them apart.

Because the keystore is a second database, it cannot share the main transaction. Enrollment writes the wrapped key
first and removes it again if the main transaction fails; erasure deletes the rows first, then the key. A crash
between the two steps leaves at most an orphan key without any ciphertext, which :meth:`Keystore.delete_orphans`
removes at the next open (see :mod:`palmid.storage.key_sweep`: keys created since the last sweep, plus the keys the
erasure transaction listed as pending destruction).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, LargeBinary, MetaData, String, delete, func, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from palmid.errors import CryptoError
from palmid.storage.db import READ_ONLY_OPTION, create_db_engine
from palmid.storage.models import UTCDateTime

KEYSTORE_FILENAME = "keystore.db"
_WARM_CHUNK_BYTES = 1 << 20


class _KeyBase(DeclarativeBase):
    metadata = MetaData()


class DataKeyRow(_KeyBase):
    __tablename__ = "data_keys"
    subject_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    master_key_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Keystore:
    """Wrapped data keys by subject id (one small SQLite file)."""

    def __init__(self, *, path: Path) -> None:
        self._path = path
        self._engine: Engine = create_db_engine(f"sqlite:///{path}", sqlite_journal_mode="DELETE")
        try:
            with self._engine.begin() as connection:
                _KeyBase.metadata.create_all(connection)
                # keystores created before the incremental orphan sweep lack it (create_all adds no index)
                connection.execute(text("CREATE INDEX IF NOT EXISTS ix_data_keys_created_at ON data_keys (created_at)"))
        except SQLAlchemyError as exc:
            raise CryptoError("keystore is unavailable", code="key_unavailable") from exc
        self._sessions = sessionmaker(bind=self._engine, expire_on_commit=False)

    def close(self) -> None:
        self._engine.dispose()

    def warm_cache(self) -> None:
        """Read the keystore file once, front to back, before a bulk read of (nearly) every subject's key.

        The start-up rebuild looks keys up by subject id, which is random order in the file: on a cold page cache
        (after a reboot) a million such lookups waited ~35 s for the disk here, while one sequential read of the
        257 MB file took 0.2 s and turns every later lookup into a cache hit. Only the operating system's cache is
        filled (nothing is kept here); an unreadable file is left to the lookups themselves to report.
        """
        buffer = bytearray(_WARM_CHUNK_BYTES)
        try:
            with self._path.open("rb") as handle:
                while handle.readinto(buffer):
                    pass
        except OSError:
            return

    @contextmanager
    def _session(self) -> Iterator[Session]:
        """A write transaction; keystore failures surface as CryptoError(key_unavailable), never plaintext."""
        try:
            with self._sessions() as session, session.begin():
                yield session
        except SQLAlchemyError as exc:
            raise CryptoError(f"keystore error: {type(exc).__name__}", code="key_unavailable") from exc

    @contextmanager
    def _read_session(self) -> Iterator[Session]:
        try:
            with self._sessions() as session:
                session.connection(execution_options={READ_ONLY_OPTION: True})
                yield session
        except SQLAlchemyError as exc:
            raise CryptoError(f"keystore error: {type(exc).__name__}", code="key_unavailable") from exc

    def put(self, *, subject_id: str, wrapped_key: bytes, master_key_id: str, created_at: datetime) -> None:
        with self._session() as session:
            session.add(
                DataKeyRow(
                    subject_id=subject_id, wrapped_key=wrapped_key, master_key_id=master_key_id, created_at=created_at
                )
            )

    def get(self, *, subject_id: str) -> bytes:
        """The wrapped key; CryptoError(key_unavailable) when it was destroyed or never existed."""
        found = self.get_many(subject_ids=[subject_id])
        if subject_id not in found:
            raise CryptoError("no data key for this subject (erased?)", code="key_unavailable")
        return found[subject_id]

    def get_many(self, *, subject_ids: Iterable[str]) -> dict[str, bytes]:
        wanted = list(subject_ids)
        if not wanted:
            return {}
        with self._read_session() as session:
            rows = session.execute(
                select(DataKeyRow.subject_id, DataKeyRow.wrapped_key).where(DataKeyRow.subject_id.in_(wanted))
            ).all()
        return {subject_id: wrapped for subject_id, wrapped in rows}

    def destroy(self, *, subject_ids: Iterable[str]) -> int:
        """Delete (crypto-shred) the keys; returns how many were destroyed."""
        doomed = list(subject_ids)
        if not doomed:
            return 0
        with self._session() as session:
            result = session.execute(delete(DataKeyRow).where(DataKeyRow.subject_id.in_(doomed)))
        return int(getattr(result, "rowcount", 0) or 0)

    def subject_ids_created_before(self, *, cutoff: datetime) -> list[str]:
        with self._read_session() as session:
            return list(session.scalars(select(DataKeyRow.subject_id).where(DataKeyRow.created_at < cutoff)))

    def subject_ids_created_between(self, *, start: datetime | None, stop: datetime) -> list[str]:
        """Subjects whose key was created in ``[start, stop)`` (``start=None``: since the beginning)."""
        query = select(DataKeyRow.subject_id).where(DataKeyRow.created_at < stop)
        if start is not None:
            query = query.where(DataKeyRow.created_at >= start)
        with self._read_session() as session:
            return list(session.scalars(query))

    def count(self) -> int:
        with self._read_session() as session:
            return int(session.scalar(select(func.count()).select_from(DataKeyRow)) or 0)
