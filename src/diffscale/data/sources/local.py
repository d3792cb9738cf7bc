"""The user's own netCDF files, normalised into the workflow's monthly raw files.

Accepted: any variable name; any rectilinear lat/lon grid (1-D coordinates found by
name or CF attributes), latitude ascending or descending, longitude 0..360 or
-180..180; any CF calendar; one regular step, the config's ``data.step``: daily, monthly
or annual (a month or a year stamped anywhere inside it, e.g. mid-month, is stamped at its
start); sub-daily steps averaged to daily means when ``data.local.subdaily`` is ``mean``.
Written: the variable renamed to
``data.variable``, lat/lon ascending (longitudes continuous over the regions: in -180..180,
or past 180 for regions across the antimeridian), one time stamp per step at 00:00 of its start,
cropped to the union of the region boxes plus the margin (cells whose extent touches
that box), over the configured period.

Calendars (:mod:`diffscale.data.sources.calendars`): the date labels are kept; days a
model calendar lacks are interpolated, a 360_day year is spread over the real year.
Real gaps in the files (a day missing whatever the calendar) are not filled: they are
reported when they fall in a period the workflow needs.

Refused, with an error that names the file: a step other than ``data.step`` (monthly
means are never interpolated to days: that would invent the day-to-day variability the
model learns), sub-daily steps unless asked for, irregular steps (a month missing or
repeated in a monthly file: the dates are named), curvilinear grids, non-monotonic
coordinates, extra dimensions longer than one.

Nothing is written until every file is read and the whole record is validated, so a
failure leaves no output behind.
"""

from __future__ import annotations

import dataclasses
import glob
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from diffscale.core import cf, io, steps
from diffscale.data.sources.calendars import (calendar_gaps, calendar_of, day_labels, fill_calendar_gaps, real_dates,
                                              file_step, to_steps)
from diffscale.core.grids import Box, centres_to_bounds

log = logging.getLogger("diffscale.local")

LAT_NAMES = ("lat", "latitude", "nav_lat")
LON_NAMES = ("lon", "longitude", "nav_lon")
TIME_NAMES = ("time", "t", "date")
CF_AXIS = {"latitude": "Y", "longitude": "X", "time": "T"}


def expand(pattern: str) -> list[Path]:
    """The files a path or glob names, sorted; an error when there are none."""
    paths = sorted(Path(p) for p in glob.glob(os.path.expanduser(pattern)))
    if not paths:
        raise io.DataValidationError(pattern, "no file matches this path or glob")
    return paths


def _find_axis(da: xr.DataArray, names: Sequence[str], standard_name: str, units: Sequence[str]) -> str | None:
    for dim in da.dims:
        coord = da.coords.get(dim)
        attrs = coord.attrs if coord is not None else {}
        if (str(dim).lower() in names or attrs.get("standard_name") == standard_name
                or attrs.get("units") in units or attrs.get("axis") == CF_AXIS[standard_name]):
            return str(dim)
    return None


def _axes(da: xr.DataArray, path: Path, with_time: bool) -> tuple[str | None, str, str]:
    lat = _find_axis(da, LAT_NAMES, "latitude", ("degrees_north", "degree_north", "degrees_N", "degree_N"))
    lon = _find_axis(da, LON_NAMES, "longitude", ("degrees_east", "degree_east", "degrees_E", "degree_E"))
    for name, axis in (("latitude", lat), ("longitude", lon)):
        if axis is None:
            two_d = [c for c in da.coords if da.coords[c].ndim == 2 and c.lower() in LAT_NAMES + LON_NAMES]
            hint = " (2-D coordinates found: curvilinear grids are not supported, regrid to a lat/lon grid first)" if two_d else ""
            raise io.DataValidationError(path, f"variable '{da.name}' has no {name} dimension with a 1-D coordinate "
                                               f"(dims {tuple(da.dims)}){hint}")
        if axis not in da.coords:
            raise io.DataValidationError(path, f"dimension '{axis}' has no coordinate values")
    time = _find_axis(da, TIME_NAMES, "time", ()) if with_time else None
    if with_time and time is None:
        raise io.DataValidationError(path, f"variable '{da.name}' has no time dimension (dims {tuple(da.dims)})")
    extra = [d for d in da.dims if d not in (lat, lon, time)]
    too_long = [d for d in extra if da.sizes[d] > 1]
    if too_long:
        raise io.DataValidationError(path, f"variable '{da.name}' has extra dimension(s) {too_long} longer than 1; "
                                           "select one level first")
    return time, lat, lon


