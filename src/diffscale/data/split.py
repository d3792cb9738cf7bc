"""Per region and season: cropped records, seeded day lists without leakage, the scaler.

Files (the contract every later stage reads), per region:
``fine.nc`` (fine record over data.fine_period), ``coarse_on_fine.nc`` (coarse record on
the fine grid over data.coarse_period), a ``<name>.nc`` per static field the data
have (``elevation.nc``; none where the user gave no elevation; fine.nc's global attribute
``static_fields`` names them, :func:`static_fields`) and, where fine truth exists
outside the fine period, ``truth.nc``; per region and season ``days.json`` and
``scaler.json``.

Every list and record holds steps of ``data.step`` (days, months or years); the
``history`` before a step counts steps, ``buffer_days`` stays days.

No leakage: a training target's history window (the ``history`` steps before it) never
holds a test day, test days are never training or validation days, and the scaler sees
the fine values of training days only.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from diffscale.core import cf, steps
from diffscale.core import io as dio
from diffscale.core.days import DaySplit
from diffscale.core.grids import Box, Grid, grid_of
from diffscale.core.transform import Scaler

# fine.nc's global attribute naming the region's static fields, space-separated ("" for none).
STATIC_ATTR = "static_fields"


def static_fields(fine_path: str | os.PathLike) -> tuple[str, ...]:
    """The static fields a region's split holds (each ``<name>.nc`` beside ``fine_path``), in channel order.

    Split files written before the attribute existed all held elevation.
    """
    attrs = _month_header(fine_path, timed=False)[1]
    return tuple(str(attrs.get(STATIC_ATTR, "elevation")).split())


def season_days(start: str, end: str, months: Iterable[int], step: str = "day") -> pd.DatetimeIndex:
    days = steps.in_period(start, end, step)
    return days[days.month.isin(list(months))]


def make_split(months: Sequence[int], fine_period: Sequence[str], coarse_period: Sequence[str],
               buffer_days: int, test_fraction: float, val_fraction: float, seed: int,
               history: int, step: str = "day") -> DaySplit:
    """Seeded day lists of one season, of steps of ``step``.

    core: the season's steps inside the fine period; pool: core plus the steps that lie
    within ``buffer_days`` days before a core step (inside the fine period); test: ``round(test_fraction * |core|)``
    core days (at least one); val: ``round(val_fraction * |core|)`` of the remaining core
    days; train: pool without test and val days and without any day whose ``history``
    previous steps hold a test day; beyond: the season's steps of the coarse period
    outside the fine period.
    """
    f0, f1 = pd.Timestamp(fine_period[0]), pd.Timestamp(fine_period[1])
    core = season_days(fine_period[0], fine_period[1], months, step)
    if core.size < 2:
        raise ValueError(f"season with months {list(months)} has {core.size} day(s) inside data.fine_period "
                         f"{list(fine_period)}: need at least 2 (one test day and one other)")
    if step == "day":
        offsets = pd.to_timedelta(np.arange(buffer_days + 1), unit="D")
        pool = pd.DatetimeIndex(np.unique((core.values[:, None] - offsets.values[None, :]).ravel()))
        pool = pool[(pool >= f0) & (pool <= f1)]
    else:
        pool = steps.within_days(core, steps.in_period(f0, f1, step), buffer_days)

    rng = np.random.default_rng(seed)
    n_test = max(1, int(round(test_fraction * core.size)))
    n_val = int(round(val_fraction * core.size))
    if n_test + n_val >= core.size:
        raise ValueError(f"split.test_fraction={test_fraction} and split.val_fraction={val_fraction} leave no "
                         f"training core day out of {core.size}")
    test = pd.DatetimeIndex(np.sort(rng.choice(core.values, n_test, replace=False)))
    rest = core.difference(test)
    val = pd.DatetimeIndex(np.sort(rng.choice(rest.values, n_val, replace=False))) if n_val else core[:0]

    # Steps whose history window [d - history, d - 1] holds a test step: d in test + 1..history steps.
    tainted = pd.DatetimeIndex(np.unique(np.concatenate(
        [pd.DatetimeIndex(steps.shift(test, k, step)).values for k in range(1, history + 1)] or [test.values[:0]])))
    train = pool.difference(test).difference(val).difference(tainted)
    if train.size == 0:
        raise ValueError(f"no training day left for months {list(months)}: every pool day is a test or validation "
                         f"day or has a test day in its {history}-day history")

    everything = season_days(coarse_period[0], coarse_period[1], months, step)
    beyond = everything[(everything < f0) | (everything > f1)]
    return DaySplit(core, pool, train, val, test, beyond)


# ----------------------------------------------------------------------- region files

def crop(da: xr.DataArray, grid: Grid, path: str | os.PathLike | None = None) -> xr.DataArray:
    """Select exactly the grid's centres, or fail naming the file that does not cover them."""
    try:
        return da.sel(lat=grid.lat, lon=grid.lon, method="nearest", tolerance=1e-6)
    except KeyError as exc:
        raise dio.DataValidationError(
            path, f"grid does not hold the region's fine centres lat {grid.lat[0]:.4f}..{grid.lat[-1]:.4f}, "
                  f"lon {grid.lon[0]:.4f}..{grid.lon[-1]:.4f} (spacing {grid.dlat} deg)") from exc


