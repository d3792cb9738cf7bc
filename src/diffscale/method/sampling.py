"""Ensembles of fine fields: teacher-forced on test days, autoregressive beyond the fine record.

* Teacher-forced (test days): the history of day t is the true fine record of days
  t-H..t-1; every member shares it. History days before the fine record starts (a test
  day in the record's first H days) are filled as the autoregressive run's start (below).
* Autoregressive (beyond days): the history is the member's *own* earlier predictions,
  so each member is one self-consistent trajectory and the ensemble spread carries the
  accumulated uncertainty. The season's beyond days fall into runs of consecutive steps
  (days, months or years: ``data.step``); each run starts at the first step within
  ``spinup`` days before its first step. History days that lie
  in the fine record are the truth (so the run right after the fine record goes
  forward from its end); days before the run's start that are not in the fine record
  are initialised as the coarse-on-fine field of that day plus the season's mean
  fine-scale residual (mean of fine - coarse over the training days): the day's large
  scales and the climatological small-scale pattern, the best guess without fine data.
  Predictions for the spin-up days are discarded. :func:`continue_chain` carries a run
  on from a :class:`ChainState` (the last days each member predicted), which is how the
  workflow splits the beyond days into resumable jobs (:mod:`diffscale.method.beyond`).
* Every day's noise comes from a generator seeded by (seed, day), so a day's sample
  does not depend on which other days are run, and nothing from the future can enter.

The drivers take any :class:`~diffscale.method.residual.ResidualModel`: the diffusion
models and the trained baselines (deterministic ones return one member whatever
``members`` asks).

Samples are returned scaled (member, time, H, W); :func:`samples_dataset` writes them in
physical units through the Scaler's inverse, as the sample-file contract
(:mod:`diffscale.core.samples`) says. :func:`sample_test_files` and :func:`benchmark_files`
are the rules ``sample`` (the test days) and ``sampler_benchmark`` (validation days); models sample on the
config's ``device``, in bf16 autocast on a GPU when ``sampling.autocast`` is set
(:mod:`diffscale.method.devices`). The self-check (:func:`check_test_days`, :class:`BeyondCheck`) uses the evaluation's metrics
(:mod:`diffscale.core.metrics`) in its metric space.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
import xarray as xr
from tqdm import tqdm

from diffscale.core import cf, io, metrics
from diffscale.core import steps as timesteps  # `steps` is the solver's step count here
from diffscale.core.samples import member_dataset
from diffscale.core.transform import to_metric_space
from diffscale.method import conditioning as cm
from diffscale.method.conditioning import SeasonData, load_season
from diffscale.method.devices import compiled, device, precision
from diffscale.method.edm import nfe
from diffscale.method.loop import TqdmToLog, step_generator
from diffscale.method.residual import ResidualModel, load_model
from diffscale.method.tiling import stride_at

log = logging.getLogger("diffscale.method.sampling")


def day_generator(seed: int, day: pd.Timestamp) -> torch.Generator:
    return step_generator(seed, int(day.toordinal()))


def _predict(model: ResidualModel, data: SeasonData, static: np.ndarray, day: pd.Timestamp, history: np.ndarray,
             members: int, sampler: str, steps: int, seed: int, tile: int | None, stride: int | None) -> np.ndarray:
    raw = torch.from_numpy(cm.raw_condition(data.coarse_on(day), static, day))
    hist = torch.from_numpy(np.ascontiguousarray(history, dtype=np.float32))
    out = model.sample_day(raw, hist, members, sampler, steps, day_generator(seed, day), tile, stride)
    return out.numpy()  # (M, H, W)


def static_condition(model: ResidualModel, data: SeasonData) -> np.ndarray:
    """The season's static channels for ``model``; refused, naming the model file, unless it was trained on the same fields."""
    if tuple(data.static) != model.spec.static:
        raise io.DataValidationError(
            model.path, f"the model was trained with the static fields {list(model.spec.static) or 'none'} "
                        f"(besides lat/lon), the split files hold {list(data.static) or 'none'}: retrain it on these "
                        "files or give the same static fields")
    return cm.static_channels(data.lat, data.lon, data.static)


