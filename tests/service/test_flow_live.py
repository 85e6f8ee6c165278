"""The whole flow on real COEP photos against a live server (uvicorn), on SQLite and on PostgreSQL.

Two merchants; enroll through one; identify through both (different refs); verify; each refusal; erase; then
nothing matches anywhere; and neither the data folder nor the database holds image bytes or unencrypted templates.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from service_fixtures import Merchant, consent_json
from service_helpers import spy_temp_files
from service_live import BACKENDS, database_dump, folder_bytes, live_server, windows

from palmid.config import Settings
from palmid.pipeline import Pipeline
from palmid.privacy.receipts import ErasureReceipt, verify_receipt
from palmid.service.app import create_app
from palmid.storage.repository import Store
from palmid.templates.template import TEMPLATE_MAGIC
from palmid_testdata import dataset_dir, postgres_schema_url

pytestmark = pytest.mark.realdata

ALL_SCOPES = frozenset({"enroll", "identify", "verify", "erase"})
RATE_PER_MINUTE = 8


@dataclass(frozen=True)
class Palm:
    palm_id: str
    photos: tuple[bytes, ...]


def _coep_palms(count: int) -> list[Palm]:
    folder = dataset_dir("coep")
    by_palm: dict[str, list[Path]] = {}
    with (folder / "manifest.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            by_palm.setdefault(row["palm_id"], []).append(folder / row["path"])
    chosen = [palm for palm, paths in sorted(by_palm.items()) if len(paths) >= 4][:count]
    return [Palm(palm, tuple(path.read_bytes() for path in sorted(by_palm[palm])[:4])) for palm in chosen]


def _upscaled(photo: bytes) -> bytes:
    image = cv2.imdecode(np.frombuffer(photo, dtype=np.uint8), cv2.IMREAD_COLOR)
    bigger = cv2.resize(image, None, fx=1.6, fy=1.6, interpolation=cv2.INTER_CUBIC)
    ok, encoded = cv2.imencode(".jpg", bigger, [cv2.IMWRITE_JPEG_QUALITY, 97])
    assert ok
    return encoded.tobytes()


def _photo_without_hand() -> bytes:
    gradient = np.tile(np.linspace(40, 200, 800, dtype=np.uint8), (600, 1))
    ok, encoded = cv2.imencode(".jpg", cv2.merge([gradient, gradient, gradient]))
    assert ok
    return encoded.tobytes()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None
        return
    with postgres_schema_url(prefix="svc") as url:
        yield url


@dataclass
class Leaks:
    """What must never be found at rest: photo slices, template code slices, the template magic."""

    needles: list[bytes]

    def assert_absent(self, haystacks: dict[str, bytes]) -> None:
        for name, data in haystacks.items():
            for needle in self.needles:
                assert needle not in data, f"biometric bytes found at rest in {name}"


def _scan(settings: Settings, leaks: Leaks) -> None:
    haystacks = {str(path): data for path, data in folder_bytes(settings.data_dir).items()}
    haystacks["database"] = database_dump(settings.effective_database_url)
    assert haystacks
    leaks.assert_absent(haystacks)


def _receipt(body: dict[str, object]) -> ErasureReceipt:
    return ErasureReceipt(
        receipt_id=str(body["receipt_id"]),
        subject_ref=str(body["subject_ref"]),
        tenant_id=str(body["tenant_id"]),
        erased_at=datetime.fromisoformat(str(body["erased_at"])),
        destroyed=tuple(str(item) for item in body["destroyed"]),  # type: ignore[attr-defined]
        consent_record_sha256=str(body["consent_record_sha256"]),
        public_key=str(body["public_key"]),
        signature=str(body["signature"]),
    )


def test_whole_flow_on_real_photos(
    tmp_path: Path,
    database_url: str | None,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    alice, bob = _coep_palms(2)
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url, identify_rate_per_minute=RATE_PER_MINUTE)

    with Store.open(settings=settings) as admin:
        shop_key = admin.create_tenant(name="shop", scopes=ALL_SCOPES)
        stadium_key = admin.create_tenant(name="stadium", scopes=frozenset({"identify", "verify"}))
        busy_key = admin.create_tenant(name="busy-kiosk", scopes=frozenset({"identify"}))
        revoked_key = admin.create_tenant(name="old-kiosk", scopes=ALL_SCOPES)
        admin.revoke_key(key_id=revoked_key.key_id)
        public_key = admin.receipt_public_key_b64

    reference = Pipeline()
    leaks = Leaks(needles=[TEMPLATE_MAGIC])
    try:
        for palm in (alice, bob):
            for data in palm.photos:
                leaks.needles += windows(data)
                leaks.needles += windows(reference.template_from_bytes(data).samples[0])
    finally:
        reference.close()

    big_probe = _upscaled(alice.photos[3])
    assert len(big_probe) > 1024 * 1024  # above Starlette's spool-to-disk threshold
    app = create_app(settings=settings)
    temp_files = spy_temp_files(monkeypatch)
    with (
        caplog.at_level(logging.DEBUG),
        live_server(app) as base_url,
        httpx.Client(base_url=base_url, timeout=120) as client,
    ):
        shop = Merchant(client, shop_key.api_key)
        stadium = Merchant(client, stadium_key.api_key)
        enroll_photos = list(alice.photos[:3])

        # Refusals before anything is enrolled.
        no_consent = shop.enroll(enroll_photos, with_consent=False)
        assert (no_consent.status_code, no_consent.json()["error"]["code"]) == (422, "consent_required")
        bad_consent = shop.enroll(enroll_photos, consent=consent_json(notice_version="made-up"))
        assert (bad_consent.status_code, bad_consent.json()["error"]["code"]) == (422, "consent_invalid")
        wrong_scope = stadium.enroll(enroll_photos)
        assert (wrong_scope.status_code, wrong_scope.json()["error"]["code"]) == (403, "forbidden_scope")
        bad_images = shop.enroll([alice.photos[0], b"\xff\xd8 not really a jpeg", _photo_without_hand()])
        assert bad_images.status_code == 422
        assert [issue["index"] for issue in bad_images.json()["error"]["images"]] == [1, 2]
        revoked = Merchant(client, revoked_key.api_key).identify(alice.photos[3])
        assert (revoked.status_code, revoked.json()["error"]["code"]) == (401, "key_revoked")

        # Enroll through the shop; the same palm again is refused without saying whose.
        enrolled = shop.enroll(enroll_photos)
        assert enrolled.status_code == 201, enrolled.text
        ref_shop = enrolled.json()["subject_ref"]
        duplicate = shop.enroll(list(alice.photos[1:4]))
        assert (duplicate.status_code, duplicate.json()["error"]["code"]) == (409, "already_enrolled")
        assert ref_shop not in duplicate.text

        # Identify through both merchants: both match, with different (pairwise) refs.
        assert shop.identify(alice.photos[3]).json() == {"matched": True, "subject_ref": ref_shop}
        assert shop.identify(big_probe).json() == {"matched": True, "subject_ref": ref_shop}
        at_stadium = stadium.identify(alice.photos[3]).json()
        assert at_stadium["matched"] is True
        ref_stadium = at_stadium["subject_ref"]
        assert ref_stadium != ref_shop
        assert shop.identify(bob.photos[0]).json() == {"matched": False, "subject_ref": None}

        # Verify; another merchant's ref is unknown to the caller.
        assert shop.verify(alice.photos[3], ref_shop).json() == {"matched": True}
        assert stadium.verify(alice.photos[3], ref_stadium).json() == {"matched": True}
        assert shop.verify(bob.photos[1], ref_shop).json() == {"matched": False}
        other = stadium.verify(alice.photos[3], ref_shop)
        assert (other.status_code, other.json()["error"]["code"]) == (404, "not_found")

        _scan(settings, leaks)  # while enrolled: only encrypted templates at rest

        # Brute force: five impostor attempts, then locked out (even for the right palm).
        for _ in range(5):
            assert stadium.verify(bob.photos[2], ref_stadium).json() == {"matched": False}
        locked = stadium.verify(alice.photos[3], ref_stadium)
        assert (locked.status_code, locked.json()["error"]["code"]) == (429, "locked_out")
        assert int(locked.headers["retry-after"]) >= 1

        # Identification rate limit per key.
        busy = Merchant(client, busy_key.api_key)
        statuses = [busy.identify(b"not an image").status_code for _ in range(RATE_PER_MINUTE + 1)]
        assert statuses[:RATE_PER_MINUTE] == [422] * RATE_PER_MINUTE
        assert statuses[-1] == 429
        assert busy.responses[-1].json()["error"]["code"] == "rate_limited"

        # Erase through the shop: a signed receipt, then the palm matches nowhere.
        erased = shop.erase(ref_shop)
        assert erased.status_code == 200
        assert verify_receipt(receipt=_receipt(erased.json()), public_key_b64=public_key)
        for merchant in (shop, stadium):
            assert merchant.identify(alice.photos[3]).json() == {"matched": False, "subject_ref": None}
        assert shop.verify(alice.photos[3], ref_shop).status_code == 404
        assert stadium.verify(alice.photos[0], ref_stadium).status_code == 404

        metrics = client.get("/metrics").text
        assert ref_shop not in metrics
        assert "palmid_enrolled_palms 0" in metrics

    _scan(settings, leaks)
    assert temp_files == []  # no upload was spooled to a temporary file
    server_logs = "\n".join(
        record.getMessage() for record in caplog.records if record.name.startswith(("palmid", "uvicorn.error"))
    )
    for word in ("similarity", "score", "threshold", ref_shop, ref_stadium):
        assert word not in server_logs
