"""The twin's oracle, regenerated: it reproduces the written files and misses only the noise."""

import numpy as np
import pandas as pd
import pytest

from diffscale.core import io
from diffscale.core.grids import Box, g5nr_grid
from diffscale.data.sources.synthetic import TwinParameters, make_twin, twin_oracle

BOX = Box((33.0, 34.0), (64.0, 65.25))


def test_twin_oracle_reproduces_the_files_and_differs_by_the_noise(tmp_path):
    make_twin([BOX], 0.5, ("2000-01-01", "2000-02-29"), tmp_path)
    grid = g5nr_grid(BOX)
    days = ["2000-01-03", "2000-02-10", "2000-02-29"]
    out = twin_oracle([BOX], 0.5, ("2000-01-01", "2000-02-29"), TwinParameters(),
                      {"a": (grid.lat, grid.lon, days), "none": (grid.lat, grid.lon, [])})
    oracle, fine = out["a"]
    assert oracle.shape == fine.shape == (3, *grid.shape)
    written = io.read_record(io.month_files(tmp_path / "fine", "2000-01-01", "2000-02-29"), "DUEXTTAU")
    written = written.sel(lat=grid.lat, lon=grid.lon, time=pd.to_datetime(days)).values
    np.testing.assert_array_equal(fine, written)
    noise = np.log10(fine) - np.log10(oracle)
    assert noise.std() == pytest.approx(TwinParameters().noise.std, rel=0.15)
    assert out["none"][0].shape == (0, *grid.shape)


def test_twin_oracle_refuses_days_outside_the_period_and_foreign_grids():
    grid = g5nr_grid(BOX)
    with pytest.raises(ValueError, match="inside the twin's period"):
        twin_oracle([BOX], 0.5, ("2000-01-01", "2000-01-31"), TwinParameters(), {"a": (grid.lat, grid.lon, ["2000-02-01"])})
    with pytest.raises(ValueError, match="not part of the twin's fine grid"):
        twin_oracle([BOX], 0.5, ("2000-01-01", "2000-01-31"), TwinParameters(), {"a": (grid.lat + 0.01, grid.lon, ["2000-01-02"])})
