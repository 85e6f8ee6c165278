"""Issue 8 on real COEP photos through a live server (uvicorn, real recognition pipeline, SQLite): enroll with
consent to all purposes, link a processor token and a staff-checked date of birth, then enter, prove age and pay
(exactly once per Idempotency-Key) with another photo of the same palm; another person's palm matches nobody."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import httpx
import pytest
from service_fixtures import Merchant, consent_json
from service_live import live_server

from palmid.config import Settings
from palmid.service.app import create_app
from palmid.storage.repository import Store
from palmid_testdata import dataset_dir

pytestmark = pytest.mark.realdata


def _coep_photos(count: int) -> list[list[bytes]]:
    folder = dataset_dir("coep")
    by_palm: dict[str, list[Path]] = {}
    with (folder / "manifest.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            by_palm.setdefault(row["palm_id"], []).append(folder / row["path"])
    chosen = [paths for _, paths in sorted(by_palm.items()) if len(paths) >= 4][-count:]
    return [[path.read_bytes() for path in sorted(paths)[:4]] for paths in chosen]


def _purpose(merchant: Merchant, image: bytes, *, key: str | None = None, **fields: str) -> httpx.Response:
    headers = {**merchant.headers, **({"Idempotency-Key": key} if key else {})}
    files = {"image": ("probe.jpg", image, "image/jpeg")}
    return merchant.client.post("/v1/identifications", files=files, data=fields, headers=headers)


def test_enter_prove_age_and_pay_with_a_real_palm(tmp_path: Path) -> None:
    carla, dan = _coep_photos(2)
    settings = Settings(data_dir=tmp_path / "data")
    with Store.open(settings=settings) as admin:
        shop_key = admin.create_tenant(name="shop", scopes=frozenset({"enroll", "identify", "erase"}))
        bar_key = admin.create_tenant(name="bar", scopes=frozenset({"identify"}))
    app = create_app(settings=settings, retention_sweeps=False)
    with live_server(app) as base_url, httpx.Client(base_url=base_url, timeout=120) as client:
        shop, bar = Merchant(client, shop_key.api_key), Merchant(client, bar_key.api_key)
        enrolled = shop.enroll(carla[:3], consent=consent_json(purposes=["check_in", "payment", "age_check"]))
        assert enrolled.status_code == 201, enrolled.text
        ref = enrolled.json()["subject_ref"]
        today = date.today()
        birth = date(today.year - 30, 1, 1).isoformat()
        links = {
            "payment_token": "tok_sandbox_visa_0001",
            "membership_id": "SHOP-77",
            "age_attestation": {"date_of_birth": birth, "document_checked": True},
        }
        linked = client.post(f"/v1/subjects/{ref}/links", json=links, headers=shop.headers)
        assert linked.status_code == 200, linked.text

        probe = carla[3]  # a photo that was not used for enrollment
        entry = _purpose(shop, probe, purpose="entry").json()
        assert entry == {"purpose": "entry", "matched": True, "subject_ref": ref, "membership_id": "SHOP-77"}
        adult = _purpose(bar, probe, purpose="age_check", min_age="21")
        assert adult.json() == {"purpose": "age_check", "matched": True, "meets_min_age": True}
        assert birth not in adult.text
        assert _purpose(bar, probe, purpose="age_check", min_age="31").json()["meets_min_age"] is False
        assert _purpose(bar, dan[0], purpose="age_check", min_age="18").json() == {
            "purpose": "age_check",
            "matched": False,
            "meets_min_age": False,
        }

        paid = _purpose(shop, probe, key="pos-7-receipt-0001", purpose="payment", amount="4.20", currency="EUR")
        assert paid.status_code == 200, paid.text
        authorization = paid.json()["authorization"]
        assert authorization["status"] == "approved" and authorization["sandbox"] is True
        replay = _purpose(shop, carla[1], key="pos-7-receipt-0001", purpose="payment", amount="4.20", currency="EUR")
        assert replay.json() == paid.json()
        conflict = _purpose(shop, probe, key="pos-7-receipt-0001", purpose="payment", amount="5", currency="EUR")
        assert (conflict.status_code, conflict.json()["error"]["code"]) == (422, "idempotency_conflict")

        erased = client.delete(f"/v1/subjects/{ref}", headers=shop.headers)
        assert erased.status_code == 200
        assert _purpose(bar, probe, purpose="age_check", min_age="18").json()["matched"] is False
