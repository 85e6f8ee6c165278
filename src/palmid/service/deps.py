"""Request dependencies: the service context, Bearer authentication and per-route scopes."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from palmid.config import Settings
from palmid.errors import AuthError, ForbiddenError
from palmid.service.engine import Recognizer
from palmid.service.matcher import Matcher
from palmid.service.metrics import Metrics
from palmid.service.ratelimit import RateLimiter
from palmid.storage.records import Tenant
from palmid.storage.repository import Store

T = TypeVar("T")

#: API key scopes that routes require.
SCOPE_ENROLL = "enroll"
SCOPE_IDENTIFY = "identify"
SCOPE_VERIFY = "verify"
SCOPE_ERASE = "erase"


@dataclass(frozen=True, kw_only=True)
class ServiceContext:
    """Everything a request needs, built once by :func:`palmid.service.app.create_app`."""

    settings: Settings
    store: Store
    recognizer: Recognizer
    matcher: Matcher
    identify_limiter: RateLimiter
    metrics: Metrics
    executor: ThreadPoolExecutor
    """Pool for CPU-heavy recognition (keeps the event loop free)."""
    storage_executor: ThreadPoolExecutor
    """Separate pool for storage-only calls (erasure, export, consent): they never queue behind photo work."""
    now: Callable[[], datetime]
    """Wall clock (UTC, timezone-aware); injectable for tests."""
    enrollment_lock: threading.Lock
    """Serialises duplicate check + store, so one palm cannot be enrolled twice by concurrent requests."""

    async def run_blocking(self, function: Callable[[], T]) -> T:
        """Run ``function`` in the service's thread pool and await its result."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, function)

    async def run_storage(self, function: Callable[[], T]) -> T:
        """Run a storage-only ``function`` (no photo processing) in the storage pool and await its result."""
        return await asyncio.get_running_loop().run_in_executor(self.storage_executor, function)


def get_context(request: Request) -> ServiceContext:
    context = getattr(request.app.state, "palmid", None)
    if not isinstance(context, ServiceContext):
        raise RuntimeError("service context missing: build the app with create_app()")
    return context


Context = Annotated[ServiceContext, Depends(get_context)]

_bearer = HTTPBearer(auto_error=False, description="The merchant's API key: `Authorization: Bearer KEY`.")


def authenticate(
    context: Context, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Tenant:
    """Bearer key -> :class:`Tenant`. Missing, malformed, unknown or revoked keys -> 401."""
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials.strip():
        raise AuthError("missing or malformed API key: send 'Authorization: Bearer KEY'", code="unauthenticated")
    return context.store.authenticate(api_key=credentials.credentials.strip())


def require_scope(scope: str) -> Callable[[Tenant], Tenant]:
    """A dependency that authenticates the caller and demands ``scope`` (403 ``forbidden_scope`` otherwise)."""

    def dependency(tenant: Annotated[Tenant, Depends(authenticate)]) -> Tenant:
        if scope not in tenant.scopes:
            raise ForbiddenError(f"this API key does not have the {scope!r} scope", code="forbidden_scope")
        return tenant

    dependency.__name__ = f"require_{scope}_scope"
    return dependency
