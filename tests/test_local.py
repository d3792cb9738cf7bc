"""The local source: the user's own netCDF files, normalised into the raw monthly files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cftime
import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml

from diffscale.core import io
from diffscale.core.grids import Box
from diffscale.data.sources import local

REPO = Path(__file__).resolve().parents[1]
REGION = Box((30.0, 32.0), (60.0, 62.0))
ATTRS = {"long_name": "dust AOD", "units": "1"}


def field_value(days: np.ndarray, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """(time, lat, lon), a known function of the day number and the position."""
    return 0.1 + 0.001 * days[:, None, None] + 0.01 * lat[None, :, None] + 0.001 * lon[None, None, :]


def write_user_file(path: Path, start: str, ndays: int, *, variable="aod", calendar="standard", step_hours=24,
                    lat_descending=False, lon_360=False, time_name="time", lat_name="latitude", lon_name="longitude",
                    lat=np.arange(25.0, 38.0, 1.0), lon=np.arange(55.0, 68.0, 1.0)) -> Path:
    """A user's file as climate tools write them: own names, own grid order, own calendar."""
    lat = lat[::-1] if lat_descending else lat
    lon_out = np.where(lon < 0, lon + 360, lon) if lon_360 else lon
    order = np.argsort(lon_out)
    lon_out = lon_out[order]
    nsteps = ndays * 24 // step_hours
    units = f"hours since {start} 00:00:00"
    hours = np.arange(nsteps) * step_hours
    dates = cftime.num2date(hours, units, calendar=calendar)
    day_numbers = np.array([float(cftime.date2num(cftime.datetime(d.year, d.month, d.day, calendar=calendar),
                                                  "days since 2000-01-01", calendar=calendar)) for d in dates])
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension(time_name, None)
        nc.createDimension(lat_name, lat.size)
        nc.createDimension(lon_name, lon_out.size)
        t = nc.createVariable(time_name, "f8", (time_name,))
        t.units, t.calendar = units, calendar
        t[:] = hours
        y = nc.createVariable(lat_name, "f8", (lat_name,))
        y.units = "degrees_north"
        y[:] = lat
        x = nc.createVariable(lon_name, "f8", (lon_name,))
        x.units = "degrees_east"
        x[:] = lon_out
        v = nc.createVariable(variable, "f4", (time_name, lat_name, lon_name), fill_value=np.float32(-9999))
        lon_true = np.where(lon_out > 180, lon_out - 360, lon_out)
        v[:] = field_value(day_numbers, lat, lon_true)
    return path


def normalise_coarse(pattern, tmp_path, period=("2001-01-30", "2001-02-02"), variable="aod", **how):
    outs = [tmp_path / "raw" / "coarse" / f"2001-0{m}.nc" for m in (1, 2)]
    return local.normalise(str(pattern), variable, [REGION], 1.0, outs, "DUEXTTAU", ATTRS, period, **how), outs


def check_written(outs, margin=1.0):
    ds = xr.concat([xr.open_dataset(o).load() for o in outs], dim="time", data_vars="minimal")
    assert np.all(np.diff(ds.lat) > 0) and np.all(np.diff(ds.lon) > 0)
    assert ds.lat.min() <= REGION.lat[0] - margin + 0.5 and ds.lat.max() >= REGION.lat[1] + margin - 0.5
    times = pd.DatetimeIndex(ds.time.values)
    assert list(times) == list(pd.date_range("2001-01-30", "2001-02-02"))
    day_numbers = np.asarray((times - pd.Timestamp("2000-01-01")).days, dtype=float)
    np.testing.assert_allclose(ds.DUEXTTAU.values, field_value(day_numbers, ds.lat.values, ds.lon.values), rtol=1e-5)
    return ds


