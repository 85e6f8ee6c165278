"""Search profiles of the fast index: how many rows each stage keeps (accuracy against latency)."""

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
"""Rows the exhaustive head pass keeps (1.6% of a million; 1M-palm Tongji runs: twice as many found no more mates)."""
DEFAULT_ALIGNED_PREFILTER_K = 1024
"""Rows the half aligned code keeps for the whole aligned code."""
DEFAULT_RERANK_K = 16
"""Candidates compared in full (1M-palm Tongji runs: a mate that survives the head pass is in the best 8)."""


@dataclass(frozen=True, kw_only=True)
class SearchProfile:
    """How much of each stage a search runs: accuracy against latency (see :data:`SEARCH_PROFILES`)."""

    head_bytes: int | None
    """Coarse-code bytes the first pass scans (``None``: the matcher's ``head_bytes``, all of the engine's code)."""
    prefilter_k: int
    aligned_prefilter_k: int = DEFAULT_ALIGNED_PREFILTER_K
    rerank_k: int = DEFAULT_RERANK_K


SEARCH_PROFILES: dict[str, SearchProfile] = {
    "accurate": SearchProfile(head_bytes=None, prefilter_k=DEFAULT_PREFILTER_K),
    "fast": SearchProfile(head_bytes=128, prefilter_k=8192),
}
"""Measured at a million palms on a 2-core machine (``palmid bench search --gallery 1000000``, Tongji mates among
mosaic distractors): ``accurate`` p50/p95 23.6/30.0 ms, mate ranked first in 99.4% of mated searches; ``fast``
14.4/18.7 ms, 97.6%."""
