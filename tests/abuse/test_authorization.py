"""Authorization: object-level (merchant A never reaches merchant B's refs: 404, indistinguishable from an unknown
ref), function-level (a key without the route's scope: 403), and revocation (a revoked key: 401 at once).

Everything goes through a live ``palmid serve``; keys are made and revoked with the ``palmid tenants`` verbs.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
from harness import ALL_SCOPES, Merchant, Palm, ServerProcess, coep_palms, env_int, running_server, write_report

pytestmark = [pytest.mark.abuse, pytest.mark.realdata, pytest.mark.timeout(env_int("PALMID_ABUSE_TIMEOUT_S", 600))]

Call = Callable[[Merchant, str], httpx.Response]


@dataclass
class World:
    server: ServerProcess
    client: httpx.Client
    keys: dict[str, str]
    palm: Palm
    ref_a: str
    ref_b: str


def _export(merchant: Merchant, ref: str) -> httpx.Response:
    return merchant.client.get(f"/v1/subjects/{ref}/export", headers=merchant.headers)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    palm = coep_palms(1)[0]
    settings_env = {"PALMID_IDENTIFY_RATE_PER_MINUTE": "100000"}
    with (
        running_server(tmp_path_factory.mktemp("authz"), settings_env=settings_env) as server,
        httpx.Client(base_url=server.base_url, timeout=120) as client,
    ):
        keys = {name: server.create_tenant(name) for name in ("merchant-a", "merchant-b")}
        for scope in (*ALL_SCOPES, "admin"):
            keys[f"only-{scope}"] = server.create_tenant(f"only-{scope}", (scope,))
        a, b = Merchant(client, keys["merchant-a"]), Merchant(client, keys["merchant-b"])
        enrolled = a.enroll(palm.photos[:3])
        assert enrolled.status_code == 201, enrolled.text
        ref_a = enrolled.json()["subject_ref"]
        seen_by_b = b.identify(palm.photos[0]).json()
        assert seen_by_b["matched"] is True, seen_by_b
        yield World(server, client, keys, palm, ref_a, seen_by_b["subject_ref"])


def _random_ref() -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    return "sr_" + "".join(secrets.choice(alphabet) for _ in range(26))


def test_merchant_never_reaches_another_merchants_refs(world: World) -> None:
    a, b = Merchant(world.client, world.keys["merchant-a"]), Merchant(world.client, world.keys["merchant-b"])
    photo = world.palm.photos[0]
    assert world.ref_a != world.ref_b
    unknown = _random_ref()
    tried = 0
    for caller, foreign_ref, own_ref in ((b, world.ref_a, world.ref_b), (a, world.ref_b, world.ref_a)):
        calls: list[Call] = [
            lambda m, ref: m.verify(photo, ref),
            _export,
            lambda m, ref: m.erase(ref),
        ]
        for call in calls:
            foreign, never_issued = call(caller, foreign_ref), call(caller, unknown)
            tried += 2
            assert foreign.status_code == 404, foreign.text
            assert foreign.json() == {"error": {"code": "not_found", "message": foreign.json()["error"]["message"]}}
            # No oracle: another merchant's ref is answered exactly like a ref that was never issued.
            assert foreign.content == never_issued.content
            assert foreign_ref not in foreign.text and own_ref not in foreign.text
        for malformed in ("x", "sr_" + "A" * 26, "../" + foreign_ref, foreign_ref.upper(), foreign_ref + "a"):
            response = caller.verify(photo, malformed)
            tried += 1
            assert response.status_code == 404, (malformed, response.text)
    # Nothing B tried touched A's subject: both merchants still see the person with their own refs.
    assert a.verify(photo, world.ref_a).json() == {"matched": True}
    assert b.verify(photo, world.ref_b).json() == {"matched": True}
    assert _export(a, world.ref_a).status_code == 200
    write_report("authorization_objects", {"cross_merchant_requests": tried})


ROUTES: dict[str, Callable[[World, Merchant], httpx.Response]] = {
    "enroll": lambda w, m: m.enroll(w.palm.photos[:3]),
    "identify": lambda w, m: m.identify(w.palm.photos[0]),
    "verify": lambda w, m: m.verify(w.palm.photos[0], w.ref_a),
    "erase": lambda w, m: m.erase(w.ref_a),
}


def test_keys_without_the_scope_are_refused(world: World) -> None:
    refused = 0
    for key_name in [name for name in world.keys if name.startswith("only-")]:
        merchant = Merchant(world.client, world.keys[key_name])
        for scope, call in ROUTES.items():
            if key_name == f"only-{scope}":
                continue
            response = call(world, merchant)
            refused += 1
            assert (response.status_code, response.json()["error"]["code"]) == (403, "forbidden_scope"), (
                key_name,
                scope,
                response.text,
            )
        export = _export(merchant, world.ref_a)
        if key_name != "only-erase":
            assert export.status_code == 403, (key_name, export.text)
    # The subject survived every refused erase.
    owner = Merchant(world.client, world.keys["merchant-a"])
    assert owner.verify(world.palm.photos[0], world.ref_a).json() == {"matched": True}
    write_report("authorization_scopes", {"refused_requests": refused})


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Basic dXNlcjpwYXNz", "Bearer not-a-key", "Bearer " + "x" * 5000, "bearer\tx"],
)
def test_missing_or_bad_keys_are_unauthenticated(world: World, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    files = {"image": ("probe.jpg", world.palm.photos[0], "image/jpeg")}
    response = world.client.post("/v1/identifications", files=files, headers=headers)
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "unauthenticated"


def test_revoked_key_stops_working_at_once(world: World) -> None:
    server = world.server
    key = server.create_tenant("soon-revoked")
    merchant = Merchant(world.client, key)
    photo = world.palm.photos[0]
    assert merchant.identify(photo).status_code == 200
    refs = merchant.identify(photo).json()
    assert refs["matched"] is True
    server.palmid("tenants", "revoke", server.key_id_of("soon-revoked"))
    # The very next request, on an already open connection, is refused, on every route.
    for scope, call in ROUTES.items():
        response = call(world, merchant)
        assert (response.status_code, response.json()["error"]["code"]) == (401, "key_revoked"), (scope, response.text)
        assert response.headers.get("www-authenticate", "").lower().startswith("bearer")
    assert _export(merchant, refs["subject_ref"]).status_code == 401
    # ... and the person it could see is untouched.
    assert Merchant(world.client, world.keys["merchant-a"]).verify(photo, world.ref_a).json() == {"matched": True}


def test_every_ref_route_treats_foreign_refs_as_unknown(world: World) -> None:
    """Every operation of the OpenAPI schema with a ``{subject_ref}`` (today's and future ones): merchant B with A's
    ref gets no 2xx, and exactly the answer it gets for a ref that was never issued."""
    schema = world.client.get("/openapi.json").json()
    b = Merchant(world.client, world.keys["merchant-b"])
    unknown = _random_ref()
    checked = []
    for path, operations in schema["paths"].items():
        if "{subject_ref}" not in path:
            continue
        for method in operations:
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue

            def send(ref: str, path: str = path, method: str = method) -> httpx.Response:
                url = path.replace("{subject_ref}", ref)
                # A body the links route accepts (other JSON routes may refuse it: then both answers are 422).
                body: dict[str, object] | None = {"membership_id": "abuse-probe"} if method != "get" else None
                if method == "delete":
                    body = None
                return world.client.request(method.upper(), url, headers=b.headers, json=body)

            foreign, never_issued = send(world.ref_a), send(unknown)
            checked.append(f"{method.upper()} {path} -> {foreign.status_code}")
            assert not 200 <= foreign.status_code < 300, (path, method, foreign.text)
            assert (foreign.status_code, foreign.content) == (never_issued.status_code, never_issued.content), (
                path,
                method,
            )
    assert checked
    owner = Merchant(world.client, world.keys["merchant-a"])
    assert owner.verify(world.palm.photos[0], world.ref_a).json() == {"matched": True}
    write_report("authorization_ref_routes", {"routes": checked})