@pytest.mark.parametrize("layout", [
    {},
    {"lat_descending": True},
    {"lon_360": True, "lon": np.arange(-10.0, 80.0, 1.0)},  # crosses 0 deg: wrapped and reordered
    {"time_name": "t", "lat_name": "y_lat", "lon_name": "x_lon", "variable": "Dust_Optical_Depth"},
    {"step_hours": 6},  # sub-daily, asked to be averaged: daily means (the field is constant within a day)
])
def test_any_grid_order_names_and_steps_are_normalised(tmp_path, layout):
    variable = layout.get("variable", "aod")  # y_lat/x_lon say nothing: the CF units identify the axes
    write_user_file(tmp_path / "user.nc", "2001-01-25", 12, **layout)
    how = {"subdaily": "mean"} if layout.get("step_hours", 24) < 24 else {}
    written, outs = normalise_coarse(tmp_path / "user.nc", tmp_path, variable=variable, **how)
    assert written == outs
    ds = check_written(outs)
    assert ds.DUEXTTAU.attrs["units"] == "1"


def test_files_given_by_glob_are_joined(tmp_path):
    write_user_file(tmp_path / "part1.nc", "2001-01-25", 6)
    write_user_file(tmp_path / "part2.nc", "2001-01-31", 6)
    _, outs = normalise_coarse(tmp_path / "part*.nc", tmp_path)
    check_written(outs)


def test_noleap_calendar_fills_29_february(tmp_path):
    write_user_file(tmp_path / "model.nc", "2004-02-25", 10, calendar="noleap")
    da = local.read_local(str(tmp_path / "model.nc"), "aod", REGION, 1.0)
    times = pd.DatetimeIndex(da.time.values)
    assert pd.Timestamp("2004-02-29") in times and pd.Timestamp("2004-03-01") in times
    i = times.get_loc(pd.Timestamp("2004-02-29"))
    np.testing.assert_allclose(da.values[i], 0.5 * (da.values[i - 1] + da.values[i + 1]))
    assert np.isfinite(da.values).all()


def test_noleap_files_split_at_february_are_joined_and_filled(tmp_path):
    write_user_file(tmp_path / "m02.nc", "2004-02-25", 4, calendar="noleap")  # 25..28 February
    write_user_file(tmp_path / "m03.nc", "2004-03-01", 3, calendar="noleap")
    da = local.read_local(str(tmp_path / "m0*.nc"), "aod", REGION, 1.0)
    assert list(pd.DatetimeIndex(da.time.values)) == list(pd.date_range("2004-02-25", "2004-03-03"))
    assert np.isfinite(da.values).all()


def test_a_real_gap_is_not_filled(tmp_path):
    write_user_file(tmp_path / "a.nc", "2001-01-25", 6)  # to 30 January
    write_user_file(tmp_path / "b.nc", "2001-02-01", 6)  # 31 January is missing
    assert_fails_cleanly(tmp_path, tmp_path / "*.nc", r"1 day\(s\) of 2001-01-30..2001-02-02 are missing, first 2001-01-31")


def test_fine_truth_beyond_the_fine_period_is_kept(tmp_path):
    write_user_file(tmp_path / "fine.nc", "2001-01-30", 40)  # to 10 March
    coarse_period, fine_period = ("2001-01-01", "2001-12-31"), ("2001-01-30", "2001-02-15")
    months = local.fine_months(str(tmp_path / "fine.nc"), "aod", coarse_period, fine_period)
    assert months == [(2001, 1), (2001, 2), (2001, 3)]
    outs = [tmp_path / "raw" / "fine" / f"2001-0{m}.nc" for _, m in months]
    local.normalise(str(tmp_path / "fine.nc"), "aod", [REGION], 1.0, outs, "DUEXTTAU", ATTRS, coarse_period, fine_period)
    march = xr.open_dataset(outs[-1])
    assert list(pd.DatetimeIndex(march.time.values)) == list(pd.date_range("2001-03-01", "2001-03-10"))
    # the fine period itself must be complete
    with pytest.raises(io.DataValidationError, match="first 2001-01-29"):
        local.normalise(str(tmp_path / "fine.nc"), "aod", [REGION], 1.0, outs, "DUEXTTAU", ATTRS, coarse_period,
                        ("2001-01-29", "2001-02-15"))


