"""Resident memory of this process, for benchmarks that report memory per enrolled palm (Linux; 0 elsewhere)."""

from __future__ import annotations

import os
from contextlib import suppress
from pathlib import Path

__all__ = ["release_free_memory", "rss_bytes"]


def rss_bytes() -> int:
    """Resident memory of this process (Linux ``/proc``; 0 where unavailable)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


def release_free_memory() -> None:
    """Give freed heap back to the system so that the RSS figure measures what is still in use (glibc only)."""
    import ctypes
    import ctypes.util
    import gc

    gc.collect()
    name = ctypes.util.find_library("c")
    if name:
        with suppress(OSError, AttributeError):
            ctypes.CDLL(name).malloc_trim(0)
