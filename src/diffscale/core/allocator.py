"""glibc malloc settings for jobs that allocate and free the same large arrays day after day.

glibc serves a request above its mmap threshold (128 KiB at start, rising to at most 32 MiB
as such blocks are freed) with a mapping of its own, unmapped again on free, and gives the
heap's free top back to the kernel above a trim threshold (twice the mmap threshold). A
sampling job allocates and frees the same tensors at every day and solver step, an
evaluation or a gathering job the same season- or block-sized arrays (hundreds of MB) for
each score, so each time the kernel maps and zeroes their pages anew. On the paper-size
twin's second run 26% of the CPU time was system time. Measured a job at a time
(``/usr/bin/time -v``, README "Paper-size data"): a 92-day ``sample_beyond`` block took
40.3 s with glibc's defaults and 33.1 s without mappings or trimming, ``evaluate`` of one
season 330 s (88 s system) and 246 s (22 s). Serving every request from the heap and
keeping its freed top lets the next day's arrays reuse those pages.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

# mallopt's parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_MAX = -4

MiB = 1 << 20


def retain_freed_memory(top_pad: int = 64 * MiB) -> bool:
    """Serve this process's allocations from its heap and keep what it frees (glibc only); True when set.

    No request gets a mapping of its own (M_MMAP_MAX 0) and the heap is never trimmed
    (M_TRIM_THRESHOLD -1, mallopt(3)); ``top_pad``: what each growth of the heap adds. A job's
    resident memory never exceeds what it once used plus ``top_pad``, but a heap cannot hand
    back the holes between live arrays, so the peak grows by their fragmentation: on the
    twin ``pretrain_encoder`` 7.9 -> 10.4 GB, ``sample_beyond`` 2.5 -> 3.1 GB, ``evaluate``
    9.2 -> 10.0 GB (diffscale.core.resources sizes the jobs' requests from the runs that
    measured them).

    Leaves malloc as it is where GLIBC_TUNABLES sets malloc tunables (the user's choice
    wins) and where the C library is not glibc.
    """
    if not 0 <= top_pad < 1 << 31:
        raise ValueError(f"retain_freed_memory: top_pad must be 0..2 GiB (a C int), not {top_pad}")
    if "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    libc = _glibc()
    if libc is None:
        return False
    return all(libc.mallopt(param, value) == 1 for param, value in
               ((M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, -1), (M_TOP_PAD, top_pad)))


def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.gnu_get_libc_version  # glibc's own symbol, which musl's and macOS's C libraries lack
    except (OSError, AttributeError):
        return None
    return libc if hasattr(libc, "mallopt") else None
