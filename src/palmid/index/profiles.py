"""Search profiles of the fast index: how much each stage does (accuracy against latency)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DEFAULT_ALIGNED_PREFILTER_K",
    "DEFAULT_PREFILTER_K",
    "DEFAULT_RERANK_K",
    "SEARCH_PROFILES",
    "SearchProfile",
]

DEFAULT_PREFILTER_K = 16_384
"""Rows the exhaustive scan keeps (1.6% of a million)."""
DEFAULT_ALIGNED_PREFILTER_K = 512
"""Rows the half aligned code keeps for the whole (rotation-searched) aligned code."""
DEFAULT_RERANK_K = 8
"""Candidates compared in full (1M-palm Tongji runs: the mate, when enrolled, was always among the best 8)."""


@dataclass(frozen=True, kw_only=True)
class SearchProfile:
    """How much of each stage a search runs: accuracy against latency (see :data:`SEARCH_PROFILES`)."""

    scan_words: int | None = None
    """64-bit words of the scan code compared with every palm (``None``: all of the matcher's scan code)."""
    dense_scan: bool = False
    """Search every alignment the matcher offers in the scan (``scan_probe_codes(dense=True)``), not the sparser set."""
    prefilter_k: int = DEFAULT_PREFILTER_K
    aligned_prefilter_k: int = DEFAULT_ALIGNED_PREFILTER_K
    rerank_k: int = DEFAULT_RERANK_K


SEARCH_PROFILES: dict[str, SearchProfile] = {
    "accurate": SearchProfile(),
    "fast": SearchProfile(scan_words=8),
}
"""The service's ``index_profile`` choices. Figures measured at a million palms: ``palmid bench search``."""
