"""Chunk sizes for daily (member,) time x lat x lon arrays, read both as maps and as series.

A 25-year product is read two ways: one day's map (plots, a season's mean) and one
pixel's whole record (trends, ACF). A chunk of ``ct`` days x ``cy`` x ``cx`` pixels makes
a map cost the fraction ct / T of the array and a pixel's record cy cx / (Y X). For a
fixed chunk of ``n`` elements the worse of the two is smallest when both are equal,
f = sqrt(n / (T Y X)): ct = f T days, a tile of f Y X pixels. The chunk is 1 MiB, the
HDF5 library's default chunk cache, so a reader that keeps the default caches a whole
chunk; the time side is kept between a month and a year (``time_range``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

TARGET_BYTES = 2**20
TIME_RANGE = (31, 366)


def chunk_sizes(sizes: Mapping[str, int], itemsize: int = 4, target_bytes: int = TARGET_BYTES,
                time_range: tuple[int, int] = TIME_RANGE) -> dict[str, int]:
    """Chunk length per dimension of an array with dimension ``sizes`` (in their order).

    ``time``, ``lat``, ``lon`` are balanced as the module doc says; ``member`` gets 1
    (a member is read whole or not at all); any other dimension is kept whole. An array
    that fits in one chunk is one chunk.
    """
    chunks = {dim: (1 if dim == "member" else max(int(n), 1)) for dim, n in sizes.items()}
    t, y, x = (max(int(sizes.get(d, 1)), 1) for d in ("time", "lat", "lon"))
    elements = max(target_bytes // max(itemsize, 1), 1)
    fraction = math.sqrt(elements / (t * y * x))
    if fraction >= 1:
        return chunks
    ct = 1
    if "time" in sizes:
        ct = min(t, max(min(time_range[0], t), min(round(fraction * t), time_range[1])))
        chunks["time"] = ct
    tile = elements / ct
    cy = min(y, max(1, math.floor(math.sqrt(tile))))
    cx = min(x, max(1, math.floor(tile / cy)))
    if cx == x:  # a narrow domain: give the rows what the columns cannot take
        cy = min(y, max(1, math.floor(tile / cx)))
    for dim, n in (("lat", cy), ("lon", cx)):
        if dim in sizes:
            chunks[dim] = n
    return chunks
