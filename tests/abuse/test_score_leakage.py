"""Score leakage: a hill-climbing attacker learns nothing from the responses, timing does not reveal the score,
and the rate limits stop the attempt.

White box on our side only: the test scores each probe locally with the same pipeline (the service never does
that for a client) to show that the perturbations DO move the similarity, while the service's answers stay
byte-identical. Timing: near-threshold impostors (highest local similarity) and far impostors (lowest), sent
interleaved, are compared with a two-sided permutation test on the median response time.
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import numpy as np
import pytest
from harness import Merchant, Palm, ServerProcess, coep_palms, env_int, percentile, running_server, write_report
from PIL import Image, ImageEnhance

from palmid.errors import InputError
from palmid.pipeline import Pipeline
from palmid.templates.compare import compare_templates, merge_templates
from palmid.templates.template import Template

pytestmark = [pytest.mark.abuse, pytest.mark.realdata, pytest.mark.timeout(env_int("PALMID_ABUSE_TIMEOUT_S", 900))]

RATE_PER_MINUTE = 30
MAX_FAILED_VERIFICATIONS = 5
ALPHA = 0.001
"""Significance level for "timing reveals the score" (a real early-exit leak gives p far below this)."""
VOLATILE_HEADERS = {"date"}


@dataclass
class Setup:
    server: ServerProcess
    client: httpx.Client
    keys: list[str]
    target: Palm
    target_ref: str
    reference: Template
    impostors: list[tuple[float, bytes]]
    """(local similarity to the target, photo), highest first; none of them matches."""
    pipeline: Pipeline


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    n_candidates = env_int("PALMID_ABUSE_LEAK_CANDIDATES", 24)
    palms = coep_palms(n_candidates + 1)
    target, others = palms[0], palms[1:]
    pipeline = Pipeline()
    reference = merge_templates([pipeline.template_from_bytes(photo) for photo in target.photos[:3]])
    scored = []
    for palm in others:
        try:
            scored.append((compare_templates(pipeline.template_from_bytes(palm.photos[0]), reference), palm.photos[0]))
        except InputError:
            continue
    scored.sort(key=lambda pair: -pair[0])
    settings_env = {
        "PALMID_IDENTIFY_RATE_PER_MINUTE": str(RATE_PER_MINUTE),
        "PALMID_MAX_FAILED_VERIFICATIONS": str(MAX_FAILED_VERIFICATIONS),
    }
    with (
        running_server(tmp_path_factory.mktemp("leak"), settings_env=settings_env) as server,
        httpx.Client(base_url=server.base_url, timeout=120) as client,
    ):
        keys = [server.create_tenant(f"merchant-{i}") for i in range(6)]
        enrolled = Merchant(client, keys[0]).enroll(target.photos[:3])
        assert enrolled.status_code == 201, enrolled.text
        try:
            yield Setup(server, client, keys, target, enrolled.json()["subject_ref"], reference, scored, pipeline)
        finally:
            pipeline.close()


def _perturb(photo: bytes, rng: np.random.Generator) -> bytes:
    """A small random change: brightness and contrast +-8 %, Gaussian noise sigma 2-6 grey levels, JPEG re-encode."""
    image = Image.open(io.BytesIO(photo)).convert("RGB")
    image = ImageEnhance.Brightness(image).enhance(float(rng.uniform(0.92, 1.08)))
    image = ImageEnhance.Contrast(image).enhance(float(rng.uniform(0.92, 1.08)))
    pixels = np.asarray(image, dtype=np.float32)
    pixels += rng.normal(0.0, float(rng.uniform(2.0, 6.0)), size=pixels.shape).astype(np.float32)
    buffer = io.BytesIO()
    Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def _stable_headers(response: httpx.Response) -> list[tuple[str, str]]:
    return sorted(
        (name.lower(), value) for name, value in response.headers.items() if name.lower() not in VOLATILE_HEADERS
    )


def test_hill_climbing_learns_nothing_and_is_rate_limited(setup: Setup) -> None:
    """A hill-climber perturbs the nearest impostor to raise the decision: every answer is the same bytes, while
    the (hidden) similarity moves; after the configured number of identifications the key gets 429."""
    rng = np.random.default_rng(11)
    merchant = Merchant(setup.client, setup.keys[1])
    best = setup.impostors[0][1]
    candidates = [_perturb(best, rng) for _ in range(RATE_PER_MINUTE)]  # made up front: the burst is fast
    bodies: set[bytes] = set()
    headers: set[tuple[tuple[str, str], ...]] = set()
    statuses: list[int] = []
    started = time.monotonic()
    while True:
        candidate = candidates[len(statuses) % len(candidates)]
        response = merchant.identify(candidate)
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert response.json()["error"]["code"] == "rate_limited", response.text
            assert int(response.headers["retry-after"]) >= 1
            break
        assert response.status_code == 200, response.text
        bodies.add(response.content)
        headers.add(tuple(_stable_headers(response)))
        # The climber would keep a candidate only if the answer improved: it never does, so it learns nothing.
        refill = int((time.monotonic() - started) * RATE_PER_MINUTE / 60) + 1
        if len(statuses) > RATE_PER_MINUTE + refill:
            break
    elapsed_s = time.monotonic() - started
    allowed = statuses.index(429) if 429 in statuses else None
    refill = int(elapsed_s * RATE_PER_MINUTE / 60) + 1
    hidden_scores = []
    for candidate in candidates:
        with contextlib.suppress(InputError):
            hidden_scores.append(compare_templates(setup.pipeline.template_from_bytes(candidate), setup.reference))
    write_report(
        "leak_hill_climb",
        {
            "requests": len(statuses),
            "distinct_bodies": len(bodies),
            "hidden_similarity_min": round(min(hidden_scores), 4),
            "hidden_similarity_max": round(max(hidden_scores), 4),
            "first_429_at_request": None if allowed is None else allowed + 1,
            "configured_rate_per_minute": RATE_PER_MINUTE,
            "elapsed_s": round(elapsed_s, 1),
        },
    )
    assert bodies == {b'{"matched":false,"subject_ref":null}'}, bodies
    assert len(headers) == 1, headers
    assert max(hidden_scores) - min(hidden_scores) > 0.002, "perturbations did not move the similarity at all"
    assert allowed is not None, f"no 429 after {len(statuses)} identifications"
    assert RATE_PER_MINUTE <= allowed <= RATE_PER_MINUTE + refill, (allowed, refill)


def test_verification_brute_force_is_locked_out(setup: Setup) -> None:
    """Verification against the target's ref with perturbed impostors: same bytes each time, locked after 5."""
    rng = np.random.default_rng(12)
    merchant = Merchant(setup.client, setup.keys[0])
    bodies = []
    for _ in range(MAX_FAILED_VERIFICATIONS):
        response = merchant.verify(_perturb(setup.impostors[0][1], rng), setup.target_ref)
        assert response.status_code == 200, response.text
        bodies.append(response.content)
    assert set(bodies) == {b'{"matched":false}'}
    locked = merchant.verify(setup.target.photos[3], setup.target_ref)  # even the right palm: back off first
    assert (locked.status_code, locked.json()["error"]["code"]) == (429, "locked_out")
    assert int(locked.headers["retry-after"]) >= 1


