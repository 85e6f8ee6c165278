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
"""The service's ``index_profile`` choices. Measured at a million palms on a 2-core machine (``palmid bench search
--gallery 1000000``: Tongji mates among mosaic distractors, AVX-512 kernel): ``accurate`` p50/p95/p99
12.2/15.8/17.9 ms, exhaustive top-1 found in 1000 of 1000 mated searches; ``fast`` 10.2/13.3/15.5 ms, 300 of 300."""