def teacher_forced(model: ResidualModel, data: SeasonData, days: Iterable[pd.Timestamp], members: int, sampler: str,
                   steps: int, seed: int = 0, tile: int | None = None, stride: int | None = None) -> np.ndarray:
    """(M, T, H, W) scaled samples of ``days``, history = true fine days before each day."""
    static = static_condition(model, data)
    start_guess = mean_residual(data)
    out = []
    for day in tqdm(list(days), desc="teacher-forced", file=TqdmToLog(), mininterval=10, ascii=True):
        history = np.stack([data.fine_on(d) if data.has_fine(d) else _start_guess(data, d, start_guess)
                            for d in cm.history_window(day, model.spec.history, data.step)])[None]
        out.append(_predict(model, data, static, day, history, members, sampler, steps, seed, tile, stride))
    h, w = data.shape
    return np.stack(out, axis=1) if out else np.empty((members, 0, h, w), np.float32)


def runs(days: pd.DatetimeIndex, step: str = "day") -> list[pd.DatetimeIndex]:
    """Split sorted days into runs of consecutive steps."""
    return timesteps.runs(days, step)


def _start_guess(data: SeasonData, day: pd.Timestamp, residual: np.ndarray) -> np.ndarray:
    """A history day without fine data: its coarse field (the first one before the record) + the mean residual."""
    return data.coarse_on(max(day, data.coarse_times[0])) + residual


def mean_residual(data: SeasonData) -> np.ndarray:
    """(H, W): the season's mean of fine - coarse over the training days."""
    days = data.days["train"]
    return np.mean([data.fine_on(d) - data.coarse_on(d) for d in days if data.has_fine(d)], axis=0).astype(np.float32)


@dataclass
class ChainState:
    """Where an autoregressive run stands: what the day after ``last_day`` continues from.

    known: the run's predictions of its last ``history`` days (spin-up days included),
    day -> (M, H, W) scaled; the only thing a later day reads from the run's past.
    """

    last_day: pd.Timestamp | None = None  # the last beyond day sampled; None: none yet
    known: dict[pd.Timestamp, np.ndarray] = field(default_factory=dict)


def _history(data: SeasonData, day: pd.Timestamp, k: int, known: dict[pd.Timestamp, np.ndarray], members: int,
             start_guess: np.ndarray) -> np.ndarray:
    """(M, k, H, W): the run's own predictions, else the fine record, else the start guess."""
    h, w = data.shape
    frames = []
    for d in cm.history_window(day, k, data.step):
        if d in known:
            frames.append(known[d])
        elif data.has_fine(d):
            frames.append(data.fine_on(d)[None])
        else:
            frames.append(_start_guess(data, d, start_guess)[None])
    frames = [np.broadcast_to(f, (members, h, w)) for f in frames]
    return np.stack(frames, axis=1)


def autoregressive(model: ResidualModel, data: SeasonData, days: Iterable[pd.Timestamp], members: int, sampler: str,
                   steps: int, spinup: int, seed: int = 0, tile: int | None = None, stride: int | None = None) -> np.ndarray:
    """(M, T, H, W) scaled samples of ``days`` (sorted), each member fed its own predictions."""
    return continue_chain(model, data, days, members, sampler, steps, spinup, ChainState(), seed, tile, stride)[0]


