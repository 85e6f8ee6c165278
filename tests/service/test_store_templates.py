"""The service's index keeps only codes in memory and reads full templates from the encrypted store per search.

Templates here have the real engine's layout (random bits per palm, the same for every photo of a palm), so the
service's default index (:func:`palmid.service.app.default_index`: ``FastIndex`` over ``EngineMatcher`` with
``StoreTemplates``) runs for real, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError
from service_doubles import DoubleRecognizer, photo
from service_fixtures import ALL_SCOPES, Merchant, backend_settings
from service_helpers import make_client

import palmid.service.app as service_app
from palmid.config import Settings
from palmid.errors import ConfigError
from palmid.features.registry import DEFAULT_EXTRACTOR, get_extractor
from palmid.index.base import Index
from palmid.index.engine import EngineMatcher
from palmid.index.fast import FastIndex
from palmid.index.profiles import SEARCH_PROFILES
from palmid.privacy.consent import build_consent
from palmid.service.app import close_app, create_app
from palmid.service.engine import Recognizer
from palmid.service.rebuild_bench import fill_store
from palmid.service.store_index import RebuildProgress, StoreTemplates
from palmid.storage.repository import Store
from palmid.templates.template import Template

ENGINE = get_extractor(DEFAULT_EXTRACTOR)
SAMPLE_BYTES = ENGINE.layout.sample_bytes
#: Identical samples compare at 1.0, random ones at ~0.52 (see test_engine_double_separates_palms).
THRESHOLD = 0.9
#: Enough palms that the index's minimum allocation (1024 rows) does not dominate the per-palm figure.
GALLERY = 1100


def engine_template(palm: str, *, samples: int = 1) -> Template:
    seed = int.from_bytes(hashlib.sha256(palm.encode()).digest()[:8], "little")
    bits = np.random.default_rng(seed).integers(0, 256, size=SAMPLE_BYTES, dtype=np.uint8).tobytes()
    return Template(extractor_id=ENGINE.extractor_id, version=ENGINE.version, samples=(bits,) * samples)


class EngineDoubleRecognizer(DoubleRecognizer):
    """The photo double, but templates in the engine's format, compared and indexed by the real engine matcher."""

    def __init__(self) -> None:
        super().__init__()
        self.engine_matcher = EngineMatcher()

    def template_from_bytes(self, data: bytes) -> Template:
        super().template_from_bytes(data)  # refusals as the double's; a PALM photo -> that palm's template
        return engine_template(data.split(b":")[1].decode())

    def merge(self, templates: Sequence[Template]) -> Template:
        samples = tuple(sample for template in templates for sample in template.samples)
        return Template(extractor_id=ENGINE.extractor_id, version=ENGINE.version, samples=samples)

    def compare(self, probe: Template, reference: Template) -> float:
        return self.engine_matcher.compare(probe, reference)

    def threshold_for_fmr(self, fmr: float, *, n_sample_pairs: int) -> float:
        super().threshold_for_fmr(fmr, n_sample_pairs=n_sample_pairs)
        return THRESHOLD

    def index_matcher(self) -> EngineMatcher:
        return self.engine_matcher


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    with backend_settings(request.param, tmp_path, prefix="st") as chosen:
        yield chosen


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    with Store.open(settings=settings) as opened:
        yield opened


def _enroll(store: Store, template: Template, tenant_id: str) -> str:
    now = datetime.now(UTC)
    consent = build_consent(notice_version="2026-01", purposes=["payment"], accepted_at=now, now=now)
    return store.enroll_subject(tenant_id=tenant_id, consent=consent, template=template.to_bytes()).subject_id


def test_engine_double_separates_palms() -> None:
    matcher = EngineMatcher()
    alice, bob = engine_template("alice", samples=3), engine_template("bob", samples=3)
    assert matcher.compare(engine_template("alice"), alice) == pytest.approx(1.0)
    assert matcher.compare(engine_template("alice"), bob) < THRESHOLD - 0.2


def test_store_templates_returns_what_was_enrolled_and_none_once_erased(store: Store) -> None:
    tenant = store.create_tenant(name="shop", scopes=ALL_SCOPES)
    alice, bob = engine_template("alice", samples=3), engine_template("bob", samples=2)
    alice_id, bob_id = _enroll(store, alice, tenant.tenant_id), _enroll(store, bob, tenant.tenant_id)
    source = StoreTemplates(store=store)

    assert source.get_many([bob_id, "0" * 32, alice_id]) == [bob, None, alice]
    assert source.get_many([]) == []
    source.discard(alice_id)  # the store is the source of truth: discarding from the index keeps the template
    source.put("someone", bob)  # ... and putting stores nothing
    assert source.get_many([alice_id, "someone"]) == [alice, None]
    assert source.nbytes() == 0

    store.erase_subject(subject_id=alice_id, tenant_id=tenant.tenant_id)
    assert source.get_many([alice_id, bob_id]) == [None, bob]


