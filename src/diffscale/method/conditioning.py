"""Model inputs for a target day t, built from the split stage's files, leakage-free.

For day t the diffusion model sees (all on the region's fine grid, scaled by the split's
Scaler):

* ``coarse``: the coarse field of day t regridded to the fine grid (the only data of day t);
* ``history``: the fine field of days t-H .. t-1 (H = encoder.history), never day t:
  true fine days (teacher forcing) or the model's own earlier predictions
  (autoregressive); the denoiser gets the days themselves and the frozen encoder's
  features of them (the encoder, pretrained on coarse fields, passes on the large-scale
  dynamics but not the fine detail of yesterday, which the days themselves carry);
* static channels: the split's static fields (elevation, where the data have it; see
  :func:`diffscale.data.split.static_fields`), each standardised over the region,
  latitude and longitude scaled to [-1, 1] over the region, and sin/cos of the day of year.

The target is a *residual*: fine(t) - coarse(t) for the regressors and the diffusion
model's ``coarse`` variant, so the large scales the coarse field already resolves are given;
fine(t) minus a frozen regressor's prediction for the method's default (CorrDiff's
regression + residual diffusion, :mod:`diffscale.method.diffusion`).

:func:`history_window` is the one place that picks history days; it takes the days
strictly before t, so no caller can leak day t.

Shapes: fields (T, H, W) or (H, W); raw condition (:func:`raw_channels`, H, W); history (H_days, H, W).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
import xarray as xr

from diffscale.core import io, steps
from diffscale.core.days import DAY_LISTS, DaySplit
from diffscale.core.transform import Scaler
from diffscale.data.split import static_fields


def raw_channels(static: Sequence[str]) -> int:
    """Channels of the raw condition with the static fields ``static``: coarse, the fields, lat, lon, sin/cos(doy)."""
    return 1 + len(static) + 4


class ScalerLike(Protocol):
    def forward(self, x): ...
    def inverse(self, x): ...


@dataclass
class SeasonData:
    """One region and season, in scaled space, as the model sees it."""

    variable: str
    attrs: dict
    lat: np.ndarray  # (H,)
    lon: np.ndarray  # (W,)
    fine_times: pd.DatetimeIndex  # the fine record (data.fine_period)
    fine: np.ndarray  # (Tf, H, W) float32, scaled
    coarse_times: pd.DatetimeIndex  # the coarse steps read: the whole coarse period, or those load_season's days need
    coarse: np.ndarray  # (Tc, H, W) float32, scaled
    static: dict[str, np.ndarray]  # the split's static fields, name -> (H, W), in channel order (elevation in metres)
    days: dict[str, pd.DatetimeIndex]
    scaler: ScalerLike
    truth_times: pd.DatetimeIndex = field(default_factory=lambda: pd.DatetimeIndex([]))
    truth: np.ndarray | None = None  # (Tt, H, W) scaled fine truth outside the fine record (twin only); never trained on
    record_step: str | None = None  # the coarse record's time step, when read from its file

    @property
    def shape(self) -> tuple[int, int]:
        return self.fine.shape[-2], self.fine.shape[-1]

    @functools.cached_property
    def step(self) -> str:
        """The records' time step (day, month or year), told from the regular coarse record."""
        return self.record_step or steps.classify(self.coarse_times)[0] or "day"

    def coarse_on(self, day: pd.Timestamp) -> np.ndarray:
        i = self.coarse_times.get_indexer([day])[0]
        if i < 0:
            raise KeyError(f"day {day.date()} is outside the coarse record {self.coarse_times[0].date()}..{self.coarse_times[-1].date()}")
        return self.coarse[i]

    def fine_on(self, day: pd.Timestamp) -> np.ndarray:
        i = self.fine_times.get_indexer([day])[0]
        if i < 0:
            raise KeyError(f"day {day.date()} is outside the fine record")
        return self.fine[i]

    def has_fine(self, day: pd.Timestamp) -> bool:
        return self.fine_times.get_indexer([day])[0] >= 0

    def truth_on(self, day: pd.Timestamp) -> np.ndarray | None:
        """Scaled fine truth of a day outside the fine record, or None where there is none."""
        if self.truth is None:
            return None
        i = self.truth_times.get_indexer([day])[0]
        return None if i < 0 else self.truth[i]


