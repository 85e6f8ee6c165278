"""The start-up rebuild reads each palm's stored index code, not its template; stale or missing codes are recomputed
from the template and stored (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from service_doubles import photo
from service_fixtures import ALL_SCOPES, Merchant, backend_settings
from service_helpers import make_client
from test_store_templates import EngineDoubleRecognizer, engine_template

from palmid.config import Settings
from palmid.index.engine import CODE_BYTES, CODE_FORMAT_VERSION, EngineMatcher
from palmid.privacy.consent import build_consent
from palmid.service.app import close_app, create_app
from palmid.service.search_codes import FORMAT_PREFIX, code_format_for, is_current_format
from palmid.storage.repository import Store
from palmid.templates.template import Template


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    with backend_settings(request.param, tmp_path, prefix="sc") as chosen:
        yield chosen


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    with Store.open(settings=settings) as opened:
        yield opened


@pytest.fixture
def code_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many templates each EngineMatcher.index_codes call computed codes for."""
    calls: list[int] = []
    original = EngineMatcher.index_codes

    def spy(self: EngineMatcher, templates: Sequence[Template]) -> NDArray[np.uint8]:
        calls.append(len(templates))
        return original(self, templates)

    monkeypatch.setattr(EngineMatcher, "index_codes", spy)
    return calls


def _stored_formats(store: Store) -> dict[str, str]:
    return {code.subject_id: code.code_format for batch in store.search_codes.iter_batches() for code in batch}


def test_rebuilt_index_finds_enrolled_palms_from_stored_codes(
    settings: Settings, store: Store, code_calls: list[int]
) -> None:
    app = create_app(
        settings=settings, store=store, recognizer=EngineDoubleRecognizer(), workers=1, retention_sweeps=False
    )
    try:
        with make_client(app) as client:
            shop = Merchant(client, store.create_tenant(name="shop", scopes=ALL_SCOPES).api_key)
            refs = {}
            for palm in ("alice", "bob", "carol"):
                enrolled = shop.enroll([photo(palm, n) for n in (1, 2, 3)])
                assert enrolled.status_code == 201, enrolled.text
                refs[palm] = enrolled.json()["subject_ref"]
            assert shop.erase(refs["carol"]).status_code == 200
    finally:
        close_app(app)
    formats = _stored_formats(store)
    assert len(formats) == 2  # the erased palm's code went with its template
    assert set(formats.values()) == {code_format_for(engine_template("alice"), code_bytes=EngineMatcher().code_bytes)}

    code_calls.clear()
    restarted = create_app(
        settings=settings, store=store, recognizer=EngineDoubleRecognizer(), workers=1, retention_sweeps=False
    )
    try:
        assert code_calls == []  # no code computed from a template at start-up
        with make_client(restarted) as client:
            shop = Merchant(client, store.create_tenant(name="shop2", scopes=ALL_SCOPES).api_key)
            assert shop.identify(photo("alice", 9)).json()["matched"] is True
            assert shop.identify(photo("bob", 9)).json()["matched"] is True
            assert shop.identify(photo("carol", 9)).json()["matched"] is False
    finally:
        close_app(restarted)


def test_stale_and_missing_codes_are_recomputed_and_stored(
    settings: Settings, store: Store, code_calls: list[int]
) -> None:
    tenant = store.create_tenant(name="shop", scopes=ALL_SCOPES)
    width = EngineMatcher().code_bytes
    now = datetime.now(UTC)
    stale_format = f"{FORMAT_PREFIX}/{CODE_FORMAT_VERSION + 1}/{width}/gabor-bocv/2"
    garbage = b"\x03" + bytes(width)  # if it were used, the palm would not be found

    def enroll(palm: str, **code: object) -> str:
        consent = build_consent(notice_version="2026-01", purposes=["payment"], accepted_at=now, now=now)
        template = engine_template(palm, samples=3).to_bytes()
        return store.enroll_subject(tenant_id=tenant.tenant_id, consent=consent, template=template, **code).subject_id  # type: ignore[arg-type]

    stale = enroll("stale", search_code=garbage, search_code_format=stale_format)
    legacy = enroll("legacy")
    assert not is_current_format(stale_format, code_bytes=width)

    app = create_app(
        settings=settings, store=store, recognizer=EngineDoubleRecognizer(), workers=1, retention_sweeps=False
    )
    try:
        assert sum(code_calls) == 2  # both computed from their templates
        with make_client(app) as client:
            shop = Merchant(client, store.create_tenant(name="shop2", scopes=ALL_SCOPES).api_key)
            assert shop.identify(photo("stale", 9)).json()["matched"] is True
            assert shop.identify(photo("legacy", 9)).json()["matched"] is True
    finally:
        close_app(app)
    formats = _stored_formats(store)
    assert set(formats) == {stale, legacy}  # backfilled
    assert all(is_current_format(value, code_bytes=width) for value in formats.values())
    assert [s for batch in store.search_codes.iter_missing() for s in batch] == []


@pytest.mark.parametrize(
    "label",
    [
        "",
        "palmid-index-code.1/1/552/gabor-bocv",
        "other/1/552/gabor-bocv/2",
        "palmid-index-code.1/1/256/gabor-bocv/2",
        "palmid-index-code.1/1/552/no-such-extractor/1",
        "palmid-index-code.1/1/552/gabor-bocv/x",
        "palmid-index-code.1/1/552/gabor-bocv/2",  # what the coarse-code index (code format 1) stored
        "palmid-index-code.1/1/392/gabor-bocv/2",
        "palmid-index-code.1/2/552/gabor-bocv/2",
    ],
)
def test_unknown_and_older_formats_are_not_current(label: str) -> None:
    assert not is_current_format(label, code_bytes=CODE_BYTES)


def test_the_current_format_is_current() -> None:
    assert CODE_FORMAT_VERSION == 2
    assert is_current_format(f"palmid-index-code.1/2/{CODE_BYTES}/gabor-bocv/2", code_bytes=CODE_BYTES)
