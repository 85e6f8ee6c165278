"""Concurrency: 50 clients enrolling, identifying and erasing at once against one live server (loopback only).

No 5xx and no transport error; the same palm is never enrolled twice (at the end the database holds exactly one
subject per identified palm, and no two palms share a subject); the audit chain verifies. Latency percentiles
(p50/p95, overall and per operation) are printed and, with PALMID_ABUSE_REPORT_DIR, saved as JSON.

Bounds: PALMID_ABUSE_CLIENTS (50) clients for PALMID_ABUSE_CONCURRENCY_S (20) seconds.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from harness import Merchant, Palm, coep_palms, env_float, env_int, percentile, running_server, write_report
from sqlalchemy import create_engine, func, select

from palmid.storage.models import SubjectRow

pytestmark = [pytest.mark.abuse, pytest.mark.realdata, pytest.mark.timeout(env_int("PALMID_ABUSE_TIMEOUT_S", 900))]

PALMS = 10
PRE_ENROLLED = 4
MERCHANTS = ("north-shop", "south-shop")


@dataclass
class Results:
    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies_s: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    outcomes: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    def record(self, operation: str, elapsed_s: float, response: httpx.Response) -> None:
        code = ""
        if response.status_code >= 400 and response.headers.get("content-type", "").startswith("application/json"):
            code = " " + str(response.json().get("error", {}).get("code"))
        with self.lock:
            self.latencies_s[operation].append(elapsed_s)
            self.outcomes[f"{operation} {response.status_code}{code}"] += 1
            if response.status_code >= 500:
                self.errors.append(f"{operation}: {response.status_code} {response.text[:200]}")


def _client_loop(base_url: str, api_key: str, palms: list[Palm], results: Results, deadline: float, seed: int) -> None:
    rng = random.Random(seed)
    with httpx.Client(base_url=base_url, timeout=300) as client:
        merchant = Merchant(client, api_key)
        while time.monotonic() < deadline:
            palm = rng.choice(palms)
            roll = rng.random()
            started = time.perf_counter()
            try:
                if roll < 0.3:
                    operation, response = "enroll", merchant.enroll(rng.sample(palm.photos, 3))
                else:
                    operation, response = "identify", merchant.identify(rng.choice(palm.photos))
                    results.record(operation, time.perf_counter() - started, response)
                    body = response.json() if response.status_code == 200 else {}
                    if not (body.get("matched") and roll > 0.85):
                        continue
                    started = time.perf_counter()
                    operation, response = "erase", merchant.erase(body["subject_ref"])
            except httpx.TransportError as exc:
                with results.lock:
                    results.errors.append(f"transport error: {type(exc).__name__}")
                return
            results.record(operation, time.perf_counter() - started, response)


def test_fifty_clients_enroll_identify_erase(tmp_path: Path) -> None:
    clients = env_int("PALMID_ABUSE_CLIENTS", 50)
    duration_s = env_float("PALMID_ABUSE_CONCURRENCY_S", 20.0)
    palms = coep_palms(PALMS)
    settings_env = {"PALMID_IDENTIFY_RATE_PER_MINUTE": "1000000"}
    with running_server(tmp_path, settings_env=settings_env) as server:
        keys = [server.create_tenant(name) for name in MERCHANTS]
        with httpx.Client(base_url=server.base_url, timeout=300) as warm:
            for palm in palms[:PRE_ENROLLED]:  # some palms are known from the start, so erasures happen at once
                assert Merchant(warm, keys[0]).enroll(palm.photos[:3]).status_code == 201
        results = Results()
        deadline = time.monotonic() + duration_s
        threads = [
            threading.Thread(
                target=_client_loop,
                args=(server.base_url, keys[i % len(keys)], palms, results, deadline, i),
                name=f"abuse-client-{i}",
            )
            for i in range(clients)
        ]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=duration_s + 600)
        elapsed_s = time.monotonic() - started
        assert not any(thread.is_alive() for thread in threads), "clients still running"
        assert server.alive(), "server died under load"

        # One subject per palm: identify every photo of every palm through one merchant, compare with the database.
        with httpx.Client(base_url=server.base_url, timeout=120) as client:
            merchant = Merchant(client, keys[0])
            refs_by_palm = {
                palm.palm_id: {
                    body["subject_ref"]
                    for body in (merchant.identify(photo).json() for photo in palm.photos)
                    if body["matched"]
                }
                for palm in palms
            }
        engine = create_engine(server.database_url)
        try:
            with engine.connect() as connection:
                n_subjects = int(connection.execute(select(func.count()).select_from(SubjectRow)).scalar_one())
        finally:
            engine.dispose()
        matched_refs = [ref for refs in refs_by_palm.values() for ref in refs]
        audit = server.audit_verify()

    all_latencies = [value for values in results.latencies_s.values() for value in values]
    figures = {
        "clients": clients,
        "duration_s": round(elapsed_s, 1),
        "requests": len(all_latencies),
        "throughput_rps": round(len(all_latencies) / elapsed_s, 2),
        "outcomes": dict(sorted(results.outcomes.items())),
        "latency_ms": {
            operation: {
                "n": len(values),
                "p50": round(1000 * percentile(values, 0.5)),
                "p95": round(1000 * percentile(values, 0.95)),
                "max": round(1000 * max(values)),
            }
            for operation, values in sorted({**results.latencies_s, "all": all_latencies}.items())
            if values
        },
        "subjects_at_end": n_subjects,
        "palms_identified_at_end": len(matched_refs),
        "audit": audit.stdout.strip() or audit.stderr.strip(),
    }
    write_report("concurrency", figures)
    assert not results.errors, results.errors[:10]
    assert results.outcomes, "no request completed"
    assert any(key.startswith("erase 200") for key in results.outcomes), figures["outcomes"]
    assert any(key.startswith("identify 200") for key in results.outcomes), figures["outcomes"]
    assert all(len(refs) <= 1 for refs in refs_by_palm.values()), f"a palm with two subjects: {refs_by_palm}"
    assert len(set(matched_refs)) == len(matched_refs), "two palms identified as the same subject"
    assert n_subjects == len(matched_refs), f"{n_subjects} subjects for {len(matched_refs)} enrolled palms"
    assert audit.returncode == 0, audit.stderr
