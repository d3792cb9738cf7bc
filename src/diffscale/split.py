"""Per region and season: cropped records, seeded day lists without leakage, the scaler.

Files (the contract in design.md / the common brief), per region:
``fine.nc`` (fine record over data.fine_period), ``coarse_on_fine.nc`` (coarse record on
the fine grid over data.coarse_period), ``elevation.nc`` and, where fine truth exists
outside the fine period, ``truth.nc``; per region and season ``days.json`` and
``scaler.json``.

No leakage: a training target's history window (the ``history`` days before it) never
holds a test day, test days are never training or validation days, and the scaler sees
the fine values of training days only.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from diffscale import io as dio
from diffscale.grids import Box, Grid
from diffscale.regrid import grid_of

DAY_LISTS = ("core", "pool", "train", "val", "test", "beyond")


# ---------------------------------------------------------------------------- scaler

@dataclass(frozen=True)
class Scaler:
    """Optional log10 with a floor, then min-max to [0, 1] with lo/hi fitted on training days."""

    log10: bool
    floor: float
    lo: float
    hi: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lo) and math.isfinite(self.hi) and self.hi > self.lo):
            raise ValueError(f"scaler needs finite lo < hi, got lo={self.lo}, hi={self.hi}")
        if self.floor <= 0:
            raise ValueError(f"scaler floor must be positive, got {self.floor}")

    @staticmethod
    def transform(x: np.ndarray | xr.DataArray, log10: bool, floor: float):
        """Physical values -> the modelled variable (log10(max(x, floor)) or x); NaN stays NaN."""
        if not log10:
            return x
        return np.log10(np.maximum(x, floor))  # ufuncs keep DataArrays as DataArrays

    def forward(self, x):
        """Physical -> scaled ([0, 1] over the training days)."""
        return (self.transform(x, self.log10, self.floor) - self.lo) / (self.hi - self.lo)

    def inverse(self, s):
        """Scaled -> physical. Values at the floor come back as the floor, not below it."""
        v = s * (self.hi - self.lo) + self.lo
        return 10.0 ** v if self.log10 else v

    @classmethod
    def fit(cls, values_physical, log10: bool, floor: float) -> Scaler:
        v = np.asarray(cls.transform(np.asarray(values_physical, dtype=np.float64), log10, floor))
        if not np.isfinite(v).any():
            raise ValueError("cannot fit a scaler: no finite training values")
        lo, hi = float(np.nanmin(v)), float(np.nanmax(v))
        if hi <= lo:
            raise ValueError(f"cannot fit a scaler: every training value is {lo} (constant field)")
        return cls(bool(log10), float(floor), lo, hi)

    def to_json(self, path: str | os.PathLike) -> Path:
        return _write_json(path, asdict(self))

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> Scaler:
        data = _read_json(path)
        missing = {"log10", "floor", "lo", "hi"} - set(data)
        if missing:
            raise dio.DataValidationError(path, f"scaler file lacks key(s) {sorted(missing)}")
        try:
            return cls(bool(data["log10"]), float(data["floor"]), float(data["lo"]), float(data["hi"]))
        except (TypeError, ValueError) as exc:
            raise dio.DataValidationError(path, f"invalid scaler: {exc}") from exc


def _write_json(path: str | os.PathLike, data: dict) -> Path:
    with dio.atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(data, indent=1) + "\n")
    return Path(path)


def _read_json(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.exists():
        raise dio.DataValidationError(path, "file does not exist")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise dio.DataValidationError(path, f"not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise dio.DataValidationError(path, "expected a JSON object")
    return data


# -------------------------------------------------------------------------- day lists

@dataclass(frozen=True)
class DaySplit:
    """The day lists of one region and season (sorted, unique)."""

    core: pd.DatetimeIndex
    pool: pd.DatetimeIndex
    train: pd.DatetimeIndex
    val: pd.DatetimeIndex
    test: pd.DatetimeIndex
    beyond: pd.DatetimeIndex

    def to_json(self, path: str | os.PathLike) -> Path:
        return _write_json(path, {name: [d.strftime("%Y-%m-%d") for d in getattr(self, name)] for name in DAY_LISTS})

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> DaySplit:
        data = _read_json(path)
        missing = set(DAY_LISTS) - set(data)
        if missing:
            raise dio.DataValidationError(path, f"day lists lack key(s) {sorted(missing)}")
        try:
            return cls(**{name: pd.DatetimeIndex(pd.to_datetime(data[name], format="%Y-%m-%d")) for name in DAY_LISTS})
        except (TypeError, ValueError) as exc:
            raise dio.DataValidationError(path, f"invalid date in day lists: {exc}") from exc


def season_days(start: str, end: str, months: Iterable[int]) -> pd.DatetimeIndex:
    days = dio.days_in(start, end)
    return days[days.month.isin(list(months))]


def make_split(months: Sequence[int], fine_period: Sequence[str], coarse_period: Sequence[str],
               buffer_days: int, test_fraction: float, val_fraction: float, seed: int,
               history: int) -> DaySplit:
    """Seeded day lists of one season.

    core: the season's days inside the fine period; pool: core plus the ``buffer_days``
    before each core day (inside the fine period); test: ``round(test_fraction * |core|)``
    core days (at least one); val: ``round(val_fraction * |core|)`` of the remaining core
    days; train: pool without test and val days and without any day whose ``history``
    previous days hold a test day; beyond: the season's days of the coarse period
    outside the fine period.
    """
    f0, f1 = pd.Timestamp(fine_period[0]), pd.Timestamp(fine_period[1])
    core = season_days(fine_period[0], fine_period[1], months)
    if core.size < 2:
        raise ValueError(f"season with months {list(months)} has {core.size} day(s) inside data.fine_period "
                         f"{list(fine_period)}: need at least 2 (one test day and one other)")
    offsets = pd.to_timedelta(np.arange(buffer_days + 1), unit="D")
    pool = pd.DatetimeIndex(np.unique((core.values[:, None] - offsets.values[None, :]).ravel()))
    pool = pool[(pool >= f0) & (pool <= f1)]

    rng = np.random.default_rng(seed)
    n_test = max(1, int(round(test_fraction * core.size)))
    n_val = int(round(val_fraction * core.size))
    if n_test + n_val >= core.size:
        raise ValueError(f"split.test_fraction={test_fraction} and split.val_fraction={val_fraction} leave no "
                         f"training core day out of {core.size}")
    test = pd.DatetimeIndex(np.sort(rng.choice(core.values, n_test, replace=False)))
    rest = core.difference(test)
    val = pd.DatetimeIndex(np.sort(rng.choice(rest.values, n_val, replace=False))) if n_val else core[:0]

    # Days whose history window [d - history, d - 1] holds a test day: d in test + 1..history.
    lags = pd.to_timedelta(np.arange(1, history + 1), unit="D")
    tainted = pd.DatetimeIndex(np.unique((test.values[:, None] + lags.values[None, :]).ravel()))
    train = pool.difference(test).difference(val).difference(tainted)
    if train.size == 0:
        raise ValueError(f"no training day left for months {list(months)}: every pool day is a test or validation "
                         f"day or has a test day in its {history}-day history")

    everything = season_days(coarse_period[0], coarse_period[1], months)
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


def _as_record(da: xr.DataArray, grid: Grid, template: xr.DataArray) -> xr.Dataset:
    """A CF dataset of a cropped field with exact lattice coordinates and the source's attributes."""
    times = pd.DatetimeIndex(da.time.values) if "time" in da.dims else None
    return dio.field_dataset(np.asarray(da.values, dtype=np.float32), times, grid.lat, grid.lon,
                             str(template.name), dict(template.attrs))


