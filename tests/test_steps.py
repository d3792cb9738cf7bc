"""Any regular time step: the step arithmetic, and the user's monthly and annual files read and refused."""

from __future__ import annotations

import cftime
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from diffscale.core import io, steps
from diffscale.core.config import ConfigError, validate_config
from diffscale.core.days import beyond_blocks, block_days
from diffscale.core.grids import Box
from diffscale.data.sources import local
from diffscale.data.split import make_split

REGION = Box((30.0, 32.0), (60.0, 62.0))
ATTRS = {"long_name": "sea surface temperature", "units": "K"}
LAT, LON = np.arange(25.0, 38.0, 1.0), np.arange(55.0, 68.0, 1.0)


# ---------------------------------------------------------------- the step arithmetic

def test_steps_of_a_period_start_at_their_stamp():
    assert list(steps.in_period("2001-01-15", "2001-04-30", "month")) == list(pd.to_datetime(
        ["2001-02-01", "2001-03-01", "2001-04-01"]))
    assert list(steps.in_period("2000-01-01", "2002-06-30", "year")) == list(pd.to_datetime(
        ["2000-01-01", "2001-01-01", "2002-01-01"]))
    assert steps.in_period("2000-02-27", "2000-03-01", "day").size == 4


def test_shift_and_window_count_steps_not_days():
    t = pd.Timestamp("2001-03-01")
    assert steps.shift(t, -1, "month") == pd.Timestamp("2001-02-01")
    assert steps.shift(t, 12, "month") == pd.Timestamp("2002-03-01")
    assert steps.shift(pd.Timestamp("2001-01-01"), -3, "year") == pd.Timestamp("1998-01-01")
    assert list(steps.window(t, 3, "month")) == list(pd.to_datetime(["2000-12-01", "2001-01-01", "2001-02-01"]))
    assert list(steps.window(t, 2, "day")) == list(pd.to_datetime(["2001-02-27", "2001-02-28"]))


def test_runs_split_where_a_step_is_missing():
    months = pd.to_datetime(["2001-01-01", "2001-02-01", "2001-04-01", "2001-05-01"])
    assert [list(r) for r in steps.runs(months, "month")] == [list(months[:2]), list(months[2:])]
    years = pd.to_datetime(["2001-01-01", "2002-01-01", "2003-01-01"])
    assert len(steps.runs(years, "year")) == 1


def test_bounds_span_the_step():
    b = steps.bounds(pd.to_datetime(["2001-02-01", "2004-02-01"]), "month")
    assert list(pd.DatetimeIndex(b[:, 1])) == list(pd.to_datetime(["2001-03-01", "2004-03-01"]))
    b = steps.bounds(pd.to_datetime(["2001-01-01"]), "year")
    assert pd.Timestamp(b[0, 1]) == pd.Timestamp("2002-01-01")


def test_months_holding_a_step_name_the_raw_files():
    assert steps.months_holding("2001-01-01", "2003-12-31", "year") == [(2001, 1), (2002, 1), (2003, 1)]
    assert steps.months_holding("2001-11-01", "2002-02-28", "month") == [(2001, 11), (2001, 12), (2002, 1), (2002, 2)]
    assert steps.months_holding("2001-01-20", "2001-02-03", "day") == [(2001, 1), (2001, 2)]


def test_classify_tells_the_step_and_names_what_breaks_it():
    step, bad = steps.classify(steps.in_period("2001-01-01", "2003-12-01", "month"))
    assert step == "month" and bad.empty
    step, bad = steps.classify(pd.to_datetime(["2001-01-01", "2001-02-01", "2001-04-01", "2001-05-01"]))
    assert step is None and list(bad) == [pd.Timestamp("2001-04-01")]


# ---------------------------------------------------------------- the split and blocks in steps

def test_monthly_split_counts_history_in_months_and_buffer_in_days():
    split = make_split([6, 7, 8], ("2000-01-01", "2009-12-31"), ("1990-01-01", "2009-12-31"), buffer_days=45,
                       test_fraction=0.2, val_fraction=0.1, seed=0, history=2, step="month")
    assert set(split.core.month) == {6, 7, 8} and split.core.size == 30 and (split.core.day == 1).all()
    # 45 days before a June start reach one month back: May is pooled, April is not
    assert pd.Timestamp("2003-05-01") in split.pool and pd.Timestamp("2003-04-01") not in split.pool
    for t in split.test:  # the 2 months after a test month have it in their history
        for k in (1, 2):
            assert steps.shift(t, k, "month") not in split.train
    assert split.beyond.size == 30 and split.beyond.max() < pd.Timestamp("2000-01-01")


