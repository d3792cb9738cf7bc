"""A region across the antimeridian, through the whole workflow to the product and the scores.

Two regions given in the two conventions on either side of 180 degrees share one
longitude frame, so every file they produce has ascending, continuous longitudes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from conftest import run_snakemake, tiny_config


@pytest.mark.slow
def test_regions_across_the_antimeridian_run_to_the_product(tmp_path):
    config = tiny_config(
        regions={"dateline": {"lat": [-17.0, -16.0], "lon": [179.5, -179.25]},  # west > east: across 180
                 "east": {"lat": [-17.0, -16.0], "lon": [181.0, 182.25]}},  # 0..360
        evaluation={"models": ["bicubic", "diffusion"], "variogram_pairs": 500},
    )
    run_snakemake(tmp_path, config, "results/downscaled/dateline.nc", "results/downscaled/east.nc",
                  "results/metrics/summary.csv")
    for region, (west, east) in {"dateline": (179.5, 180.75), "east": (181.0, 182.25)}.items():
        with xr.open_dataset(tmp_path / f"results/downscaled/{region}.nc") as ds:
            lon = ds.lon.values
            assert np.all(np.diff(lon) > 0) and lon[0] >= west and lon[-1] <= east  # continuous past 180
            assert np.isfinite(ds["DUEXTTAU"].values).all()
    raw = xr.open_dataset(next((tmp_path / "results/data/raw/coarse").glob("*.nc")))
    assert np.all(np.diff(raw.lon.values) > 0) and raw.lon.values.max() > 180  # one strip, no wrap inside
    summary = pd.read_csv(tmp_path / "results/metrics/summary.csv")
    assert set(summary.region) == {"dateline", "east"}
    assert summary.rmse.notna().all()
