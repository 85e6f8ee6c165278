"""Crash consistency: kill -9 the server at random points during enrollments and erasures, restart, check.

Against SQLite and PostgreSQL. Each round: restart the server, settle what the previous kill left undecided, check
every invariant directly in the database (SQLAlchemy over the store's own ORM models and the keystore), then run
enrollments and erasures from two client threads and SIGKILL the server after a random delay. After the last kill:
the same checks, plus ``palmid audit verify``.

Invariants: no subject without its consent record; no template (and no pairwise ref) without its subject; no
subject without its template, ref and data key (no half-enrolled or half-erased subject); every acknowledged
enrollment is present and identifiable with its ref; every acknowledged erasure is complete (rows gone, never
identified again); one subject per palm at most; the audit chain verifies.

Bound: PALMID_ABUSE_KILLS kills per backend (10 in CI; ``scripts/abuse.py --suite crash --kills 100``).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from harness import (
    Merchant,
    Palm,
    ServerProcess,
    coep_palms,
    database_for,
    env_float,
    env_int,
    percentile,
    write_report,
)
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from palmid.privacy.refs import hash_ref
from palmid.storage.keystore import KEYSTORE_FILENAME, DataKeyRow
from palmid.storage.models import ConsentRow, SubjectRefRow, SubjectRow, TemplateRow

pytestmark = [pytest.mark.abuse, pytest.mark.realdata, pytest.mark.timeout(env_int("PALMID_ABUSE_TIMEOUT_S", 1800))]

WORKERS = 2
TRANSPORT_ERRORS = (httpx.TransportError,)


@dataclass
class PalmState:
    """What the client knows about one palm, from acknowledged responses only."""

    palm: Palm
    ref: str | None = None
    """Acknowledged enrolled (201) and not acknowledged erased since."""
    erased_refs: list[str] = field(default_factory=list)
    """Refs whose erasure was acknowledged (200 + receipt)."""
    in_flight: str | None = None
    """'enroll' or 'erase' when the server died before answering: decided at the next start."""
    changed: bool = False


@dataclass
class Tally:
    kills: int = 0
    enroll_acked: int = 0
    erase_acked: int = 0
    undecided_enrolls: int = 0
    undecided_erases: int = 0
    undecided_enrolls_committed: int = 0
    undecided_erases_committed: int = 0
    orphan_keys_seen: int = 0
    identify_checks: int = 0
    ack_latency_s: dict[str, list[float]] = field(default_factory=lambda: {"enroll": [], "erase": []})
    unexpected: list[str] = field(default_factory=list)


def _settle(state: PalmState, merchant: Merchant, tally: Tally) -> None:
    """After a restart, find out whether an unanswered request took effect (identify with an enrolled photo)."""
    if state.in_flight is None:
        return
    body = merchant.identify(state.palm.photos[0]).json()
    if state.in_flight == "enroll":
        tally.undecided_enrolls += 1
        if body["matched"]:
            tally.undecided_enrolls_committed += 1
            state.ref = body["subject_ref"]
    else:
        tally.undecided_erases += 1
        if body["matched"]:
            if body["subject_ref"] != state.ref:
                tally.unexpected.append(f"{state.palm.palm_id}: ref changed across an unanswered erasure")
            state.ref = body["subject_ref"]
        else:
            tally.undecided_erases_committed += 1
            if state.ref is not None:
                state.erased_refs.append(state.ref)
            state.ref = None
    state.in_flight = None
    state.changed = True


def check_invariants(
    server: ServerProcess, states: list[PalmState], merchant: Merchant, tally: Tally, *, everyone: bool
) -> None:
    """Every invariant, directly in the database and keystore, and through the API for palms that changed."""
    engine = create_engine(server.database_url)
    keystore = create_engine(f"sqlite:///{server.data_dir / KEYSTORE_FILENAME}")
    try:
        with Session(engine) as session, Session(keystore) as keys:
            subject_ids = set(session.scalars(select(SubjectRow.id)))
            consent_ids = set(session.scalars(select(ConsentRow.id)))
            subject_consents = {row[0]: row[1] for row in session.execute(select(SubjectRow.id, SubjectRow.consent_id))}
            template_subjects = list(session.scalars(select(TemplateRow.subject_id)))
            ref_rows = {
                ref_hash: subject
                for ref_hash, subject in session.execute(select(SubjectRefRow.ref_sha256, SubjectRefRow.subject_id))
            }
            key_subjects = set(keys.scalars(select(DataKeyRow.subject_id)))
            n_templates = session.scalar(select(func.count()).select_from(TemplateRow))
    finally:
        engine.dispose()
        keystore.dispose()

    problems: list[str] = []
    without_consent = [s for s, c in subject_consents.items() if c not in consent_ids]
    if without_consent:
        problems.append(f"{len(without_consent)} subject(s) without their consent record")
    orphan_templates = [s for s in template_subjects if s not in subject_ids]
    if orphan_templates:
        problems.append(f"{len(orphan_templates)} template(s) without a subject")
    orphan_refs = [s for s in ref_rows.values() if s not in subject_ids]
    if orphan_refs:
        problems.append(f"{len(orphan_refs)} pairwise ref(s) without a subject")
    no_template = subject_ids - set(template_subjects)
    no_ref = subject_ids - set(ref_rows.values())
    no_key = subject_ids - key_subjects
    if no_template or no_ref or no_key:
        problems.append(
            f"half-enrolled/half-erased subjects: {len(no_template)} without template, {len(no_ref)} without ref, "
            f"{len(no_key)} without data key"
        )
    tally.orphan_keys_seen = max(tally.orphan_keys_seen, len(key_subjects - subject_ids))

    enrolled = [s for s in states if s.ref is not None]
    if len(subject_ids) != len(enrolled):
        problems.append(f"{len(subject_ids)} subjects in the database, {len(enrolled)} palms enrolled (ghost/lost)")
    for state in states:
        if state.ref is not None and hash_ref(state.ref) not in ref_rows:
            problems.append(f"{state.palm.palm_id}: acknowledged enrollment missing from the database")
        for erased in state.erased_refs:
            if hash_ref(erased) in ref_rows:
                problems.append(f"{state.palm.palm_id}: acknowledged erasure incomplete (ref row still there)")
        if everyone or state.changed:
            body = merchant.identify(state.palm.photos[0]).json()
            tally.identify_checks += 1
            if state.ref is not None and body != {"matched": True, "subject_ref": state.ref}:
                problems.append(f"{state.palm.palm_id}: acknowledged enrollment not identified ({body})")
            if state.ref is None and body["matched"]:
                problems.append(f"{state.palm.palm_id}: erased/never-enrolled palm identified")
            state.changed = False
    assert n_templates == len(template_subjects)
    assert not problems, "after restart:\n" + "\n".join(problems)


def _worker(base_url: str, api_key: str, states: list[PalmState], tally: Tally, stop: threading.Event) -> None:
    rng = random.Random()
    with httpx.Client(base_url=base_url, timeout=60) as client:
        merchant = Merchant(client, api_key)
        while not stop.is_set():
            candidates = [s for s in states if s.in_flight is None]
            if not candidates:
                return
            state = rng.choice(candidates)
            operation = "enroll" if state.ref is None else "erase"
            state.in_flight = operation
            started = time.monotonic()
            try:
                if operation == "enroll":
                    # photo 0 is always enrolled: the identifiability checks use it (no false non-match)
                    response = merchant.enroll([state.palm.photos[0], *rng.sample(state.palm.photos[1:], 2)])
                else:
                    response = merchant.erase(str(state.ref))
            except TRANSPORT_ERRORS:
                return  # killed mid-request: in_flight stays set, decided after the restart
            state.in_flight = None
            state.changed = True
            tally.ack_latency_s[operation].append(time.monotonic() - started)
            if operation == "enroll" and response.status_code == 201:
                state.ref = response.json()["subject_ref"]
                tally.enroll_acked += 1
            elif operation == "erase" and response.status_code == 200:
                state.erased_refs.append(str(state.ref))
                state.ref = None
                tally.erase_acked += 1
            else:
                tally.unexpected.append(
                    f"{operation} {state.palm.palm_id}: {response.status_code} {response.text[:200]}"
                )
                state.in_flight = operation  # unknown outcome: settle it after the next restart like a crash
                return


def _kill_delay_s(rng: random.Random, tally: Tally, *, max_delay_s: float) -> float:
    """Half the kills at a uniformly random time; the other half aimed near the end of a typical enrollment or
    erasure (where the commit happens), from the latencies acknowledged so far."""
    latencies = sorted(tally.ack_latency_s["enroll"])
    if rng.random() < 0.5 or not latencies:
        return rng.uniform(0.05, max_delay_s)
    typical = latencies[len(latencies) // 2]
    return rng.uniform(0.6, 1.1) * typical


@pytest.fixture(scope="module")
def palms() -> list[Palm]:
    return coep_palms(env_int("PALMID_ABUSE_CRASH_PALMS", 6), photos_per_palm=4)


@pytest.fixture(params=["sqlite", "postgres"])
def crash_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    data_dir = tmp_path / "data"
    with database_for(str(request.param), data_dir) as url:
        server = ServerProcess(
            data_dir=data_dir, database_url=url, settings_env={"PALMID_IDENTIFY_RATE_PER_MINUTE": "1000000"}
        )
        try:
            yield server
        finally:
            server.kill9()


def test_kill_9_during_enrollments_and_erasures(crash_server: ServerProcess, palms: list[Palm]) -> None:
    server = crash_server
    kills = env_int("PALMID_ABUSE_KILLS", 10)
    max_delay_s = env_float("PALMID_ABUSE_KILL_MAX_DELAY_S", 4.0)
    api_key = server.create_tenant("kiosk")
    states = [PalmState(palm) for palm in palms]
    tally = Tally()
    rng = random.Random(20261125)
    started = time.monotonic()
    restart_s: list[float] = []
    for _round in range(kills):
        before = time.monotonic()
        server.start()
        restart_s.append(time.monotonic() - before)
        with httpx.Client(base_url=server.base_url, timeout=120) as client:
            merchant = Merchant(client, api_key)
            for state in states:
                _settle(state, merchant, tally)
            check_invariants(server, states, merchant, tally, everyone=False)
            merchant.identify(palms[0].photos[3])  # warm the recognizer so the kill lands in real work
        stop = threading.Event()
        shards = [states[i::WORKERS] for i in range(WORKERS)]
        threads = [
            threading.Thread(target=_worker, args=(server.base_url, api_key, shard, tally, stop), daemon=True)
            for shard in shards
        ]
        for thread in threads:
            thread.start()
        time.sleep(_kill_delay_s(rng, tally, max_delay_s=max_delay_s))
        server.kill9()
        tally.kills += 1
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
        assert not any(thread.is_alive() for thread in threads)

    server.start()
    with httpx.Client(base_url=server.base_url, timeout=120) as client:
        merchant = Merchant(client, api_key)
        for state in states:
            _settle(state, merchant, tally)
        check_invariants(server, states, merchant, tally, everyone=True)
    server.stop()
    audit = server.audit_verify()
    backend = "sqlite" if server.database_url.startswith("sqlite") else "postgres"
    write_report(
        f"crash_{backend}",
        {
            "backend": backend,
            "kills_survived": tally.kills,
            "acknowledged_enrollments": tally.enroll_acked,
            "acknowledged_erasures": tally.erase_acked,
            "unanswered_enrollments": tally.undecided_enrolls,
            "unanswered_enrollments_committed": tally.undecided_enrolls_committed,
            "unanswered_erasures": tally.undecided_erases,
            "unanswered_erasures_committed": tally.undecided_erases_committed,
            "orphan_data_keys_max": tally.orphan_keys_seen,
            "identify_checks": tally.identify_checks,
            "unexpected_responses": tally.unexpected,
            "elapsed_s": round(time.monotonic() - started, 1),
            "restart_s_mean": round(sum(restart_s) / len(restart_s), 2),
            "acknowledged_latency_p50_s": {
                op: round(percentile(values, 0.5), 3) for op, values in tally.ack_latency_s.items() if values
            },
            "audit": audit.stdout.strip() or audit.stderr.strip(),
        },
    )
    assert audit.returncode == 0, audit.stderr
    assert not tally.unexpected, tally.unexpected
    assert tally.enroll_acked > 0 and tally.erase_acked > 0, "the workload never got an acknowledgement"
