"""What compression costs the workflow's netCDF files: write and read time and size per codec and level.

Every file the rules write goes through ``diffscale.core.io.write_netcdf`` (config
``netcdf``: zlib level 4 with shuffle by default, chunked by ``diffscale.core.chunks``). At
the paper's sizes the rules that move the 25-year fine-grid records (``split_region``,
``sample_references``, ``gather_beyond``, ``assemble``) spend much of their time
compressing, so this times the same writer with other codecs and levels on a slab of days
of one of the workflow's own files (its first data variable), or, without ``--file``, on
smooth random fields of area1's size (432 x 357), which compress differently from real data.

    PYTHONPATH=src .venv/bin/python benchmarks/netcdf_compression.py \
        [--file results/paper_twin/samples/area1/MAM/bicubic/beyond.nc] [--days 400] \
        [--codecs zlib:4 zlib:1 zstd:1 zstd:3 none]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from scipy.ndimage import gaussian_filter

from diffscale.core import cf, io


def smooth_fields(days: int, shape: tuple[int, int] = (357, 432), seed: int = 0) -> xr.Dataset:
    """(days, Y, X) float32 log-normal fields with 10-pixel structures, as a workflow field file."""
    rng = np.random.default_rng(seed)
    logs = gaussian_filter(rng.standard_normal((days, *shape)), sigma=(0, 10, 10)) * 10 - 1
    times = pd.date_range("2010-01-01", periods=days)
    lat = np.linspace(10.68, 37.61, shape[0])
    lon = np.linspace(34.31, 56.56, shape[1])
    return io.field_dataset((10.0 ** logs).astype(np.float32), times, lat, lon, "DUEXTTAU", {"units": "1"})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--file", default=None, help="a workflow netCDF file with a time dimension")
    ap.add_argument("--days", type=int, default=400, help="the slab of days written")
    ap.add_argument("--codecs", nargs="+", default=["zlib:4", "zlib:1", "zstd:1", "zstd:3", "none"],
                    help="CODEC[:LEVEL], CODEC one of the config's netcdf.compression (level 4 when left out)")
    a = ap.parse_args()
    if a.file:
        with xr.open_dataset(a.file) as ds:
            name = next(iter(ds.data_vars))
            slab = ds[[name]].isel(time=slice(0, a.days)).load()
        source = f"{a.file}, {name}, first {slab.sizes['time']} days"
    else:
        slab = smooth_fields(a.days)
        source = f"smooth random fields, {a.days} days of 357 x 432"
    raw_mb = sum(v.nbytes for v in slab.data_vars.values()) / 1e6
    print(f"{source}: {raw_mb:.0f} MB uncompressed")
    print("codec        level  write_s  read_s  file_MB  write_MB_per_s")
    with tempfile.TemporaryDirectory() as tmp:
        for choice in a.codecs:
            codec, _, level = choice.partition(":")
            files = cf.Metadata(compression=codec, complevel=int(level or 4))
            path = Path(tmp) / f"{codec}{level}.nc"
            t0 = time.perf_counter()
            io.write_netcdf(slab, path, metadata=files)
            write_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            with xr.open_dataset(path) as back:
                back.load()
            read_s = time.perf_counter() - t0
            shown = "-" if codec == "none" else files.complevel
            print(f"{codec:11s}  {shown!s:>5}  {write_s:7.2f}  {read_s:6.2f}  {path.stat().st_size / 1e6:7.0f}  "
                  f"{raw_mb / write_s:14.0f}")


if __name__ == "__main__":
    main()