def history_window(day: pd.Timestamp, history: int, step: str = "day") -> pd.DatetimeIndex:
    """The ``history`` steps strictly before ``day``, oldest first."""
    return steps.window(day, history, step)


def static_channels(lat: np.ndarray, lon: np.ndarray, static: Mapping[str, np.ndarray]) -> np.ndarray:
    """(len(static) + 2, H, W): each static field standardised over the region, then lat and lon mapped to [-1, 1]."""
    def unit(v: np.ndarray) -> np.ndarray:
        span = float(v[-1] - v[0]) or 1.0
        return (2 * (v - v[0]) / span - 1).astype(np.float32)

    fields = [((f - f.mean()) / (f.std() or 1.0)).astype(np.float32) for f in static.values()]
    la, lo = np.meshgrid(unit(lat), unit(lon), indexing="ij")
    return np.stack([*fields, la, lo])


def raw_condition(coarse_t: np.ndarray, static: np.ndarray, day: pd.Timestamp) -> np.ndarray:
    """(:func:`raw_channels`, H, W): the coarse field of day t, the static channels, the season's phase."""
    angle = 2 * np.pi * day.day_of_year / 365.25
    h, w = coarse_t.shape
    phase = [np.full((1, h, w), f(angle), dtype=np.float32) for f in (np.sin, np.cos)]
    return np.concatenate([coarse_t[None].astype(np.float32), static.astype(np.float32), *phase])


def true_history(data: SeasonData, day: pd.Timestamp, history: int) -> np.ndarray:
    """(history, H, W) true fine days before ``day``; KeyError when the fine record does not cover them."""
    return np.stack([data.fine_on(d) for d in history_window(day, history, data.step)])


