"""FastAPI application factory. Routes and dependencies are wired here; nothing runs at import.

``create_app`` opens the store (unless one is given), rebuilds the in-memory index from the encrypted store (codes
only: the index reads the full templates of its best candidates from the store per search), and returns the app.
The store it opened and the recognition thread pool are closed when the app shuts down (or by :func:`close_app` for
apps that were never started).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime

from fastapi import FastAPI

from palmid import __version__
from palmid.config import Settings
from palmid.detect.palm import RoiMethod
from palmid.errors import ConfigError
from palmid.index.base import Index
from palmid.index.fast import FastIndex
from palmid.index.profiles import SEARCH_PROFILES
from palmid.kiosk import mount_kiosk
from palmid.service.deps import ServiceContext
from palmid.service.docs import mount_docs
from palmid.service.engine import PipelineRecognizer, Recognizer
from palmid.service.errors import install_error_handlers
from palmid.service.headers import PrivateResponseHeaders
from palmid.service.matcher import DecisionPolicy, Matcher
from palmid.service.metrics import Metrics, MetricsMiddleware
from palmid.service.ratelimit import RateLimiter
from palmid.service.retention import run_retention_sweeps
from palmid.service.routes import (
    enrollments,
    identifications,
    operations,
    policy,
    purposes,
    subjects,
    transparency,
    verifications,
)
from palmid.service.store_index import StoreTemplates, TemplateStore, rebuild_from_store
from palmid.storage.repository import Store
from palmid.templates.template import Template

log = logging.getLogger(__name__)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(
    *,
    settings: Settings,
    store: Store | None = None,
    recognizer: Recognizer | None = None,
    index: Index[Template] | None = None,
    detector: RoiMethod | None = None,
    now: Callable[[], datetime] = _utc_now,
    monotonic: Callable[[], float] | None = None,
    workers: int | None = None,
    retention_sweeps: bool = True,
) -> FastAPI:
    """Build the service for ``settings``.

    ``detector`` overrides ``settings.detector`` (how the palm is found in a photo).
    ``store``, ``recognizer`` and ``index`` default to the real ones (the store is opened from ``settings``);
    tests inject doubles. ``now`` (UTC wall clock) and ``monotonic`` (rate-limit clock) are injectable too.
    """
    owned_store = store is None
    active_store = Store.open(settings=settings) if store is None else store
    try:
        engine = recognizer or PipelineRecognizer(settings=settings, detector=detector)
        matcher = Matcher(
            recognizer=engine,
            policy=DecisionPolicy.from_settings(settings),
            index=index
            if index is not None
            else default_index(engine, store=active_store, profile=settings.index_profile),
        )
        rebuild_from_store(matcher, active_store)  # logs progress and the rate
    except BaseException:
        if owned_store:
            active_store.close()
        raise

    metrics = Metrics()
    metrics.register_gauge(
        "palmid_enrolled_palms", help_text="Palms in the in-memory index.", read=lambda: matcher.gallery_size
    )
    context = ServiceContext(
        settings=settings,
        store=active_store,
        recognizer=engine,
        matcher=matcher,
        identify_limiter=RateLimiter(
            rate_per_minute=settings.identify_rate_per_minute, clock=monotonic or time.monotonic
        ),
        metrics=metrics,
        executor=ThreadPoolExecutor(
            max_workers=workers or max(1, min(4, os.cpu_count() or 1)), thread_name_prefix="palmid-recognition"
        ),
        storage_executor=ThreadPoolExecutor(max_workers=2, thread_name_prefix="palmid-storage"),
        now=now,
        enrollment_lock=threading.Lock(),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        sweeper = (  # retention_sweeps=False: tests that did not ask for the scheduled sweep
            asyncio.create_task(run_retention_sweeps(context), name="palmid-retention-sweep")
            if retention_sweeps
            else None
        )
        try:
            yield
        finally:
            if sweeper is not None:
                sweeper.cancel()
                with suppress(asyncio.CancelledError):
                    await sweeper
            close_app(app)

    app = FastAPI(
        title="palmid",
        version=__version__,
        description=(
            "Private-by-construction palm identification: enroll with consent, identify, verify, erase. "
            "Decisions only: no score ever leaves the service."
        ),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    mount_docs(app)
    app.state.palmid = context
    app.state.palmid_owns_store = owned_store
    app.state.palmid_owns_recognizer = recognizer is None
    install_error_handlers(app)
    app.add_middleware(PrivateResponseHeaders)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    for module in (enrollments, identifications, verifications, subjects, purposes, policy, transparency, operations):
        app.include_router(module.router)
    mount_kiosk(app, settings=settings)
    return app


def close_app(app: FastAPI) -> None:
    """Stop the thread pool; close the store and the recognizer if the app made them. Safe to call twice."""
    context: ServiceContext = app.state.palmid
    context.executor.shutdown(wait=True, cancel_futures=True)
    context.storage_executor.shutdown(wait=True, cancel_futures=True)
    if getattr(app.state, "palmid_owns_recognizer", False):
        app.state.palmid_owns_recognizer = False
        context.recognizer.close()
    if getattr(app.state, "palmid_owns_store", False):
        app.state.palmid_owns_store = False
        context.store.close()


def default_index(recognizer: Recognizer, *, store: TemplateStore, profile: str = "accurate") -> Index[Template]:
    """The identification index for the engine's templates: shift-searched Hamming scan of compact codes kept in
    memory, an aligned-code re-ranking, then full comparison of the best candidates, whose templates are read and
    decrypted from ``store`` per search (:class:`~palmid.service.store_index.StoreTemplates`: no template is held
    in memory). ``profile`` names one of :data:`~palmid.index.profiles.SEARCH_PROFILES` (``Settings.index_profile``).
    """
    chosen = SEARCH_PROFILES.get(profile)
    if chosen is None:
        raise ConfigError(f"unknown index profile {profile!r}", code="config_invalid")
    return FastIndex(profile=chosen, matcher=recognizer.index_matcher(), templates=StoreTemplates(store=store))