def test_360_day_calendar_is_spread_over_the_real_year(tmp_path):
    write_user_file(tmp_path / "model.nc", "2001-01-01", 360, calendar="360_day")
    da = local.read_local(str(tmp_path / "model.nc"), "aod", REGION, 1.0)
    times = pd.DatetimeIndex(da.time.values)
    assert list(times) == list(pd.date_range("2001-01-01", "2001-12-31"))  # every real day, once
    assert np.isfinite(da.values).all()
    # 360 model days on 365 real days: values keep their order and the year's range
    series = da.mean(("lat", "lon")).values
    assert np.all(np.diff(series) >= -1e-9)


def test_sub_daily_steps_are_averaged_only_when_asked(tmp_path):
    write_user_file(tmp_path / "hourly.nc", "2001-01-25", 12, step_hours=3)
    assert_fails_cleanly(tmp_path, tmp_path / "hourly.nc",
                         r"hourly\.nc: time step is 3 hours \(sub-daily\); set data\.local\.subdaily: mean")
    _, outs = normalise_coarse(tmp_path / "hourly.nc", tmp_path, subdaily="mean")
    check_written(outs)


def test_monthly_steps_are_refused_for_a_daily_record(tmp_path):
    write_user_file(tmp_path / "monthly.nc", "2001-01-01", 360, step_hours=24 * 30)
    assert_fails_cleanly(tmp_path, tmp_path / "monthly.nc", r"monthly\.nc: time step is a month but data\.step is 'day': "
                                                            "set data.step: month")


def assert_fails_cleanly(tmp_path, pattern, match, variable="aod", period=("2001-01-30", "2001-02-02"), **how):
    with pytest.raises(io.DataValidationError, match=match):
        normalise_coarse(pattern, tmp_path, period, variable, **how)
    left = [p for p in (tmp_path / "raw").rglob("*") if p.is_file()] if (tmp_path / "raw").exists() else []
    assert left == []