def continue_chain(model: ResidualModel, data: SeasonData, days: Iterable[pd.Timestamp], members: int, sampler: str,
                   steps: int, spinup: int, state: ChainState, seed: int = 0, tile: int | None = None,
                   stride: int | None = None, start_guess: np.ndarray | None = None) -> tuple[np.ndarray, ChainState]:
    """:func:`autoregressive` from ``state``: (M, T, H, W) scaled samples of ``days`` and the state after them.

    A run of ``days`` that starts the day after ``state.last_day`` goes on from
    ``state.known``; every other run starts afresh ``spinup`` days before its first day.
    start_guess: the mean residual of the start (default :func:`mean_residual` of ``data``;
    new coarse data without a fine record give the training data's).
    """
    days = pd.DatetimeIndex(sorted(days))
    static = static_condition(model, data)
    k = model.spec.history
    start_guess = mean_residual(data) if start_guess is None else start_guess
    out: dict[pd.Timestamp, np.ndarray] = {}
    bar = tqdm(total=len(days), desc="autoregressive", file=TqdmToLog(), mininterval=10, ascii=True)
    step = data.step
    for run in runs(days, step):
        if state.last_day is not None and timesteps.shift(state.last_day, 1, step) == run[0]:
            known, start = dict(state.known), run[0]
        else:
            known, start = {}, max(run[0] - pd.Timedelta(days=spinup), data.coarse_times[0])
        for day in timesteps.in_period(start, run[-1], step):
            if data.has_fine(day):
                continue  # spin-up inside the fine record: the truth is the history
            history = _history(data, day, k, known, members, start_guess)
            pred = _predict(model, data, static, day, history, members, sampler, steps, seed, tile, stride)
            known[day] = pred
            # Only the last `history` days are ever read again.
            known.pop(timesteps.shift(day, -k, step), None)
            if day >= run[0]:
                out[day] = pred
                bar.update(1)
        state = ChainState(run[-1], known)
    bar.close()
    h, w = data.shape
    samples = np.stack([out[d] for d in days], axis=1) if len(days) else np.empty((members, 0, h, w), np.float32)
    return samples, state


def samples_dataset(scaled: np.ndarray, days: pd.DatetimeIndex, data: SeasonData, attrs: dict) -> xr.Dataset:
    """(M, T, H, W) scaled samples -> the sample-file dataset (member dimension, physical units)."""
    physical = np.asarray(data.scaler.inverse(scaled.astype(np.float64)), dtype=np.float32)
    return member_dataset(physical, days, data.lat, data.lon, data.variable, data.attrs, attrs)


def ensemble_scores(samples: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Self-check scores in the space given (the metric space for the files): samples (M, T, H, W), truth (T, H, W).

    r2 and rmse of the ensemble mean, fair CRPS and spread/skill (NaN for one member),
    as the evaluation stage defines them; it has the full set.
    """
    members = np.asarray(samples, dtype=np.float64)
    mean = members.mean(axis=0)
    return {"r2": metrics.r2(truth, mean), "rmse": metrics.rmse(truth, mean), "crps": metrics.crps(truth, members),
            "spread_skill": metrics.spread_skill(truth, members)}


def model_space(data: SeasonData, log10: bool, floor: float) -> Callable[[np.ndarray], np.ndarray]:
    """Scaled -> the metric space (:func:`diffscale.core.transform.to_metric_space` of the physical value)."""
    def convert(scaled: np.ndarray) -> np.ndarray:
        return to_metric_space(data.scaler.inverse(scaled.astype(np.float64)), log10, floor)
    return convert


@dataclass(frozen=True)
class ValidationSet:
    """A season's validation days with a full history (what a sampling choice may be tuned on), and their truth."""

    data: SeasonData
    days: pd.DatetimeIndex
    truth: np.ndarray  # (T, H, W) in the metric space
    convert: Callable[[np.ndarray], np.ndarray]  # scaled samples -> the metric space


def validation_set(split_dir: str | os.PathLike, season: str, variable: str, transform: dict,
                   history: int) -> ValidationSet | None:
    """The validation days of a region's split files for a model of ``history`` days; None if no day has one.

    Only the validation days and their histories are read: no test or beyond truth.
    """
    data = load_season(split_dir, season, variable, days=cm.days_of(split_dir, season)["val"], history=history,
                       truth=False)
    days = cm.training_days(data, "val", history)
    if not len(days):
        return None
    convert = model_space(data, transform["log10"], transform["floor"])
    return ValidationSet(data, days, convert(np.stack([data.fine_on(d) for d in days])), convert)


def compare_samplers(model: ResidualModel, data: SeasonData, days: pd.DatetimeIndex, members: int,
                     runs: list[tuple[str, int]], convert: Callable[[np.ndarray], np.ndarray], seed: int = 0, tile: int | None = None,
                     stride: int | None = None) -> list[dict]:
    """Teacher-forced ensembles of ``days`` by each (sampler, steps); rows of sampler, steps, nfe, crps, rmse, seconds."""
    truth = convert(np.stack([data.fine_on(d) for d in days]))
    rows = []
    for name, steps in runs:
        t0 = time.perf_counter()
        samples = teacher_forced(model, data, days, members, name, steps, seed, tile, stride)
        seconds = time.perf_counter() - t0
        sc = ensemble_scores(convert(samples), truth)
        rows.append({"sampler": name, "steps": steps, "nfe": nfe(name, steps, model.denoiser), "crps": sc["crps"],
                     "rmse": sc["rmse"], "seconds": seconds, "days": len(days), "members": members})
        log.info("%s %d steps: crps %.4f rmse %.4f in %.1f s", name, steps, sc["crps"], sc["rmse"], seconds)
    return rows


def timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float]:
    """(fn(*args, **kwargs), seconds it took)."""
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def stride_of(model: ResidualModel, sampling: dict) -> int:
    """Stride between tile cores from the config's sampling.tile, halo and overlap."""
    return stride_at(sampling["tile"] or model.spec.patch, model.spec.halo, sampling["overlap"])