def write_region(box: Box, variable: str, fine_paths: Sequence[str], coarse_on_fine_paths: Sequence[str],
                 static_paths: Mapping[str, str], fine_period: Sequence[str], coarse_period: Sequence[str],
                 out_fine: str, out_coarse_on_fine: str, out_static: Mapping[str, str],
                 out_truth: str | None = None, truth_where_held: bool = False,
                 metadata: cf.Metadata | None = None) -> dict[str, int]:
    """Write a region's contract files; returns the number of days in each record.

    ``static_paths``: the raw file of each static field (name -> a (lat, lon) file holding
    variable ``name``), possibly none; ``out_static``: where each is written, cut to the
    region. fine.nc records their names (:data:`STATIC_ATTR`), in this order, the models'
    channel order. ``metadata``: the config's CF/ACDD attributes for every file written,
    and the records' step.

    The region's fine grid is the fine record's centres inside the box (G5NR's for the
    paper), the same cells the regrid stage maps the coarse record onto.
    ``out_truth``: where to write the fine record outside the fine period; the fine
    files must then hold every day of the coarse period outside the fine period, or,
    with ``truth_where_held`` (the user's local files), at least one: truth.nc then
    holds those days only, so days without truth are left out of beyond scoring rather
    than filled with NaN.
    """
    step = (metadata or cf.Metadata()).step
    fine_days = steps.in_period(*fine_period, step)
    grid = stream_record(fine_paths, variable, box, fine_days, out_fine, metadata,
                         attrs={STATIC_ATTR: " ".join(static_paths)})
    counts = {"fine": fine_days.size}

    coarse_days = steps.in_period(*coarse_period, step)
    coarse_grid = stream_record(coarse_on_fine_paths, variable, box, coarse_days, out_coarse_on_fine, metadata)
    if coarse_grid.shape != grid.shape or not np.allclose(coarse_grid.lat, grid.lat, atol=1e-6):
        Path(out_coarse_on_fine).unlink()
        raise dio.DataValidationError(coarse_on_fine_paths[0], f"grid {coarse_grid.shape} is not the region's fine "
                                      f"grid {grid.shape}")
    with xr.open_dataset(out_coarse_on_fine, engine="netcdf4") as ds:
        # A day at a time, so memory holds one day: NaN here means the coarse cells
        # around the region were not fetched.
        nan_days = sum(bool(ds[variable][t].isnull().any()) for t in range(ds.sizes["time"]))
    if nan_days:
        Path(out_coarse_on_fine).unlink()
        raise dio.DataValidationError(coarse_on_fine_paths[0], f"the coarse record on the fine grid has missing "
                                      f"values inside the region on {nan_days} day(s) (raise data.margin_deg so the "
                                      "coarse cells around the region are fetched)")
    counts["coarse_on_fine"] = coarse_days.size

    for name, path in static_paths.items():
        field = crop(dio.read_field(path, name, dims=("lat", "lon")), grid, path)
        dio.write_netcdf(dio.field_dataset(np.asarray(field.values, dtype=np.float32), None, grid.lat, grid.lon,
                                           name, dict(field.attrs), _month_header(path, timed=False)[1]),
                         out_static[name], metadata=metadata, history=f"{name} cut to the region (diffscale.data.split)")

    if out_truth is not None:
        outside = coarse_days[(coarse_days < fine_days[0]) | (coarse_days > fine_days[-1])]
        if truth_where_held:
            outside = outside.intersection(record_days(fine_paths))
        if outside.size == 0:
            raise ValueError("truth beyond the fine period requested but the fine record has no day of "
                             "data.coarse_period outside data.fine_period")
        stream_record(fine_paths, variable, box, outside, out_truth, metadata)
        counts["truth"] = outside.size
    return counts


