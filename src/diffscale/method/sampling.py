"""Ensembles of fine fields: teacher-forced on test days, autoregressive beyond the fine record.

* Teacher-forced (test days): the history of day t is the true fine record of days
  t-H..t-1; every member shares it. History days before the fine record starts (a test
  day in the record's first H days) are filled as the autoregressive run's start (below).
* Autoregressive (beyond days): the history is the member's *own* earlier predictions,
  so each member is one self-consistent trajectory and the ensemble spread carries the
  accumulated uncertainty. The season's beyond days fall into blocks (one per year);
  each block is run from ``spinup`` days before its first day. History days that lie
  in the fine record are the truth (so the block right after the fine record runs
  forward from its end); days before the run's start that are not in the fine record
  are initialised as the coarse-on-fine field of that day plus the season's mean
  fine-scale residual (mean of fine - coarse over the training days): the day's large
  scales and the climatological small-scale pattern, the best guess without fine data.
  Predictions for the spin-up days are discarded.
* Every day's noise comes from a generator seeded by (seed, day), so a day's sample
  does not depend on which other days are run, and nothing from the future can enter.

The drivers take any model with ``sample_day`` and ``spec.history``: the
diffusion :class:`~diffscale.method.diffusion.Downscaler` and the trained baselines of
:mod:`diffscale.method.regressors` (deterministic ones return one member whatever ``members`` asks).

Samples are returned scaled (member, time, H, W); :func:`samples_dataset` writes them in
physical units through the Scaler's inverse.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

import numpy as np
import pandas as pd
import torch
import xarray as xr
from tqdm import tqdm

from diffscale.method import conditioning as cm
from diffscale.method.conditioning import SeasonData
from diffscale.method.edm import nfe
from diffscale.method.diffusion import Downscaler
from diffscale.core.io import field_dataset
from diffscale.method.loop import TqdmToLog, step_generator

log = logging.getLogger("diffscale.method.sampling")


def day_generator(seed: int, day: pd.Timestamp) -> torch.Generator:
    return step_generator(seed, int(day.toordinal()))


def _predict(model: Downscaler, data: SeasonData, static: np.ndarray, day: pd.Timestamp, history: np.ndarray,
             members: int, sampler: str, steps: int, seed: int, tile: int | None, stride: int | None) -> np.ndarray:
    raw = torch.from_numpy(cm.raw_condition(data.coarse_on(day), static, day))
    hist = torch.from_numpy(np.ascontiguousarray(history, dtype=np.float32))
    out = model.sample_day(raw, hist, members, sampler, steps, day_generator(seed, day), tile, stride)
    return out.numpy()  # (M, H, W)


def teacher_forced(model: Downscaler, data: SeasonData, days: Iterable[pd.Timestamp], members: int, sampler: str,
                   steps: int, seed: int = 0, tile: int | None = None, stride: int | None = None) -> np.ndarray:
    """(M, T, H, W) scaled samples of ``days``, history = true fine days before each day."""
    static = cm.static_channels(data.lat, data.lon, data.elevation)
    start_guess = mean_residual(data)
    out = []
    for day in tqdm(list(days), desc="teacher-forced", file=TqdmToLog(), mininterval=10, ascii=True):
        history = np.stack([data.fine_on(d) if data.has_fine(d) else _start_guess(data, d, start_guess)
                            for d in cm.history_window(day, model.spec.history)])[None]
        out.append(_predict(model, data, static, day, history, members, sampler, steps, seed, tile, stride))
    h, w = data.shape
    return np.stack(out, axis=1) if out else np.empty((members, 0, h, w), np.float32)


def blocks(days: pd.DatetimeIndex) -> list[pd.DatetimeIndex]:
    """Split sorted days into runs of consecutive days."""
    if len(days) == 0:
        return []
    days = pd.DatetimeIndex(sorted(days))
    breaks = np.flatnonzero(np.diff(days.values).astype("timedelta64[D]").astype(int) != 1) + 1
    return [pd.DatetimeIndex(b) for b in np.split(days, breaks)]


def _start_guess(data: SeasonData, day: pd.Timestamp, residual: np.ndarray) -> np.ndarray:
    """A history day without fine data: its coarse field (the first one before the record) + the mean residual."""
    return data.coarse_on(max(day, data.coarse_times[0])) + residual


def mean_residual(data: SeasonData) -> np.ndarray:
    """(H, W): the season's mean of fine - coarse over the training days."""
    days = data.days["train"]
    return np.mean([data.fine_on(d) - data.coarse_on(d) for d in days if data.has_fine(d)], axis=0).astype(np.float32)


