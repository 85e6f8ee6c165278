# Type stub of the native extension built from _kernels.c (see palmid/index/kernels.py for the checked wrappers).
from typing import Any as Buffer  # any object with the C-contiguous buffer protocol (numpy arrays)

def scan_min(
    codes: Buffer,
    total_words: int,
    group_start: int,
    group_stop: int,
    words: int,
    probes: Buffer,
    n_probes: int,
    out: Buffer,
    row_limit: int,
    hist: Buffer,
    kernel: int,
    /,
) -> None: ...
def select_rows(distances: Buffer, n: int, radius: int, at_radius: int, out: Buffer, kernel: int, /) -> int: ...
def min_rows(
    codes: Buffer,
    n_code_rows: int,
    row_bytes: int,
    width: int,
    rows: Buffer,
    n_rows: int,
    probes: Buffer,
    n_probes: int,
    out: Buffer,
    kernel: int,
    /,
) -> None: ...
def best_kernel() -> str: ...
