"""Monthly and annual aggregates of the product, checked against a direct xarray computation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from cf_checker import failures, require_checker

from diffscale.core import cf, io
from diffscale.method.aggregates import aggregate_file

VAR = "DUEXTTAU"
DUST = "atmosphere_optical_thickness_due_to_dust_ambient_aerosol_particles"
META = cf.Metadata.from_config({"data": {"variable": VAR, "standard_name": DUST},
                                "metadata": {"title": "a test", "summary": "aggregates", "keywords": ["dust"]}})
THRESHOLDS = [0.3, 0.6]


def product(days: pd.DatetimeIndex, members: int = 4, seed: int = 0) -> xr.Dataset:
    """A product as rule assemble writes it: members (physical units), mean, spread; the
    months of no season (here March-May) missing."""
    rng = np.random.default_rng(seed)
    values = rng.gamma(2.0, 0.2, size=(members, len(days), 3, 4)).astype(np.float32)
    values[:, np.isin(days.month, [3, 4, 5])] = np.nan
    lat, lon = np.array([30.0, 30.5, 31.0]), np.array([60.0, 60.5, 61.0, 61.5])
    attrs = {"units": "1", "long_name": "dust AOD", "standard_name": DUST}
    coords = io.field_dataset(values[0], days, lat, lon, VAR, attrs).coords
    ds = xr.Dataset({VAR: (("time", "lat", "lon"), values.mean(0), attrs | {"long_name": "dust AOD, ensemble mean"}),
                     f"{VAR}_members": (("member", "time", "lat", "lon"), values, attrs)},
                    coords=dict(coords) | {"member": np.arange(members, dtype=np.int32)})
    return cf.ensemble_statistics(ds, {VAR: "mean"}, members)


@pytest.mark.parametrize("fmt", ["netcdf", "zarr"])
@pytest.mark.parametrize("period, freq", [("monthly", "MS"), ("annual", "YS")])
def test_aggregates_equal_a_direct_xarray_computation(tmp_path, fmt, period, freq):
    days = pd.date_range("2001-01-01", "2002-12-31")
    path = io.write_product(product(days), tmp_path / f"r{io.PRODUCT_FORMATS[fmt]}", fmt)
    out = aggregate_file(path, VAR, period, THRESHOLDS, tmp_path / f"r.{period}.nc")

    members = io.open_product(path)[f"{VAR}_members"].load()
    expected = members.resample(time=freq).mean(skipna=True)
    got = xr.open_dataset(out)
    np.testing.assert_array_equal(got.time.values, expected.time.values)
    np.testing.assert_allclose(got[f"{VAR}_members"].values, expected.values, rtol=1e-6)
    np.testing.assert_allclose(got[VAR].values, expected.mean("member").values, rtol=1e-6)
    np.testing.assert_allclose(got[f"{VAR}_quantiles"].sel(quantile=0.5).values, expected.median("member").values,
                               rtol=1e-6)
    for k, t in enumerate(THRESHOLDS):
        above = (members > t).resample(time=freq).sum()
        np.testing.assert_array_equal(got[f"{VAR}_days_above"].isel(threshold=k).values, above.values)
        assert float(got.threshold[k]) == t
    np.testing.assert_array_equal(got.days_with_data.values,
                                  members.notnull().any(("member", "lat", "lon")).resample(time=freq).sum().values)

    # the periods' bounds, the statistics over members said in cell_methods
    ends = pd.DatetimeIndex(got.time.values) + (pd.offsets.MonthBegin(1) if period == "monthly" else pd.offsets.YearBegin(1))
    np.testing.assert_array_equal(got.time_bnds.values[:, 1], ends.values)
    assert got[VAR].attrs["cell_methods"] == "time: mean realization: mean"
    assert got[f"{VAR}_members"].attrs["cell_methods"] == "time: mean"


def test_months_without_a_season_are_missing_and_counted_empty(tmp_path):
    days = pd.date_range("2001-01-01", "2001-12-31")
    path = io.write_product(product(days), tmp_path / "r.nc")
    got = xr.open_dataset(aggregate_file(path, VAR, "monthly", [], tmp_path / "r.monthly.nc"))
    spring = pd.DatetimeIndex(got.time.values).month.isin([3, 4, 5])
    assert np.isnan(got[VAR].values[spring]).all() and np.isfinite(got[VAR].values[~spring]).all()
    assert (got.days_with_data.values[spring] == 0).all()
    assert f"{VAR}_days_above" not in got  # no thresholds configured


def test_aggregate_files_pass_the_cf_and_acdd_checks(tmp_path):
    require_checker()
    days = pd.date_range("2001-01-01", "2001-12-31")
    path = io.write_product(product(days), tmp_path / "r.nc", metadata=META)
    out = aggregate_file(path, VAR, "monthly", THRESHOLDS, tmp_path / "r.monthly.nc", META)
    # CF has no standard name for days above a threshold of dust optical depth: ACDD's
    # "standard_name recommended" on the two count variables is the only finding allowed.
    found = failures(out)
    assert found == {f'acdd variable "{name}" missing the following attributes:': ["standard_name"]
                     for name in (f"{VAR}_days_above", f"{VAR}_days_above_mean")}


def test_a_file_that_is_not_a_product_is_named(tmp_path):
    path = tmp_path / "fine.nc"
    days = pd.date_range("2001-01-01", periods=3)
    io.write_netcdf(io.field_dataset(np.ones((3, 2, 2), np.float32), days, np.array([0.0, 1.0]), np.array([0.0, 1.0]),
                                     VAR, {"units": "1"}), path)
    with pytest.raises(io.DataValidationError, match=r"fine\.nc: not a diffscale product: no variable 'DUEXTTAU_members'"):
        aggregate_file(path, VAR, "monthly", [], tmp_path / "out.nc")
    assert not (tmp_path / "out.nc").exists()


@pytest.mark.slow
def test_the_workflows_aggregates_are_those_of_its_product(full_run):
    """Rules assemble -> aggregate -> plot_aggregate in the whole-chain run."""
    res = full_run / "results"
    members = xr.open_dataset(res / "downscaled/solo.nc")[f"{VAR}_members"]
    for period, freq in (("monthly", "MS"), ("annual", "YS")):
        got = xr.open_dataset(res / f"downscaled/solo.{period}.nc")
        np.testing.assert_allclose(got[f"{VAR}_members"].values, members.resample(time=freq).mean().values, rtol=1e-6)
        assert int(got.days_with_data.sum()) == int(members.notnull().any(("member", "lat", "lon")).sum())
    assert (res / "figures/product/solo_monthly.png").stat().st_size > 0


def test_quantiles_equal_xarrays_where_members_are_missing_all_together_or_in_part():
    """The fast path (np.quantile where every member or none has a value) and the pixels where
    only some have give what DataArray.quantile gives, to the bit."""
    from diffscale.method.aggregates import _quantiles

    rng = np.random.default_rng(0)
    values = rng.uniform(0.01, 0.5, (4, 6, 5, 7)).astype(np.float32)
    values[:, 0] = np.nan  # a period without a model: every member missing
    values[1:, 2, 1, 1] = np.nan  # some members missing at one pixel
    da = xr.DataArray(values, dims=("member", "time", "lat", "lon"),
                      coords={"time": pd.date_range("2001-01-01", periods=6, freq="MS"),
                              "lat": np.arange(5.0), "lon": np.arange(7.0)})
    got = _quantiles(da, (0.05, 0.5, 0.95))
    with np.errstate(all="ignore"):
        want = da.quantile([0.05, 0.5, 0.95], dim="member").transpose("quantile", "time", "lat", "lon")
    np.testing.assert_array_equal(got.values, want.values)
    assert list(got["quantile"].values) == [0.05, 0.5, 0.95] and np.isnan(got.values[:, 0]).all()
