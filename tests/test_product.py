"""Rule assemble writes the product a calendar year at a time: the same file as the whole
product built in memory, in both formats (diffscale.method.product, diffscale.core.io)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from diffscale.core import io
from diffscale.core.samples import member_dataset
from diffscale.method.product import SOURCE_FLAGS, assemble, assemble_files

PERIOD = ("1999-12-01", "2002-02-28")  # four calendar years, the first and last of them short
SEASONS = {"DJF": [12, 1, 2], "JJA": [6, 7, 8]}
FINE = ("2000-03-01", "2000-11-30")
LAT, LON = np.linspace(30.0, 31.0, 6), np.linspace(60.0, 61.4, 8)
SAMPLING = dict(sampler="dpmpp", steps=2, beyond_members=3, halo=2, tile=0, overlap=0.0, spinup_days=3, seed=0)
# When a file was written (CF history, ACDD date_created) differs between any two writes.
WRITTEN_AT = ("history", "date_created")


@pytest.fixture
def inputs(tmp_path):
    rng = np.random.default_rng(0)
    attrs = {"units": "1", "long_name": "dust optical depth"}
    fine_days = io.days_in(*FINE)
    fine = rng.uniform(0.01, 0.5, (len(fine_days), LAT.size, LON.size)).astype(np.float32)
    fine_path = io.write_netcdf(io.field_dataset(fine, fine_days, LAT, LON, "DUEXTTAU", attrs), tmp_path / "fine.nc")
    days = io.days_in(*PERIOD)
    beyond = {}
    for season, months in SEASONS.items():
        t = days[days.month.isin(months) & ~days.isin(fine_days)]
        values = rng.uniform(0.01, 0.5, (3, len(t), LAT.size, LON.size)).astype(np.float32)
        beyond[season] = io.write_netcdf(member_dataset(values, t, LAT, LON, "DUEXTTAU", attrs), tmp_path / f"{season}.nc")
    return fine_path, beyond


def write(inputs, out, format="netcdf"):
    fine_path, beyond = inputs
    return assemble_files(fine_path, list(beyond.values()), ["djf.pt", "jja.pt"], "solo", SEASONS, "DUEXTTAU", PERIOD,
                          2, SAMPLING, {"a": 1}, out, format)


@pytest.mark.parametrize("format", ["netcdf", "zarr"])
def test_the_product_written_a_year_at_a_time_equals_the_product_built_whole(inputs, tmp_path, format):
    fine_path, beyond = inputs
    path = write(inputs, tmp_path / f"solo{io.PRODUCT_FORMATS[format]}", format)
    whole = assemble(fine_path, beyond, SEASONS, "DUEXTTAU", PERIOD, 2, {})
    reference = io.open_product(io.write_product(whole, tmp_path / f"whole{io.PRODUCT_FORMATS[format]}", format))
    got = io.open_product(path)
    assert list(got.data_vars) == list(reference.data_vars) and got.sizes == reference.sizes
    for name in reference.variables:
        np.testing.assert_array_equal(got[name].values, reference[name].values, err_msg=name)
        np.testing.assert_equal(got[name].attrs, reference[name].attrs, err_msg=name)
    assert got.DUEXTTAU.encoding.get("chunks" if format == "zarr" else "chunksizes") == \
        reference.DUEXTTAU.encoding.get("chunks" if format == "zarr" else "chunksizes")
    assert got.attrs["time_coverage_end"].startswith(PERIOD[1]) and got.attrs["time_coverage_start"].startswith(PERIOD[0])
    provenance = {k: v for k, v in got.attrs.items() if k not in WRITTEN_AT and k not in reference.attrs}
    assert json.loads(provenance["config"]) == {"a": 1} and provenance["region"] == "solo"
    src = pd.Series(got.source.values, index=pd.DatetimeIndex(got.time.values))
    assert (src[FINE[0]:FINE[1]] == SOURCE_FLAGS["fine_record"]).all()
    assert (src["2001-12":"2002-02"] == SOURCE_FLAGS["diffusion_ensemble"]).all()
    assert (src["2001-04"] == SOURCE_FLAGS["no_model"]).all()
    assert not list(tmp_path.glob(".*.part"))


def test_a_bad_beyond_file_leaves_no_product(inputs, tmp_path):
    fine_path, beyond = inputs
    ds = xr.open_dataset(beyond["JJA"]).load()
    ds["DUEXTTAU"][:, -1] = np.inf  # found only when its year is read, after two years were written
    io.write_netcdf(ds, beyond["JJA"])
    with pytest.raises(io.DataValidationError, match="infinite"):
        write(inputs, tmp_path / "solo.nc")
    assert not (tmp_path / "solo.nc").exists() and not list(tmp_path.glob(".*.part"))
