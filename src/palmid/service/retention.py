"""The retention sweep inside the service: erase everyone past the retention schedule, drop them from the index.

BIPA 15(a): destroy biometric data when the purpose ends or after the retention term, whichever comes first. The
store decides who is due (:meth:`~palmid.storage.repository.Store.sweep_retention`, with signed receipts and audit
events); the service takes those palms out of its in-memory index at once.
"""

from __future__ import annotations

import asyncio
import logging

from palmid.privacy.retention import sweep_retention
from palmid.service.deps import ServiceContext

log = logging.getLogger(__name__)


def sweep_once(context: ServiceContext) -> int:
    """Erase everyone who is due (in batches) and remove them from the index; returns how many were erased."""

    def drop(subject_id: str) -> None:
        context.matcher.remove(subject_id)
        context.metrics.count_decision(operation="erase", outcome="retention")

    return sweep_retention(context.store, on_erased=drop).erased


async def run_retention_sweeps(context: ServiceContext) -> None:
    """Sweep now and then every ``settings.retention.sweep_interval_s`` until cancelled (service shutdown)."""
    while True:
        try:
            erased = await context.run_storage(lambda: sweep_once(context))
            if erased:
                log.info("retention sweep erased subjects", extra={"erased": erased})
        except Exception as exc:  # keep sweeping later; the log gets the type only (no data)
            log.error("retention sweep failed: %s", type(exc).__name__)
        await asyncio.sleep(context.settings.retention.sweep_interval_s)
