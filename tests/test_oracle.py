"""The twin's oracle, regenerated: it reproduces the written files and misses only the noise."""

import numpy as np
import pandas as pd
import pytest
from split_fixture import write_split

from diffscale.core import io, registry
from diffscale.core.days import DaySplit
from diffscale.core.grids import Box, g5nr_grid
from diffscale.core.samples import read_members
from diffscale.data.sources.synthetic import TwinParameters, make_twin, twin_oracle
from diffscale.evaluation.oracle import oracle_samples

BOX = Box((33.0, 34.0), (64.0, 65.25))
PERIOD = ["2000-01-01", "2000-02-29"]
CONFIG = {"data": {"coarse_period": PERIOD, "fine_period": ["2000-01-15", "2000-02-15"]},
          "regions": {"solo": {"lat": [33.0, 34.0], "lon": [64.0, 65.25]}}, "seasons": {"winter": [12, 1, 2]}}


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


def write_oracle(root, fine_file):
    outputs = [root / "oracle/test.nc", root / "oracle/beyond.nc"]
    oracle_samples(root / "raw/twin.json", CONFIG["regions"], 0.5, PERIOD, regions=["solo"], seasons=["winter"],
                   days_files=[root / "split/solo/winter/days.json"], fine_files=[fine_file],
                   truth_files=[root / "split/solo/truth.nc"], truth_index=[0], variable="DUEXTTAU",
                   attrs={"units": "1", "long_name": "dust extinction"}, outputs=outputs)
    return outputs


def test_oracle_samples_write_one_member_per_period_and_check_the_split_files(tmp_path):
    make_twin([BOX], 0.5, tuple(PERIOD), tmp_path / "raw")
    write_split(tmp_path / "raw", tmp_path / "split", CONFIG)
    days = DaySplit.from_json(tmp_path / "split/solo/winter/days.json")
    test, beyond = write_oracle(tmp_path, tmp_path / "split/solo/fine.nc")
    for path, times, truth in ((test, days.test, "fine"), (beyond, days.beyond, "truth")):
        da = read_members(path, "DUEXTTAU", times)
        assert da.sizes["member"] == 1 and da.attrs["long_name"] == "dust extinction"
        with io.open_dataset(path) as ds:
            assert ds.attrs["model"] == "oracle" and ds.attrs["method"] == registry.entry("oracle").description
        written = io.read_field(tmp_path / f"split/solo/{truth}.nc", "DUEXTTAU").sel(time=times).values
        noise = np.log10(written) - np.log10(da.values[0])
        assert noise.std() == pytest.approx(TwinParameters().noise.std, rel=0.3)
    # A fine record that the twin does not reproduce has no oracle.
    fine = io.read_field(tmp_path / "split/solo/fine.nc", "DUEXTTAU")
    other = io.write_netcdf(io.field_dataset(fine.values * 1.01, pd.DatetimeIndex(fine.time.values), fine.lat.values,
                                             fine.lon.values, "DUEXTTAU", {"units": "1"}), tmp_path / "other.nc")
    with pytest.raises(io.DataValidationError, match="other.nc.*does not reproduce"):
        write_oracle(tmp_path, other)
