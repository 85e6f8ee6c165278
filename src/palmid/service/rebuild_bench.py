"""Benchmark of the service's start-up index rebuild from a real encrypted store (``palmid bench rebuild``).

Filling (benchmark only, bulk): per palm, the rows that enrollment writes and the rebuild reads, thousands per
transaction instead of one: a consent record, the subject, its template sealed (AES-256-GCM) under a fresh data key
bound to the subject, and that data key wrapped by the store's master key in the keystore (written first, as
enrollment does). Pairwise refs and audit events are not written (the rebuild does not read them); the subjects
belong to a benchmark tenant, and a data dir holding any other tenant is refused, so real data is never touched.
Templates are mosaic distractors made from real Tongji palms (:class:`~palmid.index.gallery.MosaicDistractors`) or,
explicitly, uniform random bits of the engine's layout (the rebuild's cost does not depend on the bits).

Timing: the service's own path, nothing else: :meth:`Store.open <palmid.storage.repository.Store.open>` (timed
apart: it also sweeps orphan keys), :func:`palmid.service.app.default_index` (codes in memory, templates in the
store) and :func:`palmid.service.store_index.rebuild_from_store` (``Store.iter_templates`` -> ``Template.from_bytes``
-> ``FastIndex.add_many``).
"""

from __future__ import annotations

import json
import logging
import resource
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Literal

import numpy as np
from sqlalchemy import Engine, insert, select

from palmid.config import Settings
from palmid.errors import ValidationFailed
from palmid.evaluation.process_memory import release_free_memory, rss_bytes
from palmid.features.registry import DEFAULT_EXTRACTOR, get_extractor
from palmid.index.base import Index
from palmid.index.engine import EngineMatcher
from palmid.privacy.consent import build_consent
from palmid.service.search_codes import pack_search_code
from palmid.storage.crypto import PURPOSE_TEMPLATE, new_data_key, seal, search_code_purpose
from palmid.storage.db import create_db_engine, make_session_factory
from palmid.storage.keyring import Keyring, open_keyring
from palmid.storage.keystore import KEYSTORE_FILENAME, DataKeyRow
from palmid.storage.models import ConsentRow, SearchCodeRow, SubjectRow, TemplateRow, TenantRow
from palmid.storage.repository import Store
from palmid.storage.subjects import data_key_context
from palmid.templates.template import Template

__all__ = ["BENCH_TENANT", "RebuildBenchOptions", "RebuildBenchResult", "fill_store", "run_rebuild_benchmark"]

BENCH_TENANT = "palmid-bench-rebuild"
FILL_CHUNK = 2000

TemplateMaker = Callable[[int, int], list[bytes]]
"""``make(first, count)`` -> template bytes of palms ``first .. first + count - 1`` (deterministic)."""


@dataclass(frozen=True, kw_only=True)
class RebuildBenchOptions:
    gallery: int
    data_dir: Path
    database_url: str | None = None
    templates: Literal["mosaic", "random"] = "mosaic"
    dataset_dir: Path | None = None
    """Real palms for mosaic distractors (two sessions, manifest.csv)."""
    cache_dir: Path | None = None
    samples: int = 3
    seed: int = 0


@dataclass(frozen=True, kw_only=True)
class RebuildBenchResult:
    gallery: int
    rebuild_s: float
    """``rebuild_from_store``: read and decrypt every palm's stored index code and add it (codes missing or of an
    old format are computed from the template and stored: ``codes_recomputed``)."""
    per_s: float
    codes_recomputed: int
    bytes_per_palm: float
    """The index's memory (codes, id map and template source) per enrolled palm."""
    rebuild_cpu_s: float
    open_s: float
    """``Store.open`` before the rebuild (migrations, key checks, orphan-key sweep)."""
    filled: int
    """Palms added to the store by this run (0 when the data dir already held ``gallery`` palms)."""
    fill_s: float
    peak_rss_mb: float
    """Peak resident memory of the whole run (the fill included)."""
    rebuild_rss_mb: float
    """Resident memory added by the rebuild (index and allocator slack)."""
    templates: str
    backend: str
    store_mb: float
    search_p50_ms: float
    """Mated single-sample searches on the rebuilt index (full templates of the candidates read from the store)."""
    search_p95_ms: float
    search_p99_ms: float
    fetch_p50_ms: float
    """``StoreTemplates.get_many`` of 32 ids: one query, decrypt and parse."""

    def to_json(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)


