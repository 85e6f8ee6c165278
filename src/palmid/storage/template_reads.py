"""Reading the encrypted templates: every one (index rebuild), one (verification), a batch (1:N re-ranking).

Nothing is cached: each call reads the ciphertext rows and the wrapped data keys and decrypts in memory, so an
erased subject (rows deleted, then data key destroyed) is never returned again.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from sqlalchemy import func, select

from palmid.errors import CryptoError, NotFoundError
from palmid.storage.crypto import PURPOSE_TEMPLATE, unseal
from palmid.storage.models import TemplateRow
from palmid.storage.subjects import SubjectDeps, data_key_for

#: Most ids in one ``IN (...)`` list (the bound-parameter limits of SQLite and PostgreSQL are far above).
LOAD_BATCH = 500


def iter_templates(deps: SubjectDeps, *, batch_size: int) -> Iterator[tuple[str, bytes]]:
    """Decrypt every template in id order, ``batch_size`` rows per query (no session is held while yielding)."""
    deps.keystore.warm_cache()  # every key will be looked up, in random order
    last_id = 0
    while True:
        with deps.read() as session:
            rows = session.execute(
                select(TemplateRow.id, TemplateRow.subject_id, TemplateRow.ciphertext)
                .where(TemplateRow.id > last_id)
                .order_by(TemplateRow.id)
                .limit(batch_size)
            ).all()
        if not rows:
            return
        keys = deps.keystore.get_many(subject_ids={row.subject_id for row in rows})
        for row_id, subject_id, sealed in rows:
            data_key = data_key_for(deps, subject_id=subject_id, wrapped=keys.get(subject_id))
            yield subject_id, unseal(data_key=data_key, sealed=sealed, subject_id=subject_id, purpose=PURPOSE_TEMPLATE)
            last_id = row_id


def load_template(deps: SubjectDeps, *, subject_id: str) -> bytes:
    """The subject's first template; NotFoundError if unknown, CryptoError if its key is gone."""
    with deps.read() as session:
        sealed = session.scalar(
            select(TemplateRow.ciphertext).where(TemplateRow.subject_id == subject_id).order_by(TemplateRow.id)
        )
    if sealed is None:
        raise NotFoundError("unknown subject")
    keys = deps.keystore.get_many(subject_ids=[subject_id])
    data_key = data_key_for(deps, subject_id=subject_id, wrapped=keys.get(subject_id))
    return unseal(data_key=data_key, sealed=sealed, subject_id=subject_id, purpose=PURPOSE_TEMPLATE)


def load_templates(deps: SubjectDeps, *, subject_ids: Sequence[str]) -> dict[str, bytes]:
    """Decrypted templates by subject id, for the subjects still enrolled: one query and one keystore read per
    :data:`LOAD_BATCH` ids. Unknown and erased subjects are simply absent (also one erased between the row query and
    the key read: erasure deletes the rows first, then the key). A row whose key is missing while the row still
    exists, or a ciphertext that fails authentication, raises CryptoError: nothing is returned undecrypted."""
    wanted = list(dict.fromkeys(subject_ids))
    found: dict[str, bytes] = {}
    for start in range(0, len(wanted), LOAD_BATCH):
        batch = wanted[start : start + LOAD_BATCH]
        with deps.read() as session:
            rows = session.execute(
                select(TemplateRow.subject_id, TemplateRow.ciphertext)
                .where(TemplateRow.subject_id.in_(batch))
                .order_by(TemplateRow.id)
            ).all()
        sealed_of: dict[str, bytes] = {}
        for subject_id, sealed in rows:
            sealed_of.setdefault(subject_id, sealed)  # the first template, as load_template
        keys = deps.keystore.get_many(subject_ids=list(sealed_of))
        keyless = [subject_id for subject_id in sealed_of if subject_id not in keys]
        if keyless:
            with deps.read() as session:
                if session.scalar(
                    select(func.count()).select_from(TemplateRow).where(TemplateRow.subject_id.in_(keyless))
                ):
                    raise CryptoError("no data key for an enrolled subject", code="key_unavailable")
        for subject_id, sealed in sealed_of.items():
            if subject_id in keys:
                data_key = data_key_for(deps, subject_id=subject_id, wrapped=keys[subject_id])
                found[subject_id] = unseal(
                    data_key=data_key, sealed=sealed, subject_id=subject_id, purpose=PURPOSE_TEMPLATE
                )
    return found