def test_truncated_file_fails_cleanly(tmp_path):
    good = write_user_file(tmp_path / "user.nc", "2001-01-25", 12)
    data = good.read_bytes()
    (tmp_path / "cut.nc").write_bytes(data[: len(data) // 2])
    assert_fails_cleanly(tmp_path, tmp_path / "cut.nc", r"cut\.nc: (cannot be read as netCDF|data cannot be read)")


def test_missing_variable_fails_cleanly(tmp_path):
    write_user_file(tmp_path / "user.nc", "2001-01-25", 12)
    assert_fails_cleanly(tmp_path, tmp_path / "user.nc", r"user\.nc: variable 'dust' not found \(variables present: aod\)",
                         variable="dust")


def test_no_matching_file_fails_cleanly(tmp_path):
    assert_fails_cleanly(tmp_path, tmp_path / "nothing*.nc", "no file matches")


def test_non_monotonic_coordinate_fails_cleanly(tmp_path):
    path = write_user_file(tmp_path / "user.nc", "2001-01-25", 12)
    with netCDF4.Dataset(path, "a") as nc:
        lat = nc["latitude"][:]
        lat[3], lat[4] = lat[4], lat[3]
        nc["latitude"][:] = lat
    assert_fails_cleanly(tmp_path, path, r"user\.nc: coordinate 'lat' must be strictly monotonic")


def test_truth_days_are_the_covered_days_outside_the_fine_period(tmp_path):
    # 3-hourly steps in a 360_day calendar: the days are real days, the calendar's gaps included.
    write_user_file(tmp_path / "fine.nc", "2001-01-25", 15, step_hours=3, calendar="360_day")  # to 9 February
    days = local.truth_days(str(tmp_path / "fine.nc"), "aod", ("2001-01-27", "2001-12-31"), ("2001-01-29", "2001-02-05"))
    # 15 model days spread over 16 real days (the calendar's gap after 30 January is filled).
    assert list(days) == list(pd.to_datetime(["2001-01-27", "2001-01-28"]).append(pd.date_range("2001-02-06", "2001-02-09")))
    # Inside the fine period only: no truth. Unreadable files: none either (the normalise job says why).
    assert local.truth_days(str(tmp_path / "fine.nc"), "aod", ("2001-01-01", "2001-12-31"), ("2001-01-01", "2001-03-01")).empty
    (tmp_path / "bad.nc").write_bytes(b"not netcdf")
    assert local.truth_days(str(tmp_path / "bad.nc"), "aod", ("2001-01-01", "2001-12-31"), ("2001-01-29", "2001-02-05")).empty


def test_missing_coordinate_fails_cleanly(tmp_path):
    path = tmp_path / "nocoords.nc"
    xr.Dataset({"aod": (("time", "row", "col"), np.ones((3, 4, 5)))},
               coords={"time": pd.date_range("2001-01-30", periods=3)}).to_netcdf(path)
    assert_fails_cleanly(tmp_path, path, r"nocoords\.nc: variable 'aod' has no latitude dimension")


def test_region_outside_the_data_fails_cleanly(tmp_path):
    write_user_file(tmp_path / "user.nc", "2001-01-25", 12, lat=np.arange(0.0, 10.0, 1.0))
    assert_fails_cleanly(tmp_path, tmp_path / "user.nc", r"user\.nc: the regions \(lat \[30.0, 32.0\].*not inside the data")


def test_region_equal_to_the_files_cell_edges_is_accepted(tmp_path):
    """Regions are checked against the cells' edges (centres +- half a cell), not the centres."""
    write_user_file(tmp_path / "user.nc", "2001-01-25", 12)  # centres 25..37 N, 55..67 E, 1 degree apart
    out = [tmp_path / "raw" / f"2001-0{m}.nc" for m in (1, 2)]
    local.normalise(str(tmp_path / "user.nc"), "aod", [Box((24.5, 37.5), (54.5, 67.5))], 0.0, out, "DUEXTTAU", ATTRS,
                    ("2001-01-30", "2001-02-02"))
    ds = xr.open_dataset(out[0])
    assert ds.sizes["lat"] == 13 and ds.sizes["lon"] == 13


def test_region_past_the_cell_edges_names_the_usable_bounds(tmp_path):
    write_user_file(tmp_path / "user.nc", "2001-01-25", 12)
    out = [tmp_path / "raw" / f"2001-0{m}.nc" for m in (1, 2)]
    with pytest.raises(io.DataValidationError, match=r"within the cells' edges, lat 24.5..37.5, lon 54.5..67.5"):
        local.normalise(str(tmp_path / "user.nc"), "aod", [Box((24.5, 37.6), (54.5, 67.5))], 0.0, out, "DUEXTTAU",
                        ATTRS, ("2001-01-30", "2001-02-02"))
    assert not any(o.exists() for o in out)


@pytest.mark.parametrize("lon_360", [False, True])
@pytest.mark.parametrize("region_lon", [[178.0, -178.0], [178.0, 182.0]])
def test_region_across_the_antimeridian_is_one_continuous_strip(tmp_path, lon_360, region_lon):
    """A global file in either convention, a region given either way across 180 degrees: the
    written grid runs 176.5..183.5 E without a repeated or missing column, values in place."""
    write_user_file(tmp_path / "user.nc", "2001-01-25", 12, lon_360=lon_360, lon=np.arange(-180.0, 180.0, 1.0))
    region = Box.from_config({"lat": [30.0, 32.0], "lon": region_lon})
    out = [tmp_path / "raw" / f"2001-0{m}.nc" for m in (1, 2)]
    local.normalise(str(tmp_path / "user.nc"), "aod", [region], 1.0, out, "DUEXTTAU", ATTRS, ("2001-01-30", "2001-02-02"))
    ds = xr.concat([xr.open_dataset(o).load() for o in out], dim="time", data_vars="minimal")
    np.testing.assert_array_equal(ds.lon.values, np.arange(177.0, 184.0, 1.0))  # cells touching 177..183
    times = pd.DatetimeIndex(ds.time.values)
    day_numbers = np.asarray((times - pd.Timestamp("2000-01-01")).days, dtype=float)
    in_file = np.mod(ds.lon.values, 360.0) if lon_360 else np.mod(ds.lon.values + 180.0, 360.0) - 180.0
    in_file_convention = np.where(in_file > 180, in_file - 360, in_file)  # as write_user_file gave field_value them
    np.testing.assert_allclose(ds.DUEXTTAU.values, field_value(day_numbers, ds.lat.values, in_file_convention), rtol=1e-5)


def test_period_not_covered_fails_cleanly(tmp_path):
    write_user_file(tmp_path / "user.nc", "2001-01-25", 7)  # ends 2001-01-31
    assert_fails_cleanly(tmp_path, tmp_path / "user.nc", r"2 day\(s\) of 2001-01-30..2001-02-02 are missing, first 2001-02-01")


def test_elevation_without_time(tmp_path):
    path = tmp_path / "dem.nc"
    lat, lon = np.arange(40.0, 20.0, -0.5), np.arange(50.0, 70.0, 0.5)
    xr.Dataset({"height": (("lat", "lon"), 100.0 + lat[:, None] + lon[None, :])},
               coords={"lat": lat, "lon": lon}).to_netcdf(path)
    out = tmp_path / "raw" / "elevation.nc"
    local.normalise(str(path), "height", [REGION], 1.0, [out], "elevation", {"units": "m"}, None)
    e = xr.open_dataset(out).elevation
    assert e.dims == ("lat", "lon") and np.all(np.diff(e.lat) > 0)
    np.testing.assert_allclose(e.values, 100.0 + e.lat.values[:, None] + e.lon.values[None, :])


@pytest.mark.slow
def test_workflow_normalises_local_files(tmp_path):
    files = tmp_path / "user"
    files.mkdir()
    write_user_file(files / "coarse.nc", "2001-01-29", 6, variable="aod_c", lat_descending=True)
    # the fine file reaches past fine_period: that truth is kept in raw/fine/2001-02.nc
    write_user_file(files / "fine.nc", "2001-01-30", 4, variable="aod_f", lon_360=True, lat=np.arange(28.0, 34.0, 0.25),
                    lon=np.arange(58.0, 64.0, 0.25))
    xr.Dataset({"z": (("lat", "lon"), np.full((24, 24), 500.0))},
               coords={"lat": np.arange(28.0, 34.0, 0.25), "lon": np.arange(58.0, 64.0, 0.25)}).to_netcdf(files / "dem.nc")
    cfg = {"data": {"source": "local", "coarse_period": ["2001-01-30", "2001-02-02"],
                    "fine_period": ["2001-01-30", "2001-01-31"], "raw_dir": "raw",
                    "local": {"coarse": {"path": str(files / "coarse.nc"), "variable": "aod_c"},
                              "fine": {"path": str(files / "fine.nc"), "variable": "aod_f"},
                              "elevation": {"path": str(files / "dem.nc"), "variable": "z"}}},
           "regions": {"r": {"lat": list(REGION.lat), "lon": list(REGION.lon)}}, "seasons": {"DJF": [12, 1, 2]}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    targets = ["raw/coarse/2001-01.nc", "raw/coarse/2001-02.nc", "raw/fine/2001-01.nc", "raw/fine/2001-02.nc",
               "raw/elevation.nc"]
    run = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory",
                          str(tmp_path), "--configfile", str(tmp_path / "config.yaml"), "-c1", *targets],
                         env=os.environ | {"PYTHONPATH": str(REPO / "src")}, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    for t in targets:
        io.read_field(tmp_path / t, "elevation" if "elevation" in t else "DUEXTTAU",
                      ("lat", "lon") if "elevation" in t else ("time", "lat", "lon"))