def test_blocks_of_n_steps():
    assert beyond_blocks(("2000-01-01", "2001-12-31"), list(range(1, 13)), 6, "month") == [
        "2000-01-01", "2000-07-01", "2001-01-01", "2001-07-01"]
    assert beyond_blocks(("1950-01-01", "1999-12-31"), list(range(1, 13)), "year", "year")[:2] == ["1950", "1951"]
    beyond = steps.in_period("2000-01-01", "2001-12-31", "month")
    assert list(block_days(beyond, "2000-07-01", ("2000-01-01", "2001-12-31"), 6, "month")) == list(
        steps.in_period("2000-07-01", "2000-12-01", "month"))


# ---------------------------------------------------------------- the config

def base_config(**data):
    # Paths that exist: the config check refuses a data.local path that matches no file.
    files = {f: {"path": __file__, "variable": "v"} for f in ("coarse", "fine", "elevation")}
    return {"data": {"source": "local", "local": files} | data, "regions": {"r": {"lat": [30, 32], "lon": [60, 62]}},
            "seasons": {"ALL": list(range(1, 13))}}


def test_config_steps():
    assert validate_config(base_config(step="year"))["data"]["step"] == "year"
    with pytest.raises(ConfigError, match=r"config key seasons: with data.step year the only valid season is ALL"):
        validate_config(base_config(step="year") | {"seasons": {"DJF": [12, 1, 2], "JJA": [6, 7, 8]}})
    with pytest.raises(ConfigError, match=r"config key data.step: 'month' needs data.source local"):
        validate_config(base_config(step="month", source="synthetic"))
    with pytest.raises(ConfigError, match=r"config key data.step: 'week' is not one of"):
        validate_config(base_config(step="week"))


# ---------------------------------------------------------------- the user's files

def write_file(path, times, variable="sst", calendar="standard", values=None):
    """A user's file written through xarray: (time, lat, lon), CF time in days since 1900."""
    if values is None:
        values = np.arange(len(times), dtype=np.float32)[:, None, None] + np.zeros((1, LAT.size, LON.size), np.float32)
    times = [cftime.datetime(t.year, t.month, t.day, t.hour, calendar=calendar) for t in pd.DatetimeIndex(times)]
    ds = xr.Dataset({variable: (("time", "lat", "lon"), values)},
                    coords={"time": xr.coding.cftimeindex.CFTimeIndex(times), "lat": LAT, "lon": LON})
    ds.to_netcdf(path, encoding={"time": {"units": "days since 1900-01-01", "calendar": calendar}})
    return path


def normalise(pattern, tmp_path, period, step, required=None, **how):
    outs = [tmp_path / "raw" / io.MONTH_FORMAT.format(year=y, month=m) for y, m in steps.months_holding(*period, step)]
    local.normalise(str(pattern), "sst", [REGION], 1.0, outs, "sst", ATTRS, period, required, step=step, **how)
    return outs


@pytest.mark.parametrize("calendar", ["standard", "noleap", "360_day"])
def test_monthly_file_stamped_mid_month_is_read_at_month_starts(tmp_path, calendar):
    mid = pd.date_range("2000-01-01", "2002-12-01", freq="MS") + pd.Timedelta(days=14)
    write_file(tmp_path / "sst.nc", mid, calendar=calendar)
    outs = normalise(tmp_path / "sst.nc", tmp_path, ("2000-01-01", "2002-12-31"), "month")
    assert len(outs) == 36
    march = xr.open_dataset(tmp_path / "raw" / "2001-03.nc").load()
    assert list(pd.DatetimeIndex(march.time.values)) == [pd.Timestamp("2001-03-01")]
    assert float(march.sst.values[0].mean()) == 14.0  # the 15th value of the file, unchanged
    assert list(pd.DatetimeIndex(march.time_bnds.values[0])) == list(pd.to_datetime(["2001-03-01", "2001-04-01"]))


def test_annual_file_gives_january_files_with_year_bounds(tmp_path):
    write_file(tmp_path / "tas.nc", pd.date_range("1950-07-02", "1999-07-02", freq="YS") + pd.Timedelta(days=182),
               calendar="noleap")
    outs = normalise(tmp_path / "tas.nc", tmp_path, ("1960-01-01", "1969-12-31"), "year")
    assert [o.name for o in outs] == [f"{y}-01.nc" for y in range(1960, 1970)]
    ds = xr.open_dataset(outs[3]).load()
    assert list(pd.DatetimeIndex(ds.time.values)) == [pd.Timestamp("1963-01-01")]
    assert float(ds.sst.values.mean()) == 1963 - 1951  # the file's first stamp is mid-1951
    assert list(pd.DatetimeIndex(ds.time_bnds.values[0])) == list(pd.to_datetime(["1963-01-01", "1964-01-01"]))