def sampling_options(model: ResidualModel, sampling: dict) -> dict:
    """The drivers' keyword arguments from the config's ``sampling`` section."""
    return dict(sampler=sampling["sampler"], steps=sampling["steps"], seed=sampling["seed"],
                tile=sampling["tile"] or None, stride=stride_of(model, sampling))


TEACHER_FORCED = "teacher-forced (history = true fine days before t)"
AUTOREGRESSIVE = "autoregressive (history = own predictions)"


def sample_attrs(model: ResidualModel, name: str, model_path: str | os.PathLike, sampling: dict) -> dict:
    """The provenance attributes of a model's sample files (the mode is added per file)."""
    return {"model": name, "checkpoint": str(model_path), "seed": sampling["seed"],
            **model.provenance(sampling["sampler"], sampling["steps"])}


def sampling_model(model_path: str | os.PathLike, device_name: str,
                   compile_denoiser: bool = False) -> tuple[ResidualModel, torch.device]:
    """The saved model on the config's ``device`` (its denoiser compiled there if asked and a GPU), and that device."""
    dev = device(device_name)
    model = compiled(load_model(model_path, dev), dev, compile_denoiser)
    log.info("sampling %s on %s%s", model_path, dev, " (denoiser compiled)" if compile_denoiser and dev.type == "cuda" else "")
    return model, dev


