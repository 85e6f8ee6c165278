"""Hostile images: every malformed, oversized, bomb, wrong-type, handless or two-handed upload gets a clear 4xx
reason code, the server stays up, and its memory stays bounded (VmRSS / VmHWM of the server process).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest
from harness import Merchant, ServerProcess, coep_palms, env_int, running_server, write_report
from hostile_images import Hostile, hostile_inputs, printed_looking, reencoded
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = [pytest.mark.abuse, pytest.mark.realdata, pytest.mark.timeout(env_int("PALMID_ABUSE_TIMEOUT_S", 600))]

MAX_IMAGE_BYTES = 15 * 1024 * 1024
MIB = 1024
#: Peak resident memory allowed for the server process after every hostile input (MiB): the 40-megapixel limit
#: allows ~120 MB of RGB per image in flight; four recognition threads; the hand model; Python.
MAX_HWM_MIB = 2048
#: Resident memory may not keep growing: after the run it stays within this of the warmed-up figure (MiB).
MAX_RSS_GROWTH_MIB = 400


@dataclass
class Live:
    server: ServerProcess
    api_key: str
    photos: tuple[bytes, ...]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    palm = coep_palms(1)[0]
    settings_env = {"PALMID_IDENTIFY_RATE_PER_MINUTE": "1000000", "PALMID_MAX_IMAGE_BYTES": str(MAX_IMAGE_BYTES)}
    with running_server(tmp_path_factory.mktemp("hostile"), settings_env=settings_env) as server:
        yield Live(server, server.create_tenant("shop"), palm.photos)


def _code(response: httpx.Response) -> str | None:
    try:
        error = response.json().get("error")
    except ValueError:
        return None
    return error.get("code") if isinstance(error, dict) else None


def _judge(item: Hostile, response: httpx.Response, clean: httpx.Response) -> str | None:
    """Why ``response`` is wrong for ``item`` (None when it is right)."""
    status, code = response.status_code, _code(response)
    if status >= 500:
        return f"{status} server error"
    if item.benign and status == 200:
        return None if response.json() == clean.json() else f"decision differs from the clean photo: {response.text}"
    if not 400 <= status < 500:
        return f"expected a 4xx refusal, got {status} {response.text[:120]}"
    if not code:
        return f"{status} without a reason code: {response.text[:120]}"
    if item.expected_codes is not None and code not in item.expected_codes:
        return f"{status} {code}, expected one of {sorted(item.expected_codes)}"
    return None


def test_hostile_uploads_get_reason_codes_and_memory_stays_bounded(live: Live) -> None:
    server = live.server
    items = [item for item in hostile_inputs(live.photos[0], max_image_bytes=MAX_IMAGE_BYTES)]
    items = [item for item in items if item.name != "printed-looking"]  # its own test below
    rss_start, _ = server.memory_kib()
    with httpx.Client(base_url=server.base_url, timeout=120) as client:
        merchant = Merchant(client, live.api_key)
        clean = merchant.identify(live.photos[0])
        assert clean.status_code == 200, clean.text
        rss_warm, _ = server.memory_kib()
        outcomes: dict[str, str] = {}
        problems: list[str] = []
        for item in items:
            response = merchant.identify(item.data, content_type=item.content_type, filename="upload.bin")
            outcomes[item.name] = f"{response.status_code} {_code(response) or 'ok'}"
            problem = _judge(item, response, clean)
            if problem:
                problems.append(f"{item.name}: {problem}")
            assert server.alive(), f"server died after {item.name}"
        rss_serial, hwm_serial = server.memory_kib()

        # The same inputs four at a time (the recognition pool size): still bounded, still up.
        with ThreadPoolExecutor(max_workers=4) as pool:
            statuses = list(
                pool.map(lambda item: merchant.identify(item.data, content_type=item.content_type).status_code, items)
            )
        assert all(status < 500 for status in statuses), statuses
        assert server.alive()
        rss_end, hwm_end = server.memory_kib()

    figures = {
        "inputs": len(items),
        "requests": 2 * len(items) + 1,
        "outcomes": outcomes,
        "rss_mib": {
            "start": rss_start // MIB,
            "warm": rss_warm // MIB,
            "after_serial": rss_serial // MIB,
            "end": rss_end // MIB,
        },
        "hwm_mib": {"after_serial": hwm_serial // MIB, "end": hwm_end // MIB},
    }
    write_report("hostile_images", figures)
    assert not problems, "\n".join(problems)
    assert hwm_end // MIB <= MAX_HWM_MIB, figures
    assert (rss_end - rss_warm) // MIB <= MAX_RSS_GROWTH_MIB, figures


def test_hostile_enrollment_photos_are_named_by_index(live: Live) -> None:
    """In an enrollment, a hostile photo among good ones is refused with its own index and reason code."""
    good = live.photos
    items = [
        item
        for item in hostile_inputs(good[0], max_image_bytes=MAX_IMAGE_BYTES)
        if not item.benign and item.name not in {"printed-looking", "over-max-bytes"}
    ]
    problems: list[str] = []
    with httpx.Client(base_url=live.server.base_url, timeout=120) as client:
        merchant = Merchant(client, live.api_key)
        for item in items:
            response = merchant.enroll([good[1], item.data, good[2]])
            body = response.json().get("error", {})
            issues = body.get("images") or []
            if not 400 <= response.status_code < 500:
                problems.append(f"{item.name}: {response.status_code} {response.text[:120]}")
            elif [issue["index"] for issue in issues] != [1]:
                problems.append(f"{item.name}: expected only photo 1 to be refused, got {issues or body}")
            elif item.expected_codes is not None and issues[0]["code"] not in item.expected_codes:
                problems.append(f"{item.name}: code {issues[0]['code']}, expected {sorted(item.expected_codes)}")
        oversized = merchant.enroll([good[1], good[2] + b"\x00" * MAX_IMAGE_BYTES, good[3]])
        assert (oversized.status_code, _code(oversized)) == (413, "image_too_large")
    assert live.server.alive()
    write_report("hostile_enrollments", {"inputs": len(items) + 1})
    assert not problems, "\n".join(problems)


COLOUR_PRINT_GAP = (
    "known gap (no presentation-attack detection yet): a washed-out, halftoned COLOUR printout of an enrolled "
    "palm is identified as that person; the finder's no_skin_colour check only catches grey prints. Needs a "
    "halftone/flatness check or real PAD; remove this marker when it is fixed (strict xfail)."
)


@pytest.mark.parametrize(
    "colour",
    [False, pytest.param(True, marks=pytest.mark.xfail(strict=True, reason=COLOUR_PRINT_GAP))],
    ids=["grey-print", "colour-print"],
)
def test_printed_looking_photo_is_refused(live: Live, colour: bool) -> None:
    """A flat, halftoned "printout" of an ENROLLED person's palm photo is not a live hand: 4xx with a reason
    code -- and above all it must never be identified as that person (presentation attack)."""
    person = coep_palms(3)[2 if colour else 1]
    with httpx.Client(base_url=live.server.base_url, timeout=120) as client:
        merchant = Merchant(client, live.api_key)
        enrolled = merchant.enroll(person.photos[:3])
        assert enrolled.status_code == 201, enrolled.text
        responses = [merchant.identify(printed_looking(photo, colour=colour)) for photo in person.photos]
        erased = merchant.erase(enrolled.json()["subject_ref"])
        assert erased.status_code == 200, erased.text
    outcomes = [f"{r.status_code} {_code(r) or r.text}" for r in responses]
    write_report(f"hostile_printout_{'colour' if colour else 'grey'}", {"enrolled_person_printouts": outcomes})
    assert all(400 <= r.status_code < 500 and _code(r) for r in responses), f"printouts accepted: {outcomes}"


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b'{"image": "aGVsbG8="}'),
        ("image/jpeg", b"\xff\xd8\xff\xe0" + b"\x00" * 64),
        ("multipart/form-data", b"--x\r\n\r\n--x--\r\n"),
        ("multipart/form-data; boundary=abc", b"not multipart at all"),
        ("multipart/form-data; boundary=abc", b'--abc\r\nContent-Disposition: form-data; name="image"\r\n\r\nxx'),
        ("application/x-www-form-urlencoded", b"image=%FF%D8%FF"),
        ("text/plain; charset=utf-32", "héllo".encode("utf-32")),
    ],
)
def test_wrong_request_content_types_are_refused(live: Live, content_type: str, body: bytes) -> None:
    """The request itself is not a multipart upload with an ``image`` file part: a 4xx with a reason code."""
    response = httpx.post(
        f"{live.server.base_url}/v1/identifications",
        content=body,
        headers={"Authorization": f"Bearer {live.api_key}", "Content-Type": content_type},
        timeout=60,
    )
    assert 400 <= response.status_code < 500, response.text
    assert _code(response), response.text
    assert live.server.alive()


@st.composite
def _mutations(draw: st.DrawFn, bases: list[bytes]) -> bytes:
    """A real photo (JPEG/PNG/BMP/WebP) with random damage: truncation, overwritten or inserted bytes."""
    data = bytearray(draw(st.sampled_from(bases)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["truncate", "overwrite", "insert", "header"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "truncate":
            del data[at:]
        elif kind == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=64))
            data[at : at + len(chunk)] = chunk
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=256))
        else:
            data[: min(len(data), 64)] = draw(st.binary(min_size=64, max_size=64))[: min(len(data), 64)]
    return bytes(data)


def test_randomly_damaged_photos_never_break_the_server(live: Live) -> None:
    """Hypothesis-driven damage to real photos of each format: 200 or a 4xx with a reason code, never a 5xx."""
    bases = [live.photos[0], *reencoded(live.photos[0])]
    statuses: Counter[str] = Counter()
    with httpx.Client(base_url=live.server.base_url, timeout=120) as client:
        merchant = Merchant(client, live.api_key)

        @given(data=_mutations(bases))
        @settings(
            max_examples=env_int("PALMID_ABUSE_FUZZ_EXAMPLES", 25) * 2,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(data: bytes) -> None:
            response = merchant.identify(data, content_type="application/octet-stream")
            statuses[f"{response.status_code} {_code(response) or 'ok'}"] += 1
            assert response.status_code < 500, response.text
            if response.status_code != 200:
                assert 400 <= response.status_code < 500 and _code(response), response.text

        fuzz()
    assert live.server.alive()
    write_report("hostile_mutations", {"requests": sum(statuses.values()), "outcomes": dict(statuses)})
