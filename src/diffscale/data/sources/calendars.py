"""Time axes of the user's files: model calendars, steps, and one value per real step.

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

from diffscale.core import io, steps

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


def _seconds(times: pd.Index) -> np.ndarray:
    if isinstance(times, xr.CFTimeIndex):
        return np.array([(t - times[0]).total_seconds() for t in times])
    return (pd.DatetimeIndex(times) - times[0]).total_seconds().values


# Median spacings (days) of each step, model calendars included (360_day months and years).
SPACINGS = {"day": (1.0 - 1e-6, 1.5), "month": (27.5, 31.5), "year": (359.5, 366.5)}


def file_step(times: pd.Index, path: str | Path) -> str | None:
    """The step of a file's time axis: ``subdaily``, ``day``, ``month``, ``year``; None for one time.

    Strictly increasing times are required. The step is told from the median spacing
    (so a model calendar's 30-day months or 365-day years count as months and years);
    a spacing that is none of them is refused, naming the dates where it breaks.
    """
    if times.size < 2:
        return None  # one time alone says nothing (a file per month): data.step says
    gaps = np.diff(_seconds(times)) / 86400.0
    if np.any(gaps <= 0):
        bad = [str(times[i + 1]) for i in np.flatnonzero(gaps <= 0)[:5]]
        raise io.DataValidationError(path, f"time is not strictly increasing at {', '.join(bad)} (overlapping or unsorted files?)")
    median = float(np.median(gaps))
    if median < 1.0 - 1e-6:
        return "subdaily"
    for step, (lo, hi) in SPACINGS.items():
        if lo <= median <= hi:
            return step
    odd = [str(times[i + 1]) for i in np.flatnonzero(np.abs(gaps - median) > 0.5)[:5]] or [str(times[1])]
    raise io.DataValidationError(path, f"time step of {median:.3g} days is not a day, a month or a year "
                                       f"(irregular steps, first at {', '.join(odd)}); the workflow needs one regular step")


def day_labels(times: pd.Index) -> list[tuple[int, int, int]]:
    return [(t.year, t.month, t.day) for t in times]


def to_steps(da: xr.DataArray, path: str | Path, step: str = "day", subdaily: str = "refuse") -> xr.DataArray:
    """Any CF calendar -> one value per real step, stamped 00:00 at the step's start.

    Daily data: one value per real day (days the model calendar lacks are not filled
    here: see :func:`fill_calendar_gaps`). Sub-daily steps are averaged within each
    (model) day only when ``subdaily`` is ``mean`` (config ``data.local.subdaily``).
    Monthly or annual data: each stamp goes to the start of its month or year (a
    mid-month stamp is the month's mean), and every month or year between the file's
    first and last must be there exactly once.
    """
    times = da.indexes["time"]
    found = file_step(times, path) or step
    if found == "subdaily":
        hours = float(np.median(np.diff(_seconds(times)))) / 3600.0
        if step != "day" or subdaily != "mean":
            hint = ("set data.local.subdaily: mean to average them to daily means" if step == "day"
                    else f"sub-daily data can only be averaged to days, and data.step is {step!r}")
            raise io.DataValidationError(path, f"time step is {hours:.3g} hours (sub-daily); {hint}")
        found = "day"
    if found != step:
        raise io.DataValidationError(path, f"time step is a {found} but data.step is {step!r}: set data.step: {found} "
                                           "(coarse and fine files must share it)")
    labels = day_labels(times)
    if step == "day":
        key = xr.DataArray([f"{y:04d}-{m:02d}-{d:02d}" for y, m, d in labels], dims="time", name="day")
        da = da.groupby(key).mean("time").rename(day="time")
        real = real_dates([tuple(map(int, v.split("-"))) for v in da.time.values], calendar_of(times))
        keep = ~pd.isna(real)
        return da.isel(time=np.flatnonzero(keep)).assign_coords(time=real[keep])
    # a month or a year is one stamp whatever the calendar: its start in the real calendar
    starts = pd.DatetimeIndex([pd.Timestamp(y, m if step == "month" else 1, 1) for y, m, _ in labels])
    repeated = starts[starts.duplicated()]
    if len(repeated):
        raise io.DataValidationError(path, f"irregular {step}ly steps: more than one time in the {step} of "
                                           f"{steps.describe(repeated.unique())}")
    expected = steps.in_period(starts[0], starts[-1], step)
    missing = expected.difference(starts)
    if len(missing):
        raise io.DataValidationError(path, f"irregular {step}ly steps: no time in the {step} of "
                                           f"{steps.describe(missing)}")
    return da.assign_coords(time=starts)


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