class ScoreSums:
    """:func:`ensemble_scores` over slabs of days: the sums its r2, rmse, fair CRPS and
    spread/skill follow from, so a self-check over 23 years of beyond days holds a block of
    them, not the whole run. Equal to :func:`ensemble_scores` of the slabs joined up to
    rounding (``tests/test_beyond.py``)."""

    def __init__(self) -> None:
        self.members = 0
        self.shift: float | None = None  # the first slab's truth mean: the sum of squares stays well conditioned
        self.n = 0  # finite (truth, ensemble mean) pairs: r2 and rmse
        self.s = self.ss = self.sse = 0.0
        self.crps_n, self.crps_sum = 0, 0.0
        self.spread_n, self.spread_var, self.spread_sse = 0, 0.0, 0.0

    def add(self, samples: np.ndarray, truth: np.ndarray) -> ScoreSums:
        """Add (M, T, H, W) samples and their (T, H, W) truth, in the metric space."""
        x = np.asarray(samples, dtype=np.float64)
        y = np.asarray(truth, dtype=np.float64)
        self.members = x.shape[0]
        mean = x.mean(axis=0)
        ok = np.isfinite(y) & np.isfinite(mean)
        if self.shift is None and ok.any():
            self.shift = float(y[ok].mean())
        yc = y[ok] - (self.shift or 0.0)
        self.n += int(ok.sum())
        self.s += float(yc.sum())
        self.ss += float(np.square(yc).sum())
        self.sse += float(np.square(y[ok] - mean[ok]).sum())
        points = metrics.crps_points(y, x)
        finite = np.isfinite(points)
        self.crps_n += int(finite.sum())
        self.crps_sum += float(points[finite].sum())
        if self.members > 1:
            every = np.isfinite(y) & np.all(np.isfinite(x), axis=0)
            self.spread_n += int(every.sum())
            self.spread_var += float(np.var(x, axis=0, ddof=1)[every].sum())
            self.spread_sse += float(np.square(y[every] - mean[every]).sum())
        return self

    def scores(self) -> dict[str, float]:
        nan = float("nan")
        sst = self.ss - self.s**2 / self.n if self.n else 0.0
        m = self.members
        err = np.sqrt(self.spread_sse / self.spread_n) if self.spread_n else 0.0
        return {"r2": float(1.0 - self.sse / sst) if sst > 0 else nan,
                "rmse": float(np.sqrt(self.sse / self.n)) if self.n else nan,
                "crps": self.crps_sum / self.crps_n if self.crps_n else nan,
                "spread_skill": float(np.sqrt((m + 1) / m * self.spread_var / self.spread_n) / err)
                if m > 1 and err > 0 else nan}


def check_test_days(data: SeasonData, log10: bool, floor: float, test: np.ndarray) -> dict:
    """The self-check's test part: scores of the test samples (M, T, H, W) and of the coarse
    field against the fine truth, in the metric space (the samples in physical units, as the
    sample files hold them and the evaluation reads them)."""
    convert = model_space(data, log10, floor)
    days = data.days["test"]
    truth = convert(np.stack([data.fine_on(d) for d in days]))
    return {"test": ensemble_scores(to_metric_space(np.asarray(test, dtype=np.float64), log10, floor), truth),
            "test_coarse_on_fine": ensemble_scores(convert(np.stack([data.coarse_on(d) for d in days]))[None], truth)}


class BeyondCheck:
    """The self-check's beyond part, a block of days at a time: the samples and the coarse
    field against the truth where there is some (every day for the twin, the days the
    user's files hold for local data)."""

    def __init__(self, log10: bool, floor: float):
        self.log10, self.floor = log10, floor
        self.samples, self.coarse, self.scored = ScoreSums(), ScoreSums(), 0

    def add(self, data: SeasonData, days: pd.DatetimeIndex, samples: np.ndarray) -> None:
        """``samples`` (M, T, H, W) physical values of ``days``, which ``data`` holds."""
        scored = [i for i, d in enumerate(days) if data.truth_on(d) is not None]
        if not scored:
            return
        convert = model_space(data, self.log10, self.floor)
        truth = convert(np.stack([data.truth_on(days[i]) for i in scored]))
        self.samples.add(to_metric_space(np.asarray(samples[:, scored], dtype=np.float64), self.log10, self.floor), truth)
        self.coarse.add(convert(np.stack([data.coarse_on(days[i]) for i in scored]))[None], truth)
        self.scored += len(scored)

    def report(self) -> dict:
        if not self.scored:
            return {}
        return {"beyond": self.samples.scores(), "beyond_coarse_on_fine": self.coarse.scores()}


def sample_test_files(split_dir: str | os.PathLike, season: str, variable: str, model_path: str | os.PathLike,
                      name: str, sampling: dict, output: str | os.PathLike, device_name: str = "auto",
                      metadata: cf.Metadata | None = None) -> np.ndarray:
    """Rule sample: the teacher-forced ensembles of the test days (test.nc); returns them, scaled.

    The same for every trained model; deterministic ones write one member. The beyond
    days are the blocks of :mod:`diffscale.method.beyond`.
    """
    model, dev = sampling_model(model_path, device_name, sampling["compile"])
    days = cm.days_of(split_dir, season)["test"]
    data = load_season(split_dir, season, variable, days=days, history=model.spec.history, truth=False)
    members = 1 if model.deterministic else sampling["members"]
    with precision(dev, sampling["autocast"]):
        test, seconds = timed(teacher_forced, model, data, days, members, **sampling_options(model, sampling))
    log.info("test: %d days x %d members in %.1f s", len(days), members, seconds)
    attrs = sample_attrs(model, name, model_path, sampling) | {"mode": TEACHER_FORCED}
    io.write_netcdf(samples_dataset(test, days, data, attrs), output, metadata=metadata)
    return test


