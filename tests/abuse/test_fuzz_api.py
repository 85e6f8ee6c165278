"""API fuzzing: schemathesis against the service's own OpenAPI schema, every operation, with a valid key.

Positive (schema-valid) and negative (schema-violating) requests go to a live ``palmid serve``; every response must
be a non-5xx and conform to the schema (documented status code, content type, body schema, headers). The check
``positive_data_acceptance`` is deliberately not used: a schema cannot say "a photo of a palm" or "consent to the
current notice", so schema-valid random bytes are correctly refused with a documented 4xx.

Bound: PALMID_ABUSE_FUZZ_EXAMPLES examples per operation and mode (default 25 in CI).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from harness import ServerProcess, consent_json, env_int, running_server, write_report
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.core.transport import Response
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = [pytest.mark.abuse, pytest.mark.timeout(env_int("PALMID_ABUSE_TIMEOUT_S", 600))]

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    tmp_path: Path = tmp_path_factory.mktemp("fuzz")
    # Rate limits off the table for the fuzzer (they are exercised by the leakage suite).
    with running_server(tmp_path, settings_env={"PALMID_IDENTIFY_RATE_PER_MINUTE": "1000000"}) as server:
        yield server, server.create_tenant("fuzz-shop")


def test_every_operation_survives_fuzzing_and_conforms(fuzz_server: tuple[ServerProcess, str]) -> None:
    server, api_key = fuzz_server
    examples = env_int("PALMID_ABUSE_FUZZ_EXAMPLES", 25)
    raw = httpx.get(f"{server.base_url}/openapi.json", timeout=30).json()
    schema = schemathesis.openapi.from_dict(raw)
    headers = {"Authorization": f"Bearer {api_key}"}
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    operations: list[str] = []

    for result in schema.get_all_operations():
        if not isinstance(result, Ok):
            failures.append(f"the schema has an invalid operation: {result.err()}")
            continue
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        operations.append(label)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            run = _fuzzer(operation.as_strategy(generation_mode=mode), examples=examples)
            for case, response, error in run(base_url=server.base_url, headers=headers):
                statuses[response.status_code] += 1
                if error is not None:
                    failures.append(f"{label} [{mode.value}] -> {response.status_code}: {error}")
                del case

    assert server.alive(), "the server died under fuzzing"
    write_report(
        "fuzz",
        {
            "operations": operations,
            "requests": sum(statuses.values()),
            "statuses": dict(sorted(statuses.items())),
            "failures": len(failures),
        },
    )
    assert {"POST /v1/enrollments", "POST /v1/identifications", "POST /v1/verifications"} <= set(operations)
    assert not [s for s in statuses if s >= 500], f"5xx under fuzzing: {statuses}"
    assert not failures, "schema conformance failures:\n" + "\n".join(sorted(set(failures))[:30])


Outcome = tuple[schemathesis.Case[Any], Response, str | None]


def _fuzzer(strategy: st.SearchStrategy[schemathesis.Case[Any]], *, examples: int) -> Callable[..., list[Outcome]]:
    """A bounded, deterministic hypothesis run of ``strategy``: each case is sent and validated (failures kept)."""

    def run(*, base_url: str, headers: dict[str, str]) -> list[Outcome]:
        outcomes: list[Outcome] = []

        @given(case=strategy)
        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: schemathesis.Case[Any]) -> None:
            case_headers = {**dict(case.headers or {}), **headers}
            response = case.call(base_url=base_url, headers=case_headers, timeout=60)
            error = None
            try:
                case.validate_response(response, checks=CHECKS, headers=case_headers)
            except (AssertionError, BaseExceptionGroup) as exc:  # record and keep fuzzing: report all at the end
                error = _summary(exc)
            outcomes.append((case, response, error))

        with suppress(Unsatisfiable):  # nothing to negate (e.g. GET /healthz has no parameters)
            fuzz()
        return outcomes

    return run


def _summary(exc: BaseException) -> str:
    titles = []
    for failure in getattr(exc, "exceptions", [exc]):
        title = getattr(failure, "title", None) or type(failure).__name__
        message = str(getattr(failure, "message", "") or "").replace("\n", " ")
        titles.append(f"{title} ({message[:160]})" if message else title)
    return "; ".join(titles)


_JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
_JSON = st.recursive(
    _JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


def _timestamps() -> list[str]:
    now = datetime.now(UTC)
    moments = [now, now - timedelta(minutes=5), now + timedelta(hours=2), now - timedelta(days=3)]
    texts = [moment.isoformat().replace("+00:00", "Z") for moment in moments]
    return [*texts, now.replace(tzinfo=None).isoformat(), "1970-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "x", ""]


def _consent_strategy() -> st.SearchStrategy[str]:
    """Consent field bodies: near-valid JSON objects with hostile values, arbitrary JSON, arbitrary text."""
    from palmid.kiosk import NOTICE_PURPOSES, NOTICE_VERSION

    near_valid = st.fixed_dictionaries(
        {
            "notice_version": st.sampled_from([NOTICE_VERSION, "2026-01", "", "x" * 65]) | st.text(max_size=70),
            "purposes": st.lists(
                st.sampled_from([*NOTICE_PURPOSES, "", "tracking"]) | st.text(max_size=20), max_size=20
            )
            | _JSON,
            "accepted_at": st.sampled_from(_timestamps()) | _JSON,
        },
        optional={"extra": _JSON},
    ).map(lambda body: json.dumps(body))
    return near_valid | _JSON.map(lambda value: json.dumps(value)) | st.text(max_size=200)


def test_fuzzed_consent_is_refused_cleanly(fuzz_server: tuple[ServerProcess, str]) -> None:
    """The consent field is parsed before any photo: whatever it holds, a 4xx with a reason code, never a 5xx."""
    server, api_key = fuzz_server
    junk_photos = [("images", (f"p{i}.jpg", b"\xff\xd8\xff\xe0junk", "image/jpeg")) for i in range(3)]
    statuses: Counter[str] = Counter()
    with httpx.Client(base_url=server.base_url, timeout=60) as client:

        @given(consent=_consent_strategy())
        @example(consent=consent_json())  # valid: then the junk photos are refused, each by index
        @settings(
            max_examples=env_int("PALMID_ABUSE_FUZZ_EXAMPLES", 25) * 2,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(consent: str) -> None:
            response = client.post(
                "/v1/enrollments",
                files=junk_photos,
                data={"consent": consent},
                headers={"Authorization": f"Bearer {api_key}"},
            )
            body = response.json()
            statuses[f"{response.status_code} {body.get('error', {}).get('code')}"] += 1
            assert 400 <= response.status_code < 500, response.text
            assert body["error"]["code"]

        fuzz()
    assert server.alive()
    write_report("fuzz_consent", {"requests": sum(statuses.values()), "outcomes": dict(statuses)})