def _monotonic(values: np.ndarray, path: Path, name: str) -> None:
    if not np.all(np.isfinite(values)):
        raise io.DataValidationError(path, f"coordinate '{name}' holds missing values")
    d = np.diff(values)
    if values.size < 2 or not (np.all(d > 0) or np.all(d < 0)):
        raise io.DataValidationError(path, f"coordinate '{name}' must be strictly monotonic with at least 2 values")


def normalise_grid(da: xr.DataArray, path: Path, box: Box) -> xr.DataArray:
    """(..., lat, lon) with lat ascending and lon ascending and continuous over ``box``.

    Longitudes in either convention are wrapped into the 360-degree frame centred on the
    box (:attr:`Box.frame_west`), so a box across the antimeridian sees one continuous
    strip; a global file's seam column is not duplicated.
    """
    _monotonic(da.lat.values, path, "lat")
    _monotonic(da.lon.values, path, "lon")
    if da.lat.values.min() < -90 or da.lat.values.max() > 90:
        raise io.DataValidationError(path, "latitudes outside -90..90")
    west, lon = box.frame_west, da.lon.values
    outside = (lon < west) | (lon >= west + 360.0)  # wrapped only where needed, so in-frame values stay exact
    da = da.assign_coords(lon=np.where(outside, west + np.mod(lon - west, 360.0), lon))
    da = da.sortby("lat").sortby("lon")
    if np.any(np.diff(da.lon.values) <= 1e-9):
        raise io.DataValidationError(path, "longitudes repeat modulo 360 (a global file with both -180 and 180, "
                                           "or 0 and 360?); keep one of them")
    return da


def crop(da: xr.DataArray, box: Box, margin: float, path: str | Path) -> xr.DataArray:
    """Cells whose extent touches ``box`` plus ``margin`` (as far as the data go).

    The box itself (the union of the regions) must lie inside the data.
    """
    lat_b, lon_b = centres_to_bounds(da.lat.values), centres_to_bounds(da.lon.values)
    if box.lat[0] < lat_b[0] - 1e-9 or box.lat[1] > lat_b[-1] + 1e-9 or box.lon[0] < lon_b[0] - 1e-9 or box.lon[1] > lon_b[-1] + 1e-9:
        raise io.DataValidationError(path, f"the regions (lat {list(box.lat)}, lon {list(box.lon)}) are not inside the data: "
                                           f"regions must lie within the cells' edges, lat {lat_b[0]:.6g}..{lat_b[-1]:.6g}, "
                                           f"lon {lon_b[0]:.6g}..{lon_b[-1]:.6g}")
    box = box.padded(margin)
    ys = (lat_b[1:] > box.lat[0]) & (lat_b[:-1] < box.lat[1])
    xs = (lon_b[1:] > box.lon[0]) & (lon_b[:-1] < box.lon[1])
    return da.isel(lat=np.flatnonzero(ys), lon=np.flatnonzero(xs))