def load_season(split_dir: str | os.PathLike, season: str, variable: str, scaler: ScalerLike | None = None,
                days: Sequence[pd.Timestamp] | None = None, history: int = 0, spinup_days: int = 0,
                truth: bool = True, fine: bool = True) -> SeasonData:
    """Read ``<split_dir>/{fine,coarse_on_fine[,truth]}.nc``, a ``<name>.nc`` per static field fine.nc names,
    and ``<split_dir>/<season>/{days,scaler}.json``.

    days: the days the job works on. The coarse record and the truth are then read only on
    :func:`needed_steps` (their ``history`` windows after ``spinup_days``) and on the
    training days (the start guess of an autoregressive run), so a job over a few years of a
    25-year record holds those years; any other day's coarse field raises KeyError. None reads
    them whole. truth: read truth.nc (the self-check's beyond truth); the jobs that never score
    against it leave it on disk. fine: read the fine record (False: the grid alone, for a job
    that only scores beyond days against the truth; its coarse fields are read on ``days``
    alone, without the training days).
    """
    split_dir = Path(split_dir)
    if scaler is None:
        scaler = Scaler.from_json(split_dir / season / "scaler.json")
    day_lists = DaySplit.from_json(split_dir / season / "days.json")
    record = split_dir / "coarse_on_fine.nc"
    step, times = record_step(record), None
    if days is not None:
        times = needed_steps(days, history, step, spinup_days)
        times = times.union(day_lists.train) if fine else times
    record_fine = io.read_field(split_dir / "fine.nc", variable, times=None if fine else pd.DatetimeIndex([]))
    coarse = io.read_field(record, variable, times=times)
    static = {name: io.read_field(split_dir / f"{name}.nc", name, dims=("lat", "lon"))
              for name in static_fields(split_dir / "fine.nc")}
    for name, da in (("coarse_on_fine.nc", coarse), *((f"{n}.nc", da) for n, da in static.items())):
        if not (np.allclose(da.lat, record_fine.lat) and np.allclose(da.lon, record_fine.lon)):
            raise io.DataValidationError(split_dir / name, "grid differs from fine.nc (expected the region's fine grid)")
    truth_times, truth_values = pd.DatetimeIndex([]), None
    if truth and (split_dir / "truth.nc").exists():
        t = io.read_field(split_dir / "truth.nc", variable, times=times)
        if t.sizes["time"]:  # none where the job's days lie inside the fine record
            truth_times = pd.DatetimeIndex(t.time.values)
            truth_values = np.asarray(scaler.forward(t.values), dtype=np.float32)

    def scaled(da) -> np.ndarray:
        raw = da.values
        values = np.empty(raw.shape, dtype=np.float32)
        for start in range(0, len(raw), 366):  # a year at a time: no float64 copy of a whole record
            values[start:start + 366] = scaler.forward(np.asarray(raw[start:start + 366], dtype=np.float64))
        # Missing pixels (NaN) would poison every convolution: fill them with the field's day mean.
        if np.isnan(values).any():
            means = np.nanmean(values.reshape(values.shape[0], -1), axis=1)
            values = np.where(np.isnan(values), means[:, None, None], values)
        return values

    return SeasonData(
        variable=variable,
        attrs={k: record_fine.attrs[k] for k in ("units", "long_name") if k in record_fine.attrs},
        lat=record_fine.lat.values, lon=record_fine.lon.values,
        fine_times=pd.DatetimeIndex(record_fine.time.values), fine=scaled(record_fine),
        coarse_times=pd.DatetimeIndex(coarse.time.values), coarse=scaled(coarse),
        static={name: np.asarray(da.values, dtype=np.float64) for name, da in static.items()},
        days={name: getattr(day_lists, name) for name in DAY_LISTS},
        scaler=scaler, truth_times=truth_times, truth=truth_values, record_step=step,
    )


def needed_steps(days: Sequence[pd.Timestamp], history: int, step: str = "day",
                 spinup_days: int = 0) -> pd.DatetimeIndex:
    """The coarse steps a job over ``days`` reads: for each run of consecutive days, from the
    history window of a spin-up ``spinup_days`` before its first day to its last day
    (:func:`load_season`). One step of margin keeps monthly and yearly stamps inside."""
    parts = []
    for run in steps.runs(pd.DatetimeIndex(days), step):
        start = run[0] - pd.Timedelta(days=spinup_days)
        first = history_window(start, history, step)[0] if history else start
        parts.append(steps.in_period(steps.shift(first, -1, step), run[-1], step))
    return parts[0].append(parts[1:]).unique().sort_values() if parts else pd.DatetimeIndex([])


def record_times(path: str | os.PathLike) -> pd.DatetimeIndex:
    """The steps a record file holds, from its time coordinate alone."""
    return io.file_times(path)


def record_step(path: str | os.PathLike) -> str:
    """The time step of a record file (day, month or year), from its time coordinate alone."""
    return steps.classify(record_times(path))[0] or "day"


def days_of(split_dir: str | os.PathLike, season: str) -> dict[str, pd.DatetimeIndex]:
    """The day lists of ``<split_dir>/<season>/days.json`` without reading the records."""
    day_lists = DaySplit.from_json(Path(split_dir) / season / "days.json")
    return {name: getattr(day_lists, name) for name in DAY_LISTS}


def training_days(data: SeasonData, subset: str, history: int) -> pd.DatetimeIndex:
    """Days of ``subset`` whose whole history window lies in the fine record (others cannot be built)
    and holds no test day (fitting or validating on them would feed test truth into the model)."""
    days, test = data.days[subset], set(data.days["test"])
    ok = [d for d in days if data.has_fine(d)
          and all(data.has_fine(h) and h not in test for h in history_window(d, history, data.step))]
    return pd.DatetimeIndex(ok)
