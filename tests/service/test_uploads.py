"""The in-memory multipart parser: limits, malformed bodies, and no temp files ever."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from fastapi import FastAPI, Request
from service_helpers import make_client, spy_temp_files

from palmid.errors import ImageError, PalmidError, ValidationFailed
from palmid.service.errors import install_error_handlers
from palmid.service.uploads import UploadLimits, read_multipart

if TYPE_CHECKING:
    from starlette.testclient import TestClient

LIMITS = UploadLimits(max_file_bytes=64 * 1024, max_files=3)


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, object]:
        form = await read_multipart(request, limits=LIMITS)
        return {
            "files": {name: [len(part) for part in parts] for name, parts in form.files.items()},
            "fields": {name: list(values) for name, values in form.fields.items()},
        }

    return app


@pytest.fixture
def client() -> TestClient:
    return make_client(_app())


def test_parts_are_parsed_into_memory(client: TestClient) -> None:
    files = [("images", ("a.jpg", b"x" * 1000, "image/jpeg")), ("images", ("b.jpg", b"y" * 2000, "image/jpeg"))]
    response = client.post("/echo", files=files, data={"consent": '{"a": 1}'})
    assert response.status_code == 200
    assert response.json() == {"files": {"images": [1000, 2000]}, "fields": {"consent": ['{"a": 1}']}}


@pytest.fixture
def temp_file_attempts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    return spy_temp_files(monkeypatch)


BIG_PHOTO = bytes(range(256)) * (2 * 1024 * 4)  # 2 MiB: above Starlette's 1 MiB spool threshold


def test_large_uploads_never_touch_a_temp_file(temp_file_attempts: list[str]) -> None:
    app = FastAPI()

    @app.post("/big")
    async def big_upload(request: Request) -> dict[str, int]:
        form = await read_multipart(request, limits=UploadLimits(max_file_bytes=3 * 1024 * 1024, max_files=1))
        return {"size": len(form.files_named("image")[0])}

    response = make_client(app).post("/big", files={"image": ("p.jpg", BIG_PHOTO, "image/jpeg")})
    assert response.json() == {"size": len(BIG_PHOTO)}
    assert temp_file_attempts == []


def test_the_temp_file_spy_catches_starlettes_form_parser(temp_file_attempts: list[str]) -> None:
    """Control: the spy does see the spooling that the ordinary ``request.form()`` path does."""
    app = FastAPI()

    @app.post("/form")
    async def ordinary_form(request: Request) -> dict[str, int]:
        async with request.form(max_part_size=3 * 1024 * 1024) as form:
            return {"parts": len(form)}

    make_client(app).post("/form", files={"image": ("p.jpg", BIG_PHOTO, "image/jpeg")})
    assert "SpooledTemporaryFile" in temp_file_attempts


def test_oversized_image_is_413(client: TestClient) -> None:
    response = client.post("/echo", files={"images": ("a.jpg", b"x" * (64 * 1024 + 1), "image/jpeg")})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "image_too_large"


def test_declared_oversized_body_is_refused_before_reading(client: TestClient) -> None:
    body = b"--b\r\n"
    headers = {"content-type": "multipart/form-data; boundary=b", "content-length": str(10**9)}
    response = client.post("/echo", content=body, headers=headers)
    assert response.status_code == 413


def test_too_many_files(client: TestClient) -> None:
    files = [("images", (f"{i}.jpg", b"x", "image/jpeg")) for i in range(4)]
    response = client.post("/echo", files=files)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "too_many_images"


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b"{}"),
        ("multipart/form-data", b"--x\r\n"),
        ("multipart/form-data; boundary=zz", b"garbage without boundary"),
    ],
)
def test_malformed_bodies_are_invalid_requests(client: TestClient, content_type: str, body: bytes) -> None:
    response = client.post("/echo", content=body, headers={"content-type": content_type})
    assert response.status_code == 422
    assert response.json()["error"]["code"] in {"invalid_request"}


def test_oversized_text_field(client: TestClient) -> None:
    response = client.post("/echo", data={"consent": "x" * (17 * 1024)}, files={"images": ("a", b"1", "image/jpeg")})
    assert response.status_code == 422


def test_error_classes() -> None:
    assert issubclass(ImageError, PalmidError)
    assert issubclass(ValidationFailed, PalmidError)