def write_region(box: Box, variable: str, fine_paths: Sequence[str], coarse_on_fine_paths: Sequence[str],
                 elevation_path: str, fine_period: Sequence[str], coarse_period: Sequence[str],
                 out_fine: str, out_coarse_on_fine: str, out_elevation: str,
                 out_truth: str | None = None) -> dict[str, int]:
    """Write a region's contract files; returns the number of days in each record.

    ``out_truth``: where to write the fine record outside the fine period; it must then
    exist in ``fine_paths`` for every day of the coarse period outside the fine period.
    """
    fine_all = dio.read_record(fine_paths, variable)
    # The region's fine grid: the fine record's centres inside the box (G5NR's for the
    # paper), the same cells the regrid stage maps the coarse record onto.
    grid = grid_of(fine_all).crop(box)
    fine_all = crop(fine_all, grid, fine_paths[0])
    fine = fine_all.sel(time=slice(*fine_period))
    want = dio.days_in(*fine_period)
    if fine.sizes["time"] != want.size:
        raise dio.DataValidationError(fine_paths[0], f"the fine record has {fine.sizes['time']} of the {want.size} "
                                                     f"days of data.fine_period {list(fine_period)}")
    dio.write_netcdf(_as_record(fine, grid, fine_all), out_fine)
    counts = {"fine": int(fine.sizes["time"])}

    coarse = dio.read_record(coarse_on_fine_paths, variable, *coarse_period)
    coarse = crop(coarse, grid, coarse_on_fine_paths[0])
    if coarse.isnull().any():
        raise dio.DataValidationError(coarse_on_fine_paths[0], "the coarse record on the fine grid has missing "
                                      "values inside the region (raise data.margin_deg so the coarse cells around "
                                      "the region are fetched)")
    dio.write_netcdf(_as_record(coarse, grid, coarse), out_coarse_on_fine)
    counts["coarse_on_fine"] = int(coarse.sizes["time"])

    elevation = crop(dio.read_field(elevation_path, "elevation", dims=("lat", "lon")), grid, elevation_path)
    dio.write_netcdf(_as_record(elevation, grid, elevation), out_elevation)

    if out_truth is not None:
        outside = dio.days_in(*coarse_period)
        outside = outside[(outside < pd.Timestamp(fine_period[0])) | (outside > pd.Timestamp(fine_period[1]))]
        have = pd.DatetimeIndex(fine_all.time.values)
        lacking = outside.difference(have)
        if outside.size == 0 or lacking.size:
            raise dio.DataValidationError(fine_paths[0], f"truth beyond the fine period requested but the fine files "
                                          f"lack {lacking.size} of its {outside.size} days")
        truth = fine_all.sel(time=outside)
        dio.write_netcdf(_as_record(truth, grid, fine_all), out_truth)
        counts["truth"] = int(truth.sizes["time"])
    return counts


def fit_scaler(fine_path: str | os.PathLike, variable: str, train: pd.DatetimeIndex, log10: bool,
               floor: float) -> Scaler:
    """The scaler of one region and season, from the fine values of its training days only."""
    fine = dio.read_field(fine_path, variable)
    have = pd.DatetimeIndex(fine.time.values)
    lacking = train.difference(have)
    if lacking.size:
        raise dio.DataValidationError(fine_path, f"lacks {lacking.size} training day(s), first {lacking[0].date()}")
    return Scaler.fit(fine.sel(time=train).values, log10, floor)
