"""Built-in conservative regridding against xarray-regrid on a 30 x 320 x 480 -> 40 x 48 job.

The fine cells tile the coarse cells exactly (8 x 10 per coarse cell), so both methods
compute the same area-weighted means and the results must agree to rounding.

    PYTHONPATH=src .venv/bin/python benchmarks/regrid_conservative.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import xarray as xr
import xarray_regrid  # noqa: F401 - registers the .regrid accessor

from diffscale.core.grids import Grid
from diffscale.data.regrid import Regridder


def best_of(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    coarse = Grid(20.25 + 0.5 * np.arange(40), 40.3125 + 0.625 * np.arange(48), 0.5, 0.625)
    fine = Grid(20.0 + 0.0625 * (np.arange(320) + 0.5), 40.0 + 0.0625 * (np.arange(480) + 0.5), 0.0625, 0.0625)
    rng = np.random.default_rng(0)
    da = xr.DataArray(np.exp(rng.normal(size=(30, 320, 480))), dims=("time", "lat", "lon"), name="DUEXTTAU",
                      coords={"time": pd.date_range("2005-06-01", periods=30), "lat": fine.lat, "lon": fine.lon})
    target = xr.Dataset(coords={"lat": coarse.lat, "lon": coarse.lon})

    t_build, regridder = best_of(lambda: Regridder(fine, coarse, "conservative", backend="builtin"), args.repeat)
    t_ours, ours = best_of(lambda: regridder(da), args.repeat)
    t_theirs, theirs = best_of(lambda: da.regrid.conservative(target, latitude_coord="lat"), args.repeat)
    theirs = theirs.transpose(*ours.dims)
    diff = float(np.abs(ours.values - theirs.values).max())
    rel = float((np.abs(ours.values - theirs.values) / np.abs(theirs.values)).max())
    print("job: 30 x 320 x 480 -> 30 x 40 x 48, conservative, float64; best of", args.repeat)
    print(f"builtin weights (once, cacheable): {t_build * 1e3:8.2f} ms")
    print(f"builtin apply:                     {t_ours * 1e3:8.2f} ms")
    print(f"builtin weights + apply:           {(t_build + t_ours) * 1e3:8.2f} ms")
    print(f"xarray-regrid conservative:        {t_theirs * 1e3:8.2f} ms")
    print(f"speed-up (apply):                  {t_theirs / t_ours:8.1f} x")
    print(f"speed-up (weights + apply):        {t_theirs / (t_build + t_ours):8.1f} x")
    print(f"max abs difference:                {diff:.3e}  (max relative {rel:.3e})")


if __name__ == "__main__":
    main()
