"""Search codes: each palm's identification-index code, sealed with the subject's data key (opaque to storage).

The service computes a code from the template at enrollment and hands it to
:meth:`palmid.storage.repository.Store.enroll_subject` with a format label; the start-up rebuild reads the codes back
(~0.6 KB per palm instead of the ~15 KB template) with :func:`iter_search_codes`. Storage never interprets a code: the
caller decides whether a label is current, recomputes stale or missing codes from the templates
(:func:`iter_subjects_without_code`) and stores them with :func:`save_search_codes`. A code lives and dies with its
template row and is shredded with the subject's data key; its AEAD purpose (``search-code|<format>``) differs from a
template's, so neither can be decrypted as the other, and a relabelled format fails authentication.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, exists, func, insert, select

from palmid.errors import ValidationFailed
from palmid.storage.crypto import search_code_purpose, unseal
from palmid.storage.models import SearchCodeRow, TemplateRow
from palmid.storage.subjects import MAX_CODE_FORMAT_CHARS, SubjectDeps, data_key_for, sealed_search_code

_COLUMNS = ("template_id", "subject_id", "code_format", "ciphertext", "created_at")


@dataclass(frozen=True, kw_only=True)
class StoredSearchCode:
    """A decrypted search code and the format label it was stored with."""

    subject_id: str
    code_format: str
    code: bytes


@dataclass(frozen=True, kw_only=True)
class SearchCodeUpdate:
    """A (re)computed code to store for the subject's first template."""

    subject_id: str
    code_format: str
    code: bytes


def iter_search_codes(deps: SubjectDeps, *, batch_size: int) -> Iterator[list[StoredSearchCode]]:
    """Every stored code, decrypted, in template order, ``batch_size`` per batch (no session held while yielding).

    A row whose data key is missing, or a ciphertext that fails authentication, raises CryptoError."""
    deps.keystore.warm_cache()  # every key will be looked up, in random order
    last_id = 0
    while True:
        with deps.read() as session:
            rows = session.execute(
                select(
                    SearchCodeRow.template_id,
                    SearchCodeRow.subject_id,
                    SearchCodeRow.code_format,
                    SearchCodeRow.ciphertext,
                )
                .where(SearchCodeRow.template_id > last_id)
                .order_by(SearchCodeRow.template_id)
                .limit(batch_size)
            ).all()
        if not rows:
            return
        keys = deps.keystore.get_many(subject_ids={row.subject_id for row in rows})
        batch: list[StoredSearchCode] = []
        for _, subject_id, code_format, sealed in rows:
            data_key = data_key_for(deps, subject_id=subject_id, wrapped=keys.get(subject_id))
            code = unseal(
                data_key=data_key, sealed=sealed, subject_id=subject_id, purpose=search_code_purpose(code_format)
            )
            batch.append(StoredSearchCode(subject_id=subject_id, code_format=code_format, code=code))
        last_id = rows[-1].template_id
        yield batch


def iter_subjects_without_code(deps: SubjectDeps, *, batch_size: int) -> Iterator[list[str]]:
    """Subject ids of the template rows that have no stored code (enrolled before codes were stored), in batches.

    Every code belongs to a distinct template row (primary and foreign key), so equal counts mean nothing is missing:
    checked first, because the scan below reads the whole templates table (~13 s at a million palms on SQLite)."""
    with deps.read() as session:
        n_templates = session.scalar(select(func.count()).select_from(TemplateRow))
        n_codes = session.scalar(select(func.count()).select_from(SearchCodeRow))
    if n_templates == n_codes:
        return
    last_id = 0
    coded = exists().where(SearchCodeRow.template_id == TemplateRow.id)
    while True:
        with deps.read() as session:
            rows = session.execute(
                select(TemplateRow.id, TemplateRow.subject_id)
                .where(TemplateRow.id > last_id, ~coded)
                .order_by(TemplateRow.id)
                .limit(batch_size)
            ).all()
        if not rows:
            return
        last_id = rows[-1].id
        yield [row.subject_id for row in rows]


def save_search_codes(deps: SubjectDeps, *, codes: Sequence[SearchCodeUpdate], now: datetime) -> int:
    """Store (or replace) the codes of the subjects' first templates in one transaction; subjects no longer enrolled
    are skipped. Returns how many were stored."""
    for update in codes:
        if not update.code or not update.code_format or len(update.code_format) > MAX_CODE_FORMAT_CHARS:
            raise ValidationFailed("a search code needs non-empty bytes and a format label of at most 64 characters")
    if not codes:
        return 0
    wanted = list(dict.fromkeys(update.subject_id for update in codes))
    keys = deps.keystore.get_many(subject_ids=wanted)
    with deps.write() as session:
        first_template: dict[str, int] = {
            subject_id: template_id
            for subject_id, template_id in session.execute(
                select(TemplateRow.subject_id, func.min(TemplateRow.id))
                .where(TemplateRow.subject_id.in_(wanted))
                .group_by(TemplateRow.subject_id)
            )
        }
        template_ids = [first_template[s] for s in wanted if s in first_template and s in keys]
        session.execute(delete(SearchCodeRow).where(SearchCodeRow.template_id.in_(template_ids)))
        rows: dict[str, dict[str, object]] = {}
        for update in codes:
            subject_id = update.subject_id
            if subject_id in rows or subject_id not in first_template or subject_id not in keys:
                continue  # erased meanwhile (rows first, then the key): nothing to store
            data_key = data_key_for(deps, subject_id=subject_id, wrapped=keys[subject_id])
            row = sealed_search_code(
                data_key=data_key,
                template_id=first_template[subject_id],
                subject_id=subject_id,
                code=update.code,
                code_format=update.code_format,
                now=now,
            )
            rows[subject_id] = {column: getattr(row, column) for column in _COLUMNS}
        if rows:
            session.execute(insert(SearchCodeRow), list(rows.values()))  # one bulk insert, no ORM unit of work
        stored = len(rows)
    return stored


class SearchCodeStore:
    """The search codes of a :class:`~palmid.storage.repository.Store` (``store.search_codes``)."""

    def __init__(self, *, deps: SubjectDeps, now: Callable[[], datetime], batch_size: int) -> None:
        self._deps = deps
        self._now = now
        self._batch_size = batch_size

    def iter_batches(self) -> Iterator[list[StoredSearchCode]]:
        """Every stored code, decrypted, in batches (index rebuild). CryptoError fails closed."""
        return iter_search_codes(self._deps, batch_size=self._batch_size)

    def iter_missing(self) -> Iterator[list[str]]:
        """Batches of subject ids whose template has no stored code."""
        return iter_subjects_without_code(self._deps, batch_size=self._batch_size)

    def save(self, codes: Sequence[SearchCodeUpdate]) -> int:
        """Store or replace codes (backfill); subjects erased meanwhile are skipped. Returns how many were stored."""
        return save_search_codes(self._deps, codes=codes, now=self._now())