def run_rebuild_benchmark(options: RebuildBenchOptions, *, log: Callable[[str], None]) -> RebuildBenchResult:
    """Fill the store up to ``gallery`` palms (kept for later runs), then time the service's start-up rebuild."""
    from palmid.service.app import default_index
    from palmid.service.engine import PipelineRecognizer
    from palmid.service.matcher import DecisionPolicy, Matcher
    from palmid.service.store_index import rebuild_from_store

    if options.gallery < 1 or not 1 <= options.samples <= 10:
        raise ValidationFailed("gallery must be at least 1 and samples 1 to 10", code="invalid_request")
    settings = Settings(data_dir=options.data_dir, database_url=options.database_url)
    with Store.open(settings=settings) as store:
        present = store.count_subjects()
    if present > options.gallery:
        raise ValidationFailed(
            f"the data dir already holds {present} palms, more than --gallery {options.gallery}", code="invalid_request"
        )
    missing = options.gallery - present
    fill_s = 0.0
    if missing:
        log(f"filling the store: {present} -> {options.gallery} palms ({options.templates} templates)")
        make = _template_maker(options, log=log)
        started = time.perf_counter()
        fill_store(settings, make=make, first=present, count=missing, log=log)
        fill_s = time.perf_counter() - started
        log(f"filled {missing} palms in {fill_s:.1f} s")

    log("rebuilding the index as the service does at start")
    started = time.perf_counter()
    store = Store.open(settings=settings)
    open_s = time.perf_counter() - started
    recognizer = PipelineRecognizer(settings=settings)
    try:
        index = default_index(recognizer, store=store)
        matcher = Matcher(recognizer=recognizer, policy=DecisionPolicy.from_settings(settings), index=index)
        release_free_memory()
        rss_before = rss_bytes()
        started_cpu = time.process_time()
        with _forwarded_rebuild_log(log):
            report = rebuild_from_store(matcher, store, log_every=max(10_000, options.gallery // 10))
        rebuild_cpu_s = time.process_time() - started_cpu
        release_free_memory()
        rebuild_rss_mb = (rss_bytes() - rss_before) / 2**20
        if report.loaded != options.gallery:
            raise ValidationFailed(f"rebuilt {report.loaded} palms, expected {options.gallery}", code="invalid_request")
        bytes_per_palm = index.nbytes() / report.loaded
        search_ms, fetch_ms = _time_searches(index, store)
    finally:
        recognizer.close()
        store.close()
    return RebuildBenchResult(
        gallery=report.loaded,
        rebuild_s=round(report.elapsed_s, 3),
        per_s=round(report.per_s, 1),
        codes_recomputed=report.recomputed,
        bytes_per_palm=round(bytes_per_palm, 1),
        rebuild_cpu_s=round(rebuild_cpu_s, 3),
        open_s=round(open_s, 3),
        filled=missing,
        fill_s=round(fill_s, 3),
        peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        rebuild_rss_mb=round(rebuild_rss_mb, 1),
        templates=options.templates,
        backend=settings.effective_database_url.split(":", 1)[0].split("+", 1)[0],
        store_mb=round(sum(p.stat().st_size for p in options.data_dir.glob("*.db*")) / 2**20, 1),
        search_p50_ms=round(float(np.percentile(search_ms, 50)), 2),
        search_p95_ms=round(float(np.percentile(search_ms, 95)), 2),
        search_p99_ms=round(float(np.percentile(search_ms, 99)), 2),
        fetch_p50_ms=round(float(np.percentile(fetch_ms, 50)), 2),
    )


@contextmanager
def _forwarded_rebuild_log(log: Callable[[str], None]) -> Iterator[None]:
    """Show the service's own rebuild progress lines through ``log`` while the rebuild runs."""

    class Forward(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            log(record.getMessage())

    logger = logging.getLogger("palmid.service.store_index")
    handler, level = Forward(level=logging.INFO), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _time_searches(
    index: Index[Template], store: Store, *, queries: int = 256, warm_up: int = 8
) -> tuple[list[float], list[float]]:
    """Milliseconds per mated search (a probe made of one enrolled sample) and per 32-template store fetch, after
    ``warm_up`` untimed searches."""
    from palmid.service.store_index import StoreTemplates

    enrolled = list(islice(store.iter_templates(), queries + warm_up))
    for _, blob in enrolled[:warm_up]:
        template = Template.from_bytes(blob)
        index.search(Template(template.extractor_id, template.version, template.samples[-1:]), k=1)
    enrolled = enrolled[warm_up:]
    ids = [subject_id for subject_id, _ in enrolled]
    search_ms, fetch_ms = [], []
    source = StoreTemplates(store=store)
    for n, (_, blob) in enumerate(enrolled):
        template = Template.from_bytes(blob)
        probe = Template(extractor_id=template.extractor_id, version=template.version, samples=template.samples[-1:])
        started = time.perf_counter()
        index.search(probe, k=1)
        search_ms.append((time.perf_counter() - started) * 1000)
        batch = (ids[n:] + ids[:n])[:32]
        started = time.perf_counter()
        source.get_many(batch)
        fetch_ms.append((time.perf_counter() - started) * 1000)
    return search_ms, fetch_ms


def fill_store(
    settings: Settings, *, make: TemplateMaker, first: int, count: int, log: Callable[[str], None] | None = None
) -> None:
    """Add ``count`` enrolled palms (templates ``make(first, ...)``) to the benchmark store, in bulk.

    The store must exist (``Store.open`` once) and hold no tenant but the benchmark's (ValidationFailed otherwise).
    """
    engine = create_db_engine(settings.effective_database_url)
    key_engine = create_db_engine(f"sqlite:///{settings.data_dir / KEYSTORE_FILENAME}", sqlite_journal_mode="DELETE")
    sessions = make_session_factory(engine)
    try:
        with sessions() as session, session.begin():
            keyring = open_keyring(session, data_dir=settings.data_dir, key_provider=None)
            tenants = {name: tenant_id for name, tenant_id in session.execute(select(TenantRow.name, TenantRow.id))}
            if set(tenants) - {BENCH_TENANT}:
                raise ValidationFailed("this data dir holds real tenants: use an empty one", code="invalid_request")
            tenant_id = tenants.get(BENCH_TENANT) or uuid.uuid4().hex
            now = datetime.now(UTC)
            if BENCH_TENANT not in tenants:
                session.add(TenantRow(id=tenant_id, name=BENCH_TENANT, created_at=now))
        last_log = time.perf_counter()
        for start in range(first, first + count, FILL_CHUNK):
            blobs = make(start, min(FILL_CHUNK, first + count - start))
            _insert_palms(
                engine,
                key_engine,
                keyring=keyring,
                tenant_id=tenant_id,
                blobs=blobs,
                now=now,
                retention_days=settings.retention.max_total_days,
            )
            if log is not None and time.perf_counter() - last_log > 30:
                last_log = time.perf_counter()
                log(f"filled {start + len(blobs) - first} / {count} palms")
    finally:
        key_engine.dispose()
        engine.dispose()


def _insert_palms(
    engine: Engine,
    key_engine: Engine,
    *,
    keyring: Keyring,
    tenant_id: str,
    blobs: list[bytes],
    now: datetime,
    retention_days: int,
) -> None:
    consent = build_consent(notice_version="2026-01", purposes=["payment"], accepted_at=now, now=now)
    consents, subjects, templates, keys = [], [], [], []
    codes: list[tuple[str, str, bytes]] = []  # (subject id, code format, sealed code)
    parsed = [Template.from_bytes(blob) for blob in blobs]
    index_codes = EngineMatcher().index_codes(parsed)  # stored with each template, as enrollment does
    for blob, template, index_code in zip(blobs, parsed, index_codes, strict=True):
        subject_id, consent_id = uuid.uuid4().hex, uuid.uuid4().hex
        data_key = new_data_key()
        wrapped = keyring.key_provider.wrap_key(data_key=data_key, context=data_key_context(subject_id))
        keys.append(
            {
                "subject_id": subject_id,
                "wrapped_key": wrapped,
                "master_key_id": keyring.key_provider.key_id,
                "created_at": now,
            }
        )
        consents.append(
            {
                "id": consent_id,
                "tenant_id": tenant_id,
                "notice_version": consent.notice_version,
                "notice_sha256": consent.notice_sha256,
                "purposes": json.dumps(list(consent.purposes)),
                "retention_days": retention_days,
                "accepted_at": consent.accepted_at,
                "recorded_at": now,
            }
        )
        subjects.append(
            {
                "id": subject_id,
                "consent_id": consent_id,
                "enrolled_tenant_id": tenant_id,
                "created_at": now,
                "last_interaction_at": now,
            }
        )
        sealed = seal(data_key=data_key, plaintext=blob, subject_id=subject_id, purpose=PURPOSE_TEMPLATE)
        templates.append({"subject_id": subject_id, "ciphertext": sealed, "created_at": now})
        code = pack_search_code(template, index_code.tobytes())
        purpose = search_code_purpose(code.code_format)
        sealed_code = seal(data_key=data_key, plaintext=code.code, subject_id=subject_id, purpose=purpose)
        codes.append((subject_id, code.code_format, sealed_code))
    with key_engine.begin() as connection:  # keys first: a failure below leaves only orphan keys (swept at open)
        connection.execute(insert(DataKeyRow), keys)
    with engine.begin() as connection:
        connection.execute(insert(ConsentRow), consents)
        connection.execute(insert(SubjectRow), subjects)
        connection.execute(insert(TemplateRow), templates)
        batch = [subject_id for subject_id, _, _ in codes]
        found = connection.execute(
            select(TemplateRow.subject_id, TemplateRow.id).where(TemplateRow.subject_id.in_(batch))
        ).all()
        template_id_of = {subject_id: template_id for subject_id, template_id in found}
        code_rows = [
            {
                "template_id": template_id_of[subject_id],
                "subject_id": subject_id,
                "code_format": code_format,
                "ciphertext": sealed_code,
                "created_at": now,
            }
            for subject_id, code_format, sealed_code in codes
        ]
        connection.execute(insert(SearchCodeRow), code_rows)


def _template_maker(options: RebuildBenchOptions, *, log: Callable[[str], None]) -> TemplateMaker:
    engine = get_extractor(DEFAULT_EXTRACTOR)
    if options.templates == "random":
        sample_bytes = engine.layout.sample_bytes

        def random_templates(first: int, count: int) -> list[bytes]:
            rng = np.random.default_rng([options.seed, first])
            bits = rng.integers(0, 256, size=(count, options.samples, sample_bytes), dtype=np.uint8)
            return [
                Template(
                    extractor_id=engine.extractor_id,
                    version=engine.version,
                    samples=tuple(sample.tobytes() for sample in palm),
                ).to_bytes()
                for palm in bits
            ]

        return random_templates
    from palmid.index.benchdata import split_palms
    from palmid.index.benchmark import SearchBenchOptions

    if options.dataset_dir is None or options.cache_dir is None:
        raise ValidationFailed("mosaic templates need a dataset dir and a cache dir", code="invalid_request")
    split = split_palms(
        SearchBenchOptions(
            gallery=options.gallery,
            dataset_dir=options.dataset_dir,
            cache_dir=options.cache_dir,
            enroll_samples=options.samples,
            seed=options.seed,
        ),
        log=log,
    )

    def mosaic_templates(first: int, count: int) -> list[bytes]:
        numbers = np.arange(first, first + count, dtype=np.int64)
        return [template.to_bytes() for template in split.distractors.templates(numbers)]

    return mosaic_templates
