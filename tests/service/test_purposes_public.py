"""Issue 8, the promises kept over time: the public retention policy and transparency report, the scheduled
retention sweep inside the service, and the operator verbs `palmid retention run` / `palmid legal-request record`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from service_doubles import DoubleRecognizer, photo
from service_fixtures import DoubleService, consent_json, open_double_service, palm_photos
from service_helpers import make_client
from typer.testing import CliRunner

from palmid.config import BIPA_MAX_DAYS, RetentionSettings, Settings
from palmid.index.exact import ExactIndex
from palmid.kiosk import render_notice
from palmid.privacy.consent import build_consent
from palmid.service.app import close_app, create_app
from palmid.storage.repository import Store

runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_env_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PALMID_DATABASE_URL", "PALMID_DATA_DIR", "PALMID_CONFIG"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[DoubleService]:
    yield from open_double_service(
        tmp_path, identify_rate_per_minute=1000, retention=RetentionSettings(max_idle_days=200, max_total_days=400)
    )


def _cli(*args: str) -> tuple[int, str, str]:
    from palmid.cli.main import app

    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_retention_policy_is_public_and_matches_the_notice(service: DoubleService) -> None:
    response = service.client.get("/v1/policy/retention")  # no API key
    assert response.status_code == 200
    policy = response.json()
    assert policy["max_idle_days"] == 200 and policy["max_total_days"] == 400
    assert policy["max_total_days"] <= BIPA_MAX_DAYS
    notice = render_notice(settings=service.settings)
    assert policy["notice_version"] == notice.version
    assert policy["notice_sha256"] == notice.sha256
    assert "200 days" in notice.text and "400 days" in notice.text
    assert "/v1/policy/retention" in service.client.get("/openapi.json").json()["paths"]


def test_transparency_report_is_public_and_counts(service: DoubleService) -> None:
    ref = service.shop.enroll(palm_photos("lea")).json()["subject_ref"]
    service.shop.enroll(palm_photos("max"))
    for palm in ("lea", "lea", "nobody"):
        service.stadium.identify(photo(palm))
    service.shop.erase(ref)
    code, out, err = _cli(
        "legal-request",
        "record",
        "--kind",
        "warrant",
        "--received",
        date.today().isoformat(),
        "--disclosed",
        "none",
        "--reference",
        "case-2026/001",
        "--data-dir",
        str(service.settings.data_dir),
    )
    assert code == 0, err
    assert "kind=warrant" in out
    response = service.client.get("/v1/transparency")  # no API key
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["enrolled_now"] == 1
    assert report["enrollments"] == 2
    assert report["erasures"] == 1
    assert report["identification_requests"] == 3
    assert (report["legal_requests"], report["legal_requests_with_disclosure"]) == (1, 0)
    assert ref not in response.text
    assert service.client.get("/v1/transparency").json() == report  # cached briefly: no scan per public request
    earlier = service.client.get("/v1/transparency", params={"since": "2020-01-01", "until": "2020-12-31"}).json()
    assert earlier["enrollments"] == 0 and earlier["legal_requests"] == 0
    backwards = service.client.get("/v1/transparency", params={"since": "2026-02-01", "until": "2026-01-01"})
    assert backwards.status_code == 422 and backwards.json()["error"]["code"] == "invalid_period"
    assert service.store.verify_audit().ok


def test_legal_request_verb_refuses_bad_input(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "data")
    base = ["legal-request", "record", "--received", "2026-01-05", "--disclosed", "none", "--reference", "c-1"]
    code, _, err = _cli(*base, "--kind", "fishing", "--data-dir", data_dir)
    assert code != 0 and "invalid_legal_request" in err
    bad_date = ["legal-request", "record", "--kind", "warrant", "--received", "yesterday", "--disclosed", "none"]
    code, _, err = _cli(*bad_date, "--reference", "c-1", "--data-dir", data_dir)
    assert code != 0 and "YYYY-MM-DD" in err


def test_retention_run_verb_erases_people_past_the_limit(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", retention=RetentionSettings(max_idle_days=30, max_total_days=60))
    long_ago = datetime.now(UTC) - timedelta(days=31)
    with Store.open(settings=settings, clock=lambda: long_ago) as store:
        shop = store.create_tenant(name="shop", scopes=frozenset({"enroll"}))
        consent = build_consent(notice_version="2026-01", purposes=["payment"], accepted_at=long_ago, now=long_ago)
        idle = store.enroll_subject(tenant_id=shop.tenant_id, consent=consent, template=b"T" * 64)
    with Store.open(settings=settings) as store:  # enrolled today: kept
        consent = build_consent(
            notice_version="2026-01", purposes=["payment"], accepted_at=datetime.now(UTC), now=datetime.now(UTC)
        )
        kept = store.enroll_subject(tenant_id=shop.tenant_id, consent=consent, template=b"U" * 64)
    config = tmp_path / "palmid.toml"
    config.write_text("[retention]\nmax_idle_days = 30\nmax_total_days = 60\n")
    code, out, err = _cli("retention", "run", "--data-dir", str(settings.data_dir), "--config", str(config))
    assert code == 0, err
    assert f"subject_ref={idle.subject_ref}" in out and kept.subject_ref not in out
    assert "1 erased" in err
    with Store.open(settings=settings) as store:
        assert [subject for subject, _ in store.iter_templates()] == [kept.subject_id]
        assert store.verify_audit().ok
    code, out, err = _cli("retention", "run", "--data-dir", str(settings.data_dir), "--config", str(config))
    assert code == 0 and out == "" and "0 erased" in err


def _service_app(settings: Settings, store: Store, *, sweeps: bool) -> tuple[object, DoubleRecognizer]:
    recognizer = DoubleRecognizer()
    app = create_app(
        settings=settings,
        store=store,
        recognizer=recognizer,
        index=ExactIndex(matcher=recognizer.index_matcher()),
        workers=1,
        retention_sweeps=sweeps,
    )
    return app, recognizer


@pytest.mark.parametrize("sweeps", [False, True])
def test_the_service_sweeps_on_a_schedule_only_when_asked(tmp_path: Path, sweeps: bool) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        retention=RetentionSettings(max_idle_days=30, max_total_days=60, sweep_interval_s=0.05),
    )
    clock = [datetime.now(UTC)]
    with Store.open(settings=settings, clock=lambda: clock[0]) as store:
        shop = store.create_tenant(name="shop", scopes=frozenset({"enroll", "identify"}))
        app, recognizer = _service_app(settings, store, sweeps=sweeps)
        with make_client(app) as client:
            headers = {"Authorization": f"Bearer {shop.api_key}"}
            files = [("images", (f"p{n}.jpg", photo("olga", n), "image/jpeg")) for n in (1, 2, 3)]
            consent = consent_json(accepted_at=clock[0])
            enrolled = client.post("/v1/enrollments", files=files, data={"consent": consent}, headers=headers)
            assert enrolled.status_code == 201, enrolled.text
            clock[0] += timedelta(days=31)  # now past the idle limit
            deadline = time.monotonic() + 5
            while sweeps and store.count_subjects() and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.2)
            assert store.count_subjects() == (0 if sweeps else 1)
            matched = client.post(
                "/v1/identifications", files={"image": ("p.jpg", photo("olga"), "image/jpeg")}, headers=headers
            ).json()["matched"]
            assert matched is (not sweeps)
        close_app(app)  # type: ignore[arg-type]
    assert recognizer.closed is False  # injected: the app does not close what it did not make
    if sweeps:
        with Store.open(settings=settings) as store:
            assert store.verify_audit().ok