def record_days(paths: Sequence[str | os.PathLike]) -> pd.DatetimeIndex:
    """Every day a monthly record's files hold, from their headers."""
    days = [_month_header(p)[0] for p in paths]
    return days[0].append(days[1:]).unique().sort_values() if days else pd.DatetimeIndex([])


def _month_header(path: str | os.PathLike, timed: bool = True) -> tuple[pd.DatetimeIndex, dict]:
    """The days a monthly file holds and its global attributes, read without loading its data."""
    try:
        with xr.open_dataset(path, engine="netcdf4") as ds:
            return pd.DatetimeIndex(ds["time"].values if timed else []), dict(ds.attrs)
    except Exception as exc:
        raise dio.DataValidationError(path, f"cannot read its time coordinate ({exc})") from exc


def stream_record(paths: Sequence[str | os.PathLike], variable: str, box: Box, days: pd.DatetimeIndex,
                  out: str | os.PathLike, metadata: cf.Metadata | None = None, attrs: dict | None = None) -> Grid:
    """Write ``days`` of a monthly record, cropped to the box, into one CF file, a month at a time.

    Memory holds one month, not the record (25 years of a paper region are ~6 GB). The
    file grows along an unlimited time dimension under a temporary name and is renamed
    only when every wanted day is in. Chunks are one day's map: training reads a day at
    a time. ``attrs``: global attributes added to the source files'. Returns the region
    grid (the centres inside the box).
    """
    days = pd.DatetimeIndex(days)
    written: list[pd.DatetimeIndex] = []
    grid = None
    with dio.atomic_path(out) as tmp:
        for path in sorted(map(str, paths)):
            times, global_attrs = _month_header(path)
            if not times.isin(days).any():
                continue
            month = dio.read_field(path, variable)
            if grid is None:
                grid = grid_of(month).crop(box)
            month = crop(month, grid, path)
            month = month.isel(time=np.flatnonzero(pd.DatetimeIndex(month.time.values).isin(days)))
            times = pd.DatetimeIndex(month.time.values)
            if written and times[0] <= written[-1][-1]:
                raise dio.DataValidationError(path, f"days overlap an earlier file or go back in time ({times[0].date()})")
            values = np.asarray(month.values, dtype=np.float32)  # (t, ny, nx)
            if not written:
                ds = dio.field_dataset(values, times, grid.lat, grid.lon, variable, dict(month.attrs),
                                       global_attrs | (attrs or {}))
                dio.write_netcdf(ds, tmp, metadata=metadata, history=f"{variable} cut to lat {box.lat} lon {box.lon}, "
                                 f"{days[0].date()}..{days[-1].date()} (diffscale.data.split)", chunks={"time": 1},
                                 unlimited_dims=("time",))
            else:
                dio.append_days(tmp, variable, times, values, (metadata or cf.Metadata()).step)
            written.append(times)
        have = written[0].append(written[1:]) if written else days[:0]
        lacking = days.difference(have)
        if lacking.size:
            raise dio.DataValidationError(paths[0] if len(paths) else None,
                                          f"the record of '{variable}' lacks {lacking.size} of the {days.size} days "
                                          f"wanted ({days[0].date()}..{days[-1].date()}), first {lacking[0].date()}")
    return grid


def fit_scaler(fine_path: str | os.PathLike, variable: str, train: pd.DatetimeIndex, log10: bool,
               floor: float) -> Scaler:
    """The scaler of one region and season, from the fine values of its training days only."""
    fine = dio.read_field(fine_path, variable)
    have = pd.DatetimeIndex(fine.time.values)
    lacking = train.difference(have)
    if lacking.size:
        raise dio.DataValidationError(fine_path, f"lacks {lacking.size} training day(s), first {lacking[0].date()}")
    return Scaler.fit(fine.sel(time=train).values, log10, floor)


def split_season(fine_path: str | os.PathLike, variable: str, months: Sequence[int], fine_period: Sequence[str],
                 coarse_period: Sequence[str], buffer_days: int, test_fraction: float, val_fraction: float, seed: int,
                 history: int, log10: bool, floor: float, days_path: str | os.PathLike,
                 scaler_path: str | os.PathLike, step: str = "day") -> tuple[DaySplit, Scaler]:
    """Write one region and season's ``days.json`` and ``scaler.json`` (fitted on its training days)."""
    days = make_split(months, fine_period, coarse_period, buffer_days, test_fraction, val_fraction, seed, history, step)
    scaler = fit_scaler(fine_path, variable, days.train, log10, floor)
    days.to_json(days_path)
    scaler.to_json(scaler_path)
    return days, scaler