def assert_refused(tmp_path, pattern, period, step, match, **how):
    with pytest.raises(io.DataValidationError, match=match):
        normalise(pattern, tmp_path, period, step, **how)
    assert not (tmp_path / "raw").exists() or not any((tmp_path / "raw").iterdir())


def test_a_month_missing_is_refused_naming_it(tmp_path):
    months = pd.date_range("2000-01-01", "2000-12-01", freq="MS").delete([4, 8])
    write_file(tmp_path / "gappy.nc", months)
    assert_refused(tmp_path, tmp_path / "gappy.nc", ("2000-01-01", "2000-12-31"), "month",
                   r"gappy\.nc: irregular monthly steps: no time in the month of 2000-05-01, 2000-09-01")


def test_two_times_in_one_month_are_refused_naming_it(tmp_path):
    times = pd.date_range("2000-01-01", "2000-12-01", freq="MS").append(pd.DatetimeIndex(["2000-12-20"]))
    write_file(tmp_path / "twice.nc", times)
    assert_refused(tmp_path, tmp_path / "twice.nc", ("2000-01-01", "2000-12-31"), "month",
                   r"twice\.nc: irregular monthly steps: more than one time in the month of 2000-12-01")


def test_mixed_steps_are_refused_naming_where(tmp_path):
    times = pd.date_range("2000-01-01", periods=10, freq="10D")
    write_file(tmp_path / "mixed.nc", times)
    assert_refused(tmp_path, tmp_path / "mixed.nc", ("2000-01-01", "2000-03-31"), "month",
                   r"mixed\.nc: time step of 10 days is not a day, a month or a year")


def test_a_file_of_another_step_names_the_key(tmp_path):
    write_file(tmp_path / "daily.nc", pd.date_range("2000-01-01", "2000-03-31"))
    assert_refused(tmp_path, tmp_path / "daily.nc", ("2000-01-01", "2000-03-31"), "month",
                   r"daily\.nc: time step is a day but data\.step is 'month': set data\.step: day")


def test_sub_daily_data_are_never_averaged_to_months(tmp_path):
    write_file(tmp_path / "hourly.nc", pd.date_range("2000-01-01", "2000-03-31", freq="6h"))
    assert_refused(tmp_path, tmp_path / "hourly.nc", ("2000-01-01", "2000-03-31"), "month",
                   r"hourly\.nc: time step is 6 hours \(sub-daily\); sub-daily data can only be averaged to days",
                   subdaily="mean")


def test_a_monthly_record_needs_every_required_month(tmp_path):
    write_file(tmp_path / "a.nc", pd.date_range("2000-01-01", "2000-06-01", freq="MS"))
    write_file(tmp_path / "b.nc", pd.date_range("2000-08-01", "2000-12-01", freq="MS"))
    assert_refused(tmp_path, tmp_path / "*.nc", ("2000-01-01", "2000-12-31"), "month",
                   r"1 month\(s\) of 2000-01-01..2000-12-31 are missing, first 2000-07-01")


def test_coarse_and_fine_of_different_steps_say_how_they_differ(tmp_path):
    coarse = write_file(tmp_path / "coarse.nc", pd.date_range("2000-01-01", "2000-12-01", freq="MS"))
    fine = write_file(tmp_path / "fine.nc", pd.date_range("2000-01-01", "2000-12-31"))
    with pytest.raises(io.DataValidationError, match=r"coarse\.nc: time step is a month, but .*fine\.nc has a day step: "
                                                     r"coarse and fine data must share one step"):
        normalise(coarse, tmp_path, ("2000-01-01", "2000-12-31"), "month", partner=(str(fine), "sst"))
    hourly = write_file(tmp_path / "hourly.nc", pd.date_range("2000-01-01", "2000-01-10", freq="3h"))
    local.check_shared_step((str(fine), "sst"), (str(hourly), "sst"), subdaily="mean")  # averaged: both daily
    with pytest.raises(io.DataValidationError, match=r"has sub-daily step"):
        local.check_shared_step((str(fine), "sst"), (str(hourly), "sst"))


def test_covered_steps_and_fine_months_of_a_monthly_record(tmp_path):
    write_file(tmp_path / "fine.nc", pd.date_range("2000-01-01", "2004-12-01", freq="MS") + pd.Timedelta(days=14))
    months = local.fine_months(str(tmp_path / "fine.nc"), "sst", ("1990-01-01", "2009-12-31"),
                               ("2002-01-01", "2004-12-31"), "month")
    assert months[0] == (2000, 1) and len(months) == 60
    truth = local.truth_days(str(tmp_path / "fine.nc"), "sst", ("1990-01-01", "2009-12-31"),
                             ("2002-01-01", "2004-12-31"), "month")
    assert list(truth) == list(steps.in_period("2000-01-01", "2001-12-01", "month"))
