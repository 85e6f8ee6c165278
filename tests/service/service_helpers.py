"""Helpers for the service tests."""

from __future__ import annotations

import tempfile
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.testclient import TestClient


def make_client(app: FastAPI, **kwargs: object) -> TestClient:
    """Starlette's TestClient (backed by ``httpx2``, which the project pins for it)."""
    from starlette.testclient import TestClient

    return TestClient(app, **kwargs)  # type: ignore[arg-type]


def spy_temp_files(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every attempt to create a temporary file (tempfile API and Starlette's own upload spooling)."""
    import starlette.formparsers

    attempts: list[str] = []

    def spy(name: str) -> object:
        original = getattr(tempfile, name)

        def recording(*args: object, **kwargs: object) -> object:
            attempts.append(name)
            return original(*args, **kwargs)

        return recording

    for name in ("SpooledTemporaryFile", "TemporaryFile", "NamedTemporaryFile", "mkstemp", "mkdtemp"):
        monkeypatch.setattr(tempfile, name, spy(name))
    monkeypatch.setattr(starlette.formparsers, "SpooledTemporaryFile", spy("SpooledTemporaryFile"))
    return attempts
