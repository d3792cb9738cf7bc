"""Time axes of the user's files: model calendars, steps, and one value per real day.

Calendars: the date labels are kept (1 March stays 1 March). Days a model calendar
lacks (29 February in noleap/365_day) are filled by linear interpolation in time
between the neighbouring days. A 360_day calendar is spread over the real year: its
360 days map to 360 of the 365 or 366 real days, model day k of a year going to real
day floor((k + 0.5) n / 360), and the 5 or 6 days in between are interpolated the same
way. Days a calendar has but reality lacks (all_leap's 29 February in a common year)
are dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from diffscale.core import io

REAL_CALENDARS = ("standard", "gregorian", "proleptic_gregorian")


def real_dates(labels: Sequence[tuple[int, int, int]], calendar: str) -> pd.DatetimeIndex:
    """Real dates of model-calendar (year, month, day) labels; NaT where none exists.

    360_day: day k (0..359) of a model year goes to real day floor((k + 0.5) n / 360)
    of that year (n = 365 or 366), spreading the year evenly. Every other calendar
    keeps its labels; a label reality lacks (29 February of a common year) is NaT.
    """
    out = []
    for y, m, d in labels:
        if calendar == "360_day":
            n = 366 if pd.Timestamp(y, 1, 1).is_leap_year else 365
            k = (m - 1) * 30 + (d - 1)
            out.append(pd.Timestamp(y, 1, 1) + pd.Timedelta(days=int((k + 0.5) * n / 360)))
        else:
            try:
                out.append(pd.Timestamp(y, m, d))
            except ValueError:
                out.append(pd.NaT)
    return pd.DatetimeIndex(out)


def fill_days(values: np.ndarray, present: np.ndarray) -> np.ndarray:
    """(time, lat, lon) with the days not ``present`` set linearly from their neighbours."""
    out = values.copy()
    have = np.flatnonzero(present)
    for i in np.flatnonzero(~present):
        before, after = have[have < i][-1], have[have > i][0]  # inner gaps only: the range starts and ends on data
        w = (i - before) / (after - before)
        out[i] = (1 - w) * values[before] + w * values[after]
    return out


def calendar_of(times: pd.Index) -> str:
    return times.calendar if isinstance(times, xr.CFTimeIndex) else "standard"


def check_steps(times: pd.Index, path: str | Path) -> None:
    """Strictly increasing, and daily or finer."""
    if times.size < 2:
        return
    seconds = np.array([(t - times[0]).total_seconds() for t in times]) if isinstance(times, xr.CFTimeIndex) \
        else (pd.DatetimeIndex(times) - times[0]).total_seconds().values
    steps = np.diff(seconds)
    if np.any(steps <= 0):
        raise io.DataValidationError(path, "time is not strictly increasing (overlapping or unsorted files?)")
    median_days = float(np.median(steps)) / 86400.0
    if median_days > 1.0 + 1e-6:
        raise io.DataValidationError(path, f"time step is {median_days:.3g} days; the workflow needs daily (or finer) data, "
                                           "because interpolating coarser steps to days would invent the day-to-day "
                                           "variability the model learns")


def day_labels(times: pd.Index) -> list[tuple[int, int, int]]:
    return [(t.year, t.month, t.day) for t in times]


def to_real_days(da: xr.DataArray, path: str | Path) -> xr.DataArray:
    """Any CF calendar, daily or finer steps -> one value per real day at midnight.

    Sub-daily steps are averaged within each (model) day. Days the model calendar
    lacks are not filled here: see :func:`fill_calendar_gaps`.
    """
    times = da.indexes["time"]
    check_steps(times, path)
    labels = day_labels(times)
    key = xr.DataArray([f"{y:04d}-{m:02d}-{d:02d}" for y, m, d in labels], dims="time", name="day")
    da = da.groupby(key).mean("time").rename(day="time")
    real = real_dates([tuple(map(int, v.split("-"))) for v in da.time.values], calendar_of(times))
    keep = ~pd.isna(real)
    return da.isel(time=np.flatnonzero(keep)).assign_coords(time=real[keep])


def calendar_gaps(calendar: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.DatetimeIndex:
    """Real days in [start, end] that no date of the model calendar maps to."""
    if calendar in REAL_CALENDARS:
        return pd.DatetimeIndex([])
    import cftime  # noqa: PLC0415 (model calendars only)

    labels = [(y, m, d) for y in range(start.year, end.year + 1) for m in range(1, 13)
              for d in range(1, cftime.datetime(y, m, 1, calendar=calendar).daysinmonth + 1)]
    image = real_dates(labels, calendar).dropna()
    return pd.date_range(start, end, freq="D").difference(image)


def fill_calendar_gaps(da: xr.DataArray, calendar: str) -> xr.DataArray:
    """Insert the days a model calendar lacks, linear in time between their neighbours."""
    have = pd.DatetimeIndex(da.time.values)
    gaps = calendar_gaps(calendar, have[0], have[-1]).difference(have)
    if gaps.empty:
        return da
    full = have.union(gaps)
    values = da.reindex(time=full).values
    return da.reindex(time=full).copy(data=fill_days(values, full.isin(have)))