def autoregressive(model: Downscaler, data: SeasonData, days: Iterable[pd.Timestamp], members: int, sampler: str,
                   steps: int, spinup: int, seed: int = 0, tile: int | None = None, stride: int | None = None) -> np.ndarray:
    """(M, T, H, W) scaled samples of ``days`` (sorted), each member fed its own predictions."""
    days = pd.DatetimeIndex(sorted(days))
    static = cm.static_channels(data.lat, data.lon, data.elevation)
    h, w = data.shape
    k = model.spec.history
    start_guess = mean_residual(data)
    first_coarse = data.coarse_times[0]
    out: dict[pd.Timestamp, np.ndarray] = {}
    bar = tqdm(total=len(days), desc="autoregressive", file=TqdmToLog(), mininterval=10, ascii=True)
    for block in blocks(days):
        run_start = max(block[0] - pd.Timedelta(days=spinup), first_coarse)
        known: dict[pd.Timestamp, np.ndarray] = {}  # day -> (M or 1, H, W) scaled field fed as history

        def history_of(day: pd.Timestamp) -> np.ndarray:
            frames = []
            for d in cm.history_window(day, k):
                if d in known:
                    frames.append(known[d])
                elif data.has_fine(d):
                    frames.append(data.fine_on(d)[None])
                else:
                    frames.append(_start_guess(data, d, start_guess)[None])
            frames = [np.broadcast_to(f, (members, h, w)) for f in frames]
            return np.stack(frames, axis=1)  # (M, k, H, W)

        for day in pd.date_range(run_start, block[-1], freq="D"):
            if data.has_fine(day):
                continue  # spin-up inside the fine record: the truth is the history
            pred = _predict(model, data, static, day, history_of(day), members, sampler, steps, seed, tile, stride)
            known[day] = pred
            # Only the last `history` days are ever read again.
            known.pop(day - pd.Timedelta(days=k), None)
            if day >= block[0]:
                out[day] = pred
                bar.update(1)
    bar.close()
    return np.stack([out[d] for d in days], axis=1) if len(days) else np.empty((members, 0, h, w), np.float32)


def samples_dataset(scaled: np.ndarray, days: pd.DatetimeIndex, data: SeasonData, attrs: dict) -> xr.Dataset:
    """(M, T, H, W) scaled samples -> CF dataset with a member dimension, physical units."""
    physical = np.asarray(data.scaler.inverse(scaled.astype(np.float64)), dtype=np.float32)
    ds = field_dataset(physical[0], days, data.lat, data.lon, data.variable, data.attrs)
    var = xr.DataArray(physical, dims=("member", "time", "lat", "lon"), attrs=ds[data.variable].attrs)
    ds = ds.drop_vars(data.variable).assign({data.variable: var})
    ds = ds.assign_coords(member=("member", np.arange(physical.shape[0], dtype=np.int32), {"long_name": "ensemble member"}))
    ds.attrs.update(attrs)
    return ds


def ensemble_scores(samples: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Self-check scores in the space given (log10 for the twin): samples (M, T, H, W), truth (T, H, W).

    r2 (1 - SSE/SST of the ensemble mean), rmse of the ensemble mean, fair CRPS, and
    spread/skill with the finite-ensemble factor (M+1)/M. The evaluation stage has the full set.
    """
    m = samples.shape[0]
    mean = samples.mean(axis=0)
    sse = float(np.square(mean - truth).sum())
    sst = float(np.square(truth - truth.mean()).sum())
    rmse = float(np.sqrt(sse / truth.size))
    skill = np.abs(samples - truth[None]).mean(axis=0)
    if m > 1:
        pair = sum(np.abs(samples[i] - samples[j]) for i in range(m) for j in range(i + 1, m)) / (m * (m - 1))
        spread = float(np.sqrt(samples.var(axis=0, ddof=1).mean() * (m + 1) / m))
    else:
        pair, spread = 0.0, 0.0
    return {"r2": 1 - sse / sst, "rmse": rmse, "crps": float((skill - pair).mean()),
            "spread_skill": spread / rmse if rmse > 0 else float("nan")}


def model_space(data: SeasonData, log10: bool, floor: float):
    """Scaled -> the space metrics are computed in (log10 of the physical value, or the value)."""
    def convert(scaled: np.ndarray) -> np.ndarray:
        physical = np.asarray(data.scaler.inverse(scaled.astype(np.float64)))
        return np.log10(np.maximum(physical, floor)) if log10 else physical
    return convert


def compare_samplers(model: Downscaler, data: SeasonData, days: pd.DatetimeIndex, members: int,
                     runs: list[tuple[str, int]], convert, seed: int = 0, tile: int | None = None,
                     stride: int | None = None) -> list[dict]:
    """Teacher-forced ensembles of ``days`` by each (sampler, steps); rows of sampler, steps, nfe, crps, rmse, seconds."""
    truth = convert(np.stack([data.fine_on(d) for d in days]))
    rows = []
    for name, steps in runs:
        t0 = time.perf_counter()
        samples = teacher_forced(model, data, days, members, name, steps, seed, tile, stride)
        seconds = time.perf_counter() - t0
        sc = ensemble_scores(convert(samples), truth)
        rows.append({"sampler": name, "steps": steps, "nfe": nfe(name, steps, float(model.spec.sigma_data)), "crps": sc["crps"], "rmse": sc["rmse"], "seconds": seconds,
                     "days": len(days), "members": members})
        log.info("%s %d steps: crps %.4f rmse %.4f in %.1f s", name, steps, sc["crps"], sc["rmse"], seconds)
    return rows


def timed(fn, *args, **kwargs):
    """(fn(*args, **kwargs), seconds it took)."""
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def stride_of(model: Downscaler, sampling: dict) -> int:
    """Stride between tile cores from the config's sampling.tile, halo and overlap."""
    core = (sampling["tile"] or model.spec.patch) - 2 * model.spec.halo
    return max(1, round(core * (1 - sampling["overlap"])))
