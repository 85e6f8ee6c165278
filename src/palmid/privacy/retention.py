"""The retention schedule (BIPA 15(a)): what is published, and the sweep that enforces it.

* :func:`retention_policy` is the public statement behind ``GET /v1/policy/retention``: the limits actually
  enforced (from :class:`palmid.config.RetentionSettings`) and the version and SHA-256 of the notice text that
  states them to the person at the kiosk.
* :func:`sweep_retention` erases everyone past ``min(consent recorded + retention term, last interaction +
  max idle)``, in batches, with the same crypto-shredding, signed receipts and audit events as a manual erasure
  (it is :meth:`palmid.storage.repository.Store.sweep_retention`, which calls ``erase_subject``). The service runs
  it on a schedule and drops the erased palms from its index through ``on_erased``; ``palmid retention run`` runs it
  once. The clock is the store's (injected in tests: ``Store.open(settings=..., clock=...)``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from palmid.config import BIPA_MAX_DAYS, Settings
from palmid.errors import ValidationFailed
from palmid.privacy.receipts import ErasureReceipt
from palmid.storage.repository import Store

#: People erased per store call; a sweep repeats until a batch comes back short.
SWEEP_BATCH = 500


@dataclass(frozen=True, kw_only=True)
class RetentionPolicy:
    """The published retention schedule."""

    max_idle_days: int
    """Erased this many days after the last use of the palm (last identification or verification)."""
    max_total_days: int
    """Erased at the latest this many days after enrollment (the consent's retention term)."""
    legal_max_days: int
    """The ceiling no configuration can exceed (3 years, BIPA 15(a))."""
    sweep_interval_s: float
    """How often the service looks for people past the limit."""
    notice_version: str
    """Version of the notice text shown before enrollment, which states these limits."""
    notice_sha256: str
    """SHA-256 (hex) of that exact notice text."""
    summary: str


def retention_policy(*, settings: Settings) -> RetentionPolicy:
    """The retention schedule enforced by a service running with ``settings``."""
    from palmid.kiosk import render_notice  # the notice text is rendered from the same settings

    notice = render_notice(settings=settings)
    retention = settings.retention
    return RetentionPolicy(
        max_idle_days=retention.max_idle_days,
        max_total_days=retention.max_total_days,
        legal_max_days=BIPA_MAX_DAYS,
        sweep_interval_s=retention.sweep_interval_s,
        notice_version=notice.version,
        notice_sha256=notice.sha256,
        summary=(
            f"A palm template is destroyed {retention.max_idle_days} days after its last use and at the latest "
            f"{retention.max_total_days} days after enrollment, whichever comes first (never more than "
            f"{BIPA_MAX_DAYS} days). Erasure destroys the person's encryption key and yields a signed receipt."
        ),
    )


@dataclass(frozen=True, kw_only=True)
class RetentionSweep:
    """What one sweep did: the receipts of everyone it erased (oldest enrollment first)."""

    receipts: tuple[ErasureReceipt, ...]

    @property
    def erased(self) -> int:
        return len(self.receipts)


def sweep_retention(
    store: Store,
    *,
    on_erased: Callable[[str], None] | None = None,
    batch_size: int = SWEEP_BATCH,
    max_batches: int | None = None,
) -> RetentionSweep:
    """Erase everyone past the retention schedule; returns the signed receipts.

    ``on_erased(subject_id)`` runs for each erased person right after their erasure (the service removes the palm
    from its in-memory index). ``max_batches`` bounds one sweep (the rest waits for the next one).
    """
    if batch_size < 1:
        raise ValidationFailed("batch_size must be at least 1")
    if max_batches is not None and max_batches < 1:
        raise ValidationFailed("max_batches must be at least 1")
    receipts: list[ErasureReceipt] = []
    batches = 0
    while max_batches is None or batches < max_batches:
        erased = store.sweep_retention(limit=batch_size)
        batches += 1
        for item in erased:
            if on_erased is not None:
                on_erased(item.subject_id)
            receipts.append(item.receipt)
        if len(erased) < batch_size:
            break
    return RetentionSweep(receipts=tuple(receipts))
