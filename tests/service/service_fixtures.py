"""Building a service over the real store with the recognition double, and the calls a merchant makes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from service_doubles import DoubleRecognizer, photo
from service_helpers import make_client

from palmid.config import Settings
from palmid.index.exact import ExactIndex
from palmid.kiosk import NOTICE_PURPOSES, NOTICE_VERSION
from palmid.service.app import close_app, create_app
from palmid.storage.repository import Store
from palmid_testdata import postgres_schema_url

ALL_SCOPES = frozenset({"enroll", "identify", "verify", "erase"})
SCORE_LIKE = ("score", "similarity", "distance", "rank", "candidate", "threshold", "confidence", "probability")


def consent_json(*, accepted_at: datetime | str | None = None, **overrides: Any) -> str:
    when = accepted_at or datetime.now(UTC)
    body: dict[str, Any] = {
        "notice_version": NOTICE_VERSION,
        "purposes": list(NOTICE_PURPOSES[:2]),
        "accepted_at": when if isinstance(when, str) else when.isoformat().replace("+00:00", "Z"),
    }
    body.update(overrides)
    return json.dumps(body)


def assert_no_score_fields(value: object) -> None:
    """Recursively: no key of any JSON object names a score-like quantity."""
    if isinstance(value, dict):
        for key, item in value.items():
            assert not any(word in key.lower() for word in SCORE_LIKE), f"score-like field {key!r} in a response"
            assert_no_score_fields(item)
    elif isinstance(value, list):
        for item in value:
            assert_no_score_fields(item)


class Merchant:
    """One merchant's HTTP calls (any httpx-compatible client: TestClient or a live-server client)."""

    def __init__(self, client: httpx.Client, api_key: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {api_key}"}
        self.responses: list[httpx.Response] = []

    def _keep(self, response: httpx.Response) -> httpx.Response:
        self.responses.append(response)
        if response.headers.get("content-type", "").startswith("application/json"):
            assert_no_score_fields(response.json())
        return response

    def enroll(self, photos: list[bytes], *, consent: str | None = None, with_consent: bool = True) -> httpx.Response:
        files = [("images", (f"palm{i}.jpg", data, "image/jpeg")) for i, data in enumerate(photos)]
        data = {"consent": consent or consent_json()} if with_consent else {}
        return self._keep(self.client.post("/v1/enrollments", files=files, data=data, headers=self.headers))

    def identify(self, image: bytes) -> httpx.Response:
        files = {"image": ("probe.jpg", image, "image/jpeg")}
        return self._keep(self.client.post("/v1/identifications", files=files, headers=self.headers))

    def verify(self, image: bytes, subject_ref: str) -> httpx.Response:
        files = {"image": ("probe.jpg", image, "image/jpeg")}
        data = {"subject_ref": subject_ref}
        return self._keep(self.client.post("/v1/verifications", files=files, data=data, headers=self.headers))

    def erase(self, subject_ref: str) -> httpx.Response:
        return self._keep(self.client.delete(f"/v1/subjects/{subject_ref}", headers=self.headers))


@dataclass
class DoubleService:
    """A service on the real store (SQLite in tmp_path) with the recognition double, and two merchants."""

    settings: Settings
    store: Store
    recognizer: DoubleRecognizer
    client: httpx.Client
    shop: Merchant
    stadium: Merchant
    shop_key_id: str
    shop_tenant_id: str
    clock_s: list[float]
    store_clock: StoreClock
    app: FastAPI

    def merchant(self, *, scopes: frozenset[str], name: str) -> tuple[Merchant, str]:
        issued = self.store.create_tenant(name=name, scopes=scopes)
        return Merchant(self.client, issued.api_key), issued.key_id


class StoreClock:
    """A settable UTC wall clock for the store (retention tests)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def palm_photos(palm: str, count: int = 3) -> list[bytes]:
    return [photo(palm, n) for n in range(1, count + 1)]


def open_double_service(tmp_path: Path, **settings_overrides: Any) -> Iterator[DoubleService]:
    settings = Settings(data_dir=tmp_path / "data", **settings_overrides)
    store_clock = StoreClock()
    store = Store.open(settings=settings, clock=store_clock)
    recognizer = DoubleRecognizer()
    clock_s = [1000.0]
    app = create_app(
        settings=settings,
        store=store,
        recognizer=recognizer,
        index=ExactIndex(matcher=recognizer.index_matcher()),
        monotonic=lambda: clock_s[0],
        workers=2,
        retention_sweeps=False,  # the scheduled sweep runs only in tests that ask for it
    )
    run = uuid.uuid4().hex[:8]
    shop = store.create_tenant(name=f"shop-{run}", scopes=ALL_SCOPES)
    stadium = store.create_tenant(name=f"stadium-{run}", scopes=frozenset({"identify", "verify"}))
    with make_client(app) as client:
        yield DoubleService(
            settings=settings,
            store=store,
            recognizer=recognizer,
            client=client,
            shop=Merchant(client, shop.api_key),
            stadium=Merchant(client, stadium.api_key),
            shop_key_id=shop.key_id,
            shop_tenant_id=shop.tenant_id,
            clock_s=clock_s,
            store_clock=store_clock,
            app=app,
        )
    close_app(app)
    store.close()


@contextmanager
def backend_settings(backend: str, tmp_path: Path, *, prefix: str) -> Iterator[Settings]:
    """Service settings over SQLite in ``tmp_path``, or over a fresh PostgreSQL schema (``backend="postgres"``)."""
    if backend == "sqlite":
        yield Settings(data_dir=tmp_path / "data", identify_rate_per_minute=1000)
        return
    with postgres_schema_url(prefix=prefix) as url:
        yield Settings(data_dir=tmp_path / "data", database_url=url, identify_rate_per_minute=1000)
