"""FastAPI application factory. Routes and dependencies are wired here; nothing runs at import."""

from __future__ import annotations

from fastapi import FastAPI

from palmid import __version__
from palmid.config import Settings


def create_app(*, settings: Settings) -> FastAPI:
    """Build the service for ``settings``."""
    app = FastAPI(title="palmid", version=__version__, description="Private-by-construction palm identification")
    app.state.settings = settings

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