def read_local(pattern: str, variable: str, box: Box, margin: float = 0.0, with_time: bool = True,
               step: str = "day", subdaily: str = "refuse") -> xr.DataArray:
    """Read, validate and normalise the user's field; (time, lat, lon) or (lat, lon).

    ``step``: the record's step (``data.step``); ``subdaily``: ``mean`` averages sub-daily
    steps to daily means, ``refuse`` refuses them (``data.local.subdaily``).
    """
    parts, calendars = [], []
    for path in expand(pattern):
        try:
            ds = xr.open_dataset(path, decode_times=xr.coders.CFDatetimeCoder(use_cftime=True))
        except Exception as exc:  # truncated or not netCDF: netCDF4/h5py raise several types
            raise io.DataValidationError(path, f"cannot be read as netCDF ({type(exc).__name__}: {exc})") from None
        with ds:
            if variable not in ds.data_vars:
                have = ", ".join(map(str, ds.data_vars)) or "none"
                raise io.DataValidationError(path, f"variable '{variable}' not found (variables present: {have})")
            da = ds[variable]
            time, lat, lon = _axes(da, path, with_time)
            da = da.rename({lat: "lat", lon: "lon"} | ({time: "time"} if time and time != "time" else {}))
            keep = ("time", "lat", "lon") if with_time else ("lat", "lon")
            da = da.squeeze([d for d in da.dims if d not in keep], drop=True).transpose(*keep)
            da = da.reset_coords(drop=True)
            if with_time and not (isinstance(da.indexes["time"], (xr.CFTimeIndex, pd.DatetimeIndex))):
                raise io.DataValidationError(path, "coordinate 'time' could not be decoded as dates (check its units and calendar)")
            da = crop(normalise_grid(da, path, box), box, margin, path)
            try:
                da = da.load().astype(np.float64)
            except Exception as exc:  # a file cut short fails when its data are read
                raise io.DataValidationError(path, f"data cannot be read ({type(exc).__name__}: {exc}); is the file truncated?") from None
        if with_time:
            calendars.append((path, calendar_of(da.indexes["time"])))
            da = to_steps(da, path, step, subdaily)
        parts.append((path, da))
    first_path, first = parts[0]
    for path, da in parts[1:]:
        if not (np.allclose(da.lat, first.lat) and np.allclose(da.lon, first.lon)):
            raise io.DataValidationError(path, f"grid differs from {first_path}")
    if not with_time:
        return first
    da = xr.concat([d.assign_coords(lat=first.lat, lon=first.lon) for _, d in parts], dim="time").sortby("time")
    dup = pd.DatetimeIndex(da.time.values).duplicated()
    if dup.any():
        raise io.DataValidationError(pattern, f"{step} {pd.Timestamp(da.time.values[dup][0]).date()} appears in more than one file")
    for path, calendar in calendars[1:]:
        if calendar != calendars[0][1]:
            raise io.DataValidationError(path, f"calendar '{calendar}' differs from '{calendars[0][1]}' of {calendars[0][0]}")
    # a model calendar's missing days exist only between days
    return fill_calendar_gaps(da, calendars[0][1]) if step == "day" else da


def select_days(da: xr.DataArray, period: tuple[str, str], required: tuple[str, str], pattern: str,
                step: str = "day") -> xr.DataArray:
    """The steps of ``period`` the files have; every step of ``required`` must be there."""
    have = pd.DatetimeIndex(da.time.values)
    missing = steps.in_period(*required, step).difference(have)
    if len(missing):
        raise io.DataValidationError(pattern, f"the files cover {len(have)} {step}s of {have[0].date()}..{have[-1].date()}; "
                                              f"{len(missing)} {step}(s) of {required[0]}..{required[1]} are missing, first "
                                              f"{missing[0].date()}")
    return da.sel(time=steps.in_period(*period, step).intersection(have))


def _times(path: Path, variable: str) -> pd.Index:
    """A file's decoded time coordinate of ``variable``, read without its data."""
    try:
        with xr.open_dataset(path, decode_times=xr.coders.CFDatetimeCoder(use_cftime=True)) as ds:
            if variable not in ds.data_vars:
                raise io.DataValidationError(path, f"variable '{variable}' not found")
            time, _, _ = _axes(ds[variable], path, True)
            return ds.indexes[time]
    except io.DataValidationError:
        raise
    except Exception as exc:
        raise io.DataValidationError(path, f"cannot be read as netCDF ({type(exc).__name__}: {exc})") from None


def covered_days(pattern: str, variable: str, step: str = "day") -> pd.DatetimeIndex:
    """Real steps (days, months or years, at their start) the user's files hold, from their time coordinates only (cheap)."""
    days = []
    for path in expand(pattern):
        times = _times(path, variable)
        if step != "day":
            days.append(pd.DatetimeIndex(sorted({pd.Timestamp(y, m if step == "month" else 1, 1)
                                                 for y, m, _ in day_labels(times)})))
            continue
        real = real_dates(sorted(set(day_labels(times))), calendar_of(times)).dropna()
        days.append(real.union(calendar_gaps(calendar_of(times), real[0], real[-1])) if len(real) else real)
    return pd.DatetimeIndex(sorted(set().union(*days)))


def files_step(pattern: str, variable: str) -> tuple[Path, str] | None:
    """The first of the user's files with two times or more and its step (time coordinates only); None if none has."""
    for path in expand(pattern):
        times = _times(path, variable)
        step = file_step(times, path)
        if step is not None:
            return path, step
    return None


def check_shared_step(field: tuple[str, str], partner: tuple[str, str], subdaily: str = "refuse") -> None:
    """Coarse and fine files must share a step: an error naming both files and their steps when they differ.

    ``field`` and ``partner``: (path or glob, variable). Sub-daily files count as daily
    when ``subdaily`` is ``mean``.
    """
    found = [files_step(*field), files_step(*partner)]
    if None in found:
        return  # a record of one time per file: each file is checked against data.step alone
    (path, step), (other_path, other) = found
    as_day = {"subdaily": "day"} if subdaily == "mean" else {}
    if as_day.get(step, step) != as_day.get(other, other):
        raise io.DataValidationError(path, f"time step is {'sub-daily' if step == 'subdaily' else 'a ' + step}, but "
                                           f"{other_path} has {'sub-daily' if other == 'subdaily' else 'a ' + other} "
                                           "step: coarse and fine data must share one step (data.step)")