def test_a_search_racing_with_erasure_drops_the_erased_palm(store: Store) -> None:
    """Erased in the store but not yet removed from the index (the retention sweep's order): never reported."""
    tenant = store.create_tenant(name="shop", scopes=ALL_SCOPES)
    index: FastIndex[Template] = FastIndex(matcher=EngineMatcher(), templates=StoreTemplates(store=store))
    for palm in ("alice", "bob", "carol"):
        template = engine_template(palm, samples=3)
        index.add(_enroll(store, template, tenant.tenant_id), template)
    alice_hit = index.search(engine_template("alice"), k=1)[0]
    assert alice_hit.similarity == pytest.approx(1.0)

    store.erase_subject(subject_id=alice_hit.subject_id, tenant_id=tenant.tenant_id)

    hits = index.search(engine_template("alice"), k=3)
    assert alice_hit.subject_id not in {hit.subject_id for hit in hits}
    assert all(hit.similarity < THRESHOLD for hit in hits)
    assert index.nbytes(include_templates=True) == index.nbytes(include_templates=False)


def test_service_index_holds_codes_only_and_forgets_erased_palms(
    settings: Settings, store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def random_palms(first: int, count: int) -> list[bytes]:
        return [engine_template(f"enrolled-{n}", samples=3).to_bytes() for n in range(first, first + count)]

    fill_store(settings, make=random_palms, first=0, count=GALLERY)  # enrolled before the service starts
    built: list[Index[Template]] = []
    original = service_app.default_index

    def recording(recognizer: Recognizer, *, store: Store, profile: str) -> Index[Template]:
        built.append(original(recognizer, store=store, profile=profile))
        return built[-1]

    monkeypatch.setattr(service_app, "default_index", recording)
    recognizer = EngineDoubleRecognizer()
    with caplog.at_level(logging.INFO, logger="palmid.service.store_index"):
        app = create_app(settings=settings, store=store, recognizer=recognizer, workers=2, retention_sweeps=False)
    try:
        (index,) = built
        assert isinstance(index, FastIndex)
        assert len(index) == GALLERY
        assert f"index rebuilt from the store: {GALLERY} palms" in caplog.text
        assert index.nbytes(include_templates=True) == index.nbytes(include_templates=False)
        assert index.nbytes(include_templates=True) / len(index) < 1024  # full templates would be ~14.6 KB each

        with make_client(app) as client:
            shop = Merchant(client, store.create_tenant(name="shop", scopes=ALL_SCOPES).api_key)
            enrolled = shop.enroll([photo("alice", n) for n in (1, 2, 3)])
            assert enrolled.status_code == 201, enrolled.text
            ref = enrolled.json()["subject_ref"]
            assert shop.enroll([photo("alice", n) for n in (4, 5, 6)]).status_code == 409  # duplicate found
            assert shop.identify(photo("alice", 7)).json() == {"matched": True, "subject_ref": ref}
            assert shop.identify(photo("enrolled-17", 1)).json()["matched"] is True  # a rebuilt palm
            assert len(index) == GALLERY + 1
            assert index.nbytes(include_templates=True) / len(index) < 1024

            assert shop.erase(ref).status_code == 200

            assert len(index) == GALLERY
            assert shop.identify(photo("alice", 8)).json() == {"matched": False, "subject_ref": None}
            assert shop.verify(photo("alice", 8), ref).status_code == 404
    finally:
        close_app(app)


def test_index_profile_setting_chooses_the_search_stages(store: Store) -> None:
    recognizer = EngineDoubleRecognizer()
    accurate = service_app.default_index(recognizer, store=store, profile="accurate")
    fast = service_app.default_index(recognizer, store=store, profile="fast")
    assert isinstance(accurate, FastIndex) and isinstance(fast, FastIndex)
    assert accurate.profile.scan_words == EngineMatcher().scan_bytes // 8 == 12  # the whole scan code
    assert fast.profile == SEARCH_PROFILES["fast"]
    assert fast.profile.scan_words is not None and fast.profile.scan_words < accurate.profile.scan_words
    with pytest.raises(ConfigError):
        service_app.default_index(recognizer, store=store, profile="reckless")
    with pytest.raises(ValidationError):
        Settings(index_profile="reckless")  # type: ignore[arg-type]


def test_rebuild_progress_logs_every_n_palms_with_a_rate(caplog: pytest.LogCaptureFixture) -> None:
    now = [10.0]
    clock: Callable[[], float] = lambda: now[0]  # noqa: E731
    progress = RebuildProgress(every=10_000, clock=clock, started=0.0)
    with caplog.at_level(logging.INFO, logger="palmid.service.store_index"):
        for count in (4096, 8192, 12288, 16384, 20480, 24576):
            now[0] = count / 1000
            progress(count)
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "index rebuild: 12288 palms loaded (1000 palms/s)",
        "index rebuild: 20480 palms loaded (1000 palms/s)",
    ]