def permutation_p_value(a: list[float], b: list[float], *, rounds: int = 20_000, seed: int = 5) -> float:
    """Two-sided permutation test on the difference of medians."""
    rng = np.random.default_rng(seed)
    pooled = np.asarray(a + b)
    observed = abs(float(np.median(a)) - float(np.median(b)))
    hits = 0
    for _ in range(rounds):
        rng.shuffle(pooled)
        if abs(float(np.median(pooled[: len(a)])) - float(np.median(pooled[len(a) :]))) >= observed:
            hits += 1
    return (hits + 1) / (rounds + 1)


def test_response_time_does_not_reveal_the_score(setup: Setup) -> None:
    group = env_int("PALMID_ABUSE_LEAK_GROUP", 8)
    repeats = env_int("PALMID_ABUSE_LEAK_REPEATS", 3)
    near = setup.impostors[:group]
    far = setup.impostors[-group:]
    assert near[-1][0] > far[0][0], "impostor groups overlap"
    timings: dict[str, list[float]] = {"near": [], "far": []}
    bodies: set[bytes] = set()
    keys = iter(setup.keys[2:] * 100)
    key_budget = 0
    merchant = Merchant(setup.client, next(keys))
    for _ in range(repeats):
        for (_, near_photo), (_, far_photo) in zip(near, far, strict=True):
            for label, photo in (("near", near_photo), ("far", far_photo)):
                if key_budget >= RATE_PER_MINUTE - 2:  # stay under the per-key limit: timing, not throttling
                    merchant, key_budget = Merchant(setup.client, next(keys)), 0
                started = time.perf_counter()
                response = merchant.identify(photo)
                timings[label].append(time.perf_counter() - started)
                key_budget += 1
                assert response.status_code == 200, response.text
                bodies.add(response.content)
    p_value = permutation_p_value(timings["near"], timings["far"])
    figures = {
        "near_similarity": [round(score, 4) for score, _ in near],
        "far_similarity": [round(score, 4) for score, _ in far],
        "near_ms": {q: round(1000 * percentile(timings["near"], v), 1) for q, v in (("p50", 0.5), ("p95", 0.95))},
        "far_ms": {q: round(1000 * percentile(timings["far"], v), 1) for q, v in (("p50", 0.5), ("p95", 0.95))},
        "requests": len(timings["near"]) + len(timings["far"]),
        "median_difference_ms": round(1000 * (np.median(timings["near"]) - np.median(timings["far"])), 1),
        "permutation_p_value": round(p_value, 4),
        "alpha": ALPHA,
    }
    write_report("leak_timing", figures)
    assert bodies == {b'{"matched":false,"subject_ref":null}'}, bodies
    assert p_value > ALPHA, f"response time separates near from far impostors: {figures}"


def test_metrics_carry_no_scores(setup: Setup) -> None:
    """After all the attempts above, /metrics exposes counts and latencies, never a score-like series."""
    text = setup.client.get("/metrics").text
    names = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}
    leaky = [name for name in names if any(word in name for word in ("score", "similar", "distance", "threshold"))]
    assert names, text[:500]
    assert not leaky, leaky