def benchmark_files(split_dir: str | os.PathLike, region: str, season: str, variable: str, model_path: str | os.PathLike,
                    sampling: dict, transform: dict, output: str | os.PathLike,
                    device_name: str = "auto") -> pd.DataFrame:
    """Rule sampler_benchmark: the paper's DDPM against the fast sampler on a few validation days (quality vs cost).

    Validation days only (those the models validate on, :func:`diffscale.method.conditioning.training_days`),
    so the sampler and its steps are chosen without test or beyond truth.
    """
    model, dev = sampling_model(model_path, device_name, sampling["compile"])
    data = load_season(split_dir, season, variable, days=cm.days_of(split_dir, season)["val"],
                       history=model.spec.history, truth=False)
    days = cm.training_days(data, "val", model.spec.history)[: sampling["benchmark_days"]]
    if not len(days):
        log.warning("region %s, season %s has no validation day to compare the samplers on (split.val_fraction 0, "
                    "or every validation day has a test day in its history): the comparison is empty", region, season)
        rows = []
    else:
        runs = [("ddpm", sampling["ddpm_steps"]), ("dpmpp", sampling["steps"])]
        opts = sampling_options(model, sampling)
        with precision(dev, sampling["autocast"]):
            rows = compare_samplers(model, data, days, sampling["benchmark_members"], runs,
                                    model_space(data, transform["log10"], transform["floor"]),
                                    seed=opts["seed"], tile=opts["tile"], stride=opts["stride"])
    columns = ["sampler", "steps", "nfe", "crps", "rmse", "seconds", "days", "members"]
    table = pd.DataFrame(rows, columns=columns).assign(region=region, season=season)
    with io.atomic_path(output) as tmp:
        table.to_csv(tmp, index=False)
    log.info("\n%s", table.to_string(index=False))
    return table


def members_curve_files(split_dir: str | os.PathLike, region: str, season: str, variable: str,
                        model_path: str | os.PathLike, sampling: dict, transform: dict, output: str | os.PathLike,
                        device_name: str = "auto") -> pd.DataFrame:
    """Rule members_curve: :func:`diffscale.core.metrics.member_curve` of a teacher-forced ensemble on the validation days.

    ``sampling.curve_members`` members, drawn as the test ensembles are; validation days
    only, so the number of members is chosen without looking at test or beyond truth.
    """
    model, dev = sampling_model(model_path, device_name, sampling["compile"])
    held_out = validation_set(split_dir, season, variable, transform, model.spec.history)
    if held_out is None:
        log.warning("region %s, season %s has no validation day to score (split.val_fraction 0, or every validation "
                    "day has a test day in its history): the members curve is empty", region, season)
        table = pd.DataFrame(columns=["members", "groups", "crps_fair", "crps", "rmse_mean", "region", "season", "days"])
        with io.atomic_path(output) as tmp:
            table.to_csv(tmp, index=False)
        return table
    days = held_out.days
    with precision(dev, sampling["autocast"]):
        samples, seconds = timed(teacher_forced, model, held_out.data, days, sampling["curve_members"],
                                 **sampling_options(model, sampling))
    table = pd.DataFrame(metrics.member_curve(held_out.truth, held_out.convert(samples))).assign(
        region=region, season=season, days=len(days))
    with io.atomic_path(output) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    log.info("%d members on %d validation days in %.1f s\n%s", sampling["curve_members"], len(days), seconds,
             table.to_string(index=False))
    return table
