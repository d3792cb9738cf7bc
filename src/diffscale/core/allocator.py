"""glibc malloc settings for jobs that allocate and free the same large arrays day after day.

glibc serves a request above its mmap threshold (128 KiB at start, rising towards 32 MiB
only as such blocks are freed) with a mapping of its own, unmapped again on free, and
returns the heap's free top to the kernel above a 128 KiB trim threshold. A sampling job
allocates and frees the same few-MB tensors at every day and solver step, and an evaluation
the same season-sized temporaries per score, so each time the kernel maps and zeroes their
pages anew. On the paper-size twin that was 23% of ``sample_beyond``'s time and 30% of
``evaluate``'s, as system time (``/usr/bin/time -v``: 8.7 million page faults in a 4-year
block). Fixing the thresholds keeps freed blocks under 32 MiB in the heap for reuse.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

# mallopt's parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3

MiB = 1 << 20


def retain_freed_memory(mmap_threshold: int = 32 * MiB, trim_threshold: int = 512 * MiB,
                        top_pad: int = 64 * MiB) -> bool:
    """Set this process's malloc thresholds (glibc only); True when they were set.

    mmap_threshold: requests at least this large get a mapping of their own (32 MiB is
    glibc's ceiling). trim_threshold: free heap top kept before giving it back; all three
    together, because a fixed mmap threshold alone also fixes the trim threshold at 128 KiB
    and trims more often than glibc's defaults do. A job's peak resident memory grows by at
    most ``top_pad`` plus the heap's fragmentation (2% in sample_beyond, 0.2% in evaluate).

    Leaves malloc as it is where GLIBC_TUNABLES sets malloc tunables (the user's choice
    wins) and where the C library is not glibc.
    """
    if "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    libc = _glibc()
    if libc is None:
        return False
    # The mmap threshold first: setting it switches glibc's dynamic thresholds off.
    return all(libc.mallopt(param, value) == 1 for param, value in
               ((M_MMAP_THRESHOLD, mmap_threshold), (M_TRIM_THRESHOLD, trim_threshold), (M_TOP_PAD, top_pad)))


def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.gnu_get_libc_version  # glibc's own symbol: musl and macOS's libc also have mallopt or not
    except (OSError, AttributeError):
        return None
    return libc if hasattr(libc, "mallopt") else None