def fine_months(pattern: str, variable: str, coarse_period: tuple[str, str],
                fine_period: tuple[str, str], step: str = "day") -> list[tuple[int, int]]:
    """Months of the fine raw record: fine_period's, plus those of coarse_period the files reach.

    Fine truth outside fine_period is never trained on; later stages score the
    reconstruction against it. Unreadable files give fine_period's months only (the
    job then fails with the reason).
    """
    months = set(steps.months_holding(*fine_period, step))
    try:
        days = covered_days(pattern, variable, step)
    except io.DataValidationError:
        return sorted(months)
    inside = days[(days >= pd.Timestamp(coarse_period[0])) & (days <= pd.Timestamp(coarse_period[1]))]
    return sorted(months | set(zip(inside.year, inside.month)))


def truth_days(pattern: str, variable: str, coarse_period: tuple[str, str],
               fine_period: tuple[str, str], step: str = "day") -> pd.DatetimeIndex:
    """Days of coarse_period outside fine_period that the user's fine files hold.

    These are the 'beyond' days with fine truth: scored, never trained on. Unreadable
    files give none (the normalise job then fails with the reason).
    """
    try:
        days = covered_days(pattern, variable, step)
    except io.DataValidationError:
        return pd.DatetimeIndex([])
    inside_coarse = (days >= pd.Timestamp(coarse_period[0])) & (days <= pd.Timestamp(coarse_period[1]))
    outside_fine = (days < pd.Timestamp(fine_period[0])) | (days > pd.Timestamp(fine_period[1]))
    return days[inside_coarse & outside_fine]


def normalise(pattern: str, source_variable: str, boxes: Sequence[Box], margin: float,
              out_paths: Sequence[str | os.PathLike], variable: str, attrs: dict,
              period: tuple[str, str] | None, required: tuple[str, str] | None = None,
              metadata: cf.Metadata | None = None, step: str = "day", subdaily: str = "refuse",
              partner: tuple[str, str] | None = None) -> list[Path]:
    """One field of data.local -> the raw files ``out_paths`` (monthly files, or elevation.nc).

    Writes the days of ``period`` the files hold; every day of ``required`` (default:
    ``period``) must be there. ``period`` None means a time-invariant field (elevation).
    ``metadata``: the config's CF/ACDD attributes; ``step`` and ``subdaily``: as for :func:`read_local`;
    ``partner``: the other record's (path, variable), which must have the same step.
    """
    with_time = period is not None
    if with_time and partner is not None:
        check_shared_step((pattern, source_variable), partner, subdaily)
    metadata = dataclasses.replace(metadata or cf.Metadata(), step=step)  # the time bounds span the step
    da = read_local(pattern, source_variable, Box.union(list(boxes)), margin, with_time, step, subdaily)
    global_attrs = {"source": f"user files {pattern} (variable {source_variable})"}
    history = "normalised by diffscale.data.sources.local"
    if not with_time:
        ds = io.field_dataset(da.values.astype(np.float32), None, da.lat.values, da.lon.values, variable, attrs, global_attrs)
        io.validate_field(ds, variable, pattern, ("lat", "lon"))
        return [io.write_netcdf(ds, out_paths[0], metadata=metadata, history=history)]
    da = select_days(da, period, required or period, pattern, step)
    times = pd.DatetimeIndex(da.time.values)
    ds = io.field_dataset(da.values.astype(np.float32), times, da.lat.values, da.lon.values, variable, attrs, global_attrs)
    io.validate_field(ds, variable, pattern)
    expected = sorted(Path(p).name for p in out_paths)
    months = sorted({io.month_file(".", y, m).name for y, m in zip(times.year, times.month)})
    if expected != months:
        raise io.DataValidationError(pattern, f"the files hold the months {months}, the workflow expected {expected} "
                                              "(did the files change since the run started?)")
    written = io.write_monthly(ds, Path(out_paths[0]).parent, metadata, history)
    log.info("%s: %d steps on %d x %d cells -> %d monthly files", pattern, ds.sizes["time"], ds.sizes["lat"],
             ds.sizes["lon"], len(written))
    return written
