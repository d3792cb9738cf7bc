"""Scoring the workflow's files: every model's samples of one region and season against the fine truth.

The metrics themselves are :mod:`diffscale.core.metrics` and the diagnostics
:mod:`diffscale.evaluation.diagnostics`; this module reads the sample files, the split's
truth and the coarse record, and writes the rows of ``summary.csv`` and the paper's
diagnostics (``diagnostics.json``).

* :func:`evaluate_region_season`: files in, rows and diagnostics out;
* :func:`write_scores`: rule ``evaluate`` (``scores.csv``, ``scores_by_seed.csv``,
  ``comparisons.csv`` and ``diagnostics.json``);
* :func:`write_summary`: rule ``summarize_metrics`` (``summary.csv``, ``comparisons.csv``).

Every seed of a model is scored; the rows of ``summary.csv`` hold the seed means with
bootstrap intervals and ``comparisons.csv`` each model's paired difference from the method
(:mod:`diffscale.evaluation.bootstrap`). The diagnostics and figures use the first seed.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from diffscale.core import io, registry
from diffscale.core import steps as timesteps
from diffscale.core.days import DaySplit
from diffscale.core.grids import grid_of
from diffscale.core.metrics import (METRIC_COLUMNS, CoarseAverager, coarse_cell_px, coarse_consistency,
                                    high_frequency_cutoff, rank_histogram, skill_score)
from diffscale.core.samples import read_members
from diffscale.core.transform import to_metric_space
from diffscale.evaluation import diagnostics as dg
from diffscale.evaluation.bootstrap import COMPARISON_COLUMNS, PeriodScores, Resamples
from diffscale.evaluation.day_scores import DayScores, day_spectra

log = logging.getLogger(__name__)

PERIODS = ("test", "beyond")
SETTINGS = {"variogram_pairs": 20000, "variogram_bins": 24, "variogram_max_km": 600.0, "acf_lags": 30,
            "persistence_lags": 10, "seed": 0, "bootstrap": 1000}
# Skill scores against reference models of the same region, season and period (columns
# "{skill}_{reference}"): period-free comparisons, unlike r2, whose variance term differs between periods.
SKILL_OF = {"crpss": "crps_fair", "rmse_ss": "rmse"}
SKILL_REFERENCES = ("bicubic", "ceiling")
SKILL_COLUMNS = [f"{skill}_{ref}" for ref in SKILL_REFERENCES for skill in SKILL_OF]
SUMMARY_COLUMNS = ["region", "season", "model", "period", *METRIC_COLUMNS, *SKILL_COLUMNS, "ssim_member", "coarse_rmse",
                   "coarse_bias", "coarse_rmse_truth", "coarse_bias_truth", "drift_rmse_per_year", "members", "days",
                   "seeds"]

PathLike = str | os.PathLike
# One model's samples: {period: path} of one run, or a list of them, one per seed.
Runs = Mapping[str, PathLike] | Sequence[Mapping[str, PathLike]]


def seed_files(files: Mapping[str, PathLike], seeds: Mapping[str, Sequence[int]]) -> dict[str, list[dict[str, PathLike]]]:
    """``{model: [{period: path} of each seed]}`` from the rules' inputs, named ``{model}_s{seed}_{period}``."""
    return {m: [{p: files[f"{m}_s{s}_{p}"] for p in PERIODS} for s in ss] for m, ss in seeds.items()}


def sample_files(files: Mapping[str, PathLike], models: Sequence[str]) -> dict[str, dict[str, PathLike]]:
    """``{model: {period: path}}`` of each model's first seed (what the figures show)."""
    return {m: runs[0] for m, runs in seed_files(files, {m: [0] for m in models}).items()}


def _runs(samples: Mapping[str, Runs]) -> dict[str, list[Mapping[str, PathLike]]]:
    """Every model's runs as a list, in registry order (the rows, diagnostics and figures follow it)."""
    return {m: [samples[m]] if isinstance(samples[m], Mapping) else list(samples[m])
            for m in registry.order(list(samples))}


def read_truths(fine_path: PathLike, truth_path: PathLike | None, days: DaySplit,
                variable: str) -> tuple[xr.DataArray, dict[str, xr.DataArray]]:
    """The fine record, and the truth of each period that has some: ``{"test": ..., "beyond": ...}``.

    Beyond truth is the season's beyond days that truth.nc holds (the user's files may
    cover only some); without truth.nc or without any of those days there is none.
    """
    fine = io.read_field(fine_path, variable)
    truths = {"test": fine.sel(time=days.test)}
    if truth_path is not None and len(days.beyond):
        truth = io.read_field(truth_path, variable, times=days.beyond)  # the season's days, not 25 years of all seasons
        held = days.beyond.intersection(pd.DatetimeIndex(truth.time.values).normalize())
        if len(held):
            truths["beyond"] = truth.sel(time=held)
    for t in truths.values():
        if not (np.array_equal(t.lat, fine.lat) and np.array_equal(t.lon, fine.lon)):
            raise io.DataValidationError(truth_path, "grid differs from the fine record's")
    return fine, truths


def _floats(values) -> list[float]:
    return list(map(float, values))


@dataclass(frozen=True)
class _Scoring:
    """What every period and model of one region and season is scored with."""

    lat: np.ndarray
    lon: np.ndarray
    coarse: xr.DataArray  # the raw coarse record, native grid
    averager: CoarseAverager
    cell_px: float
    log10: bool
    floor: float
    fine_period: tuple[str, str]
    settings: dict

    @classmethod
    def build(cls, fine: xr.DataArray, coarse_files: Sequence[PathLike], variable: str, log10: bool, floor: float,
              fine_period: tuple[str, str], settings: dict | None) -> _Scoring:
        fine_grid = grid_of(fine)
        coarse = io.read_record(coarse_files, variable)
        return cls(fine_grid.lat, fine_grid.lon, coarse, CoarseAverager(fine_grid, grid_of(coarse)),
                   coarse_cell_px(grid_of(coarse), fine_grid), log10, floor, fine_period, SETTINGS | (settings or {}))

    @functools.cached_property
    def step(self) -> str:
        """The records' time step, told from the regular coarse record: lags count steps."""
        return timesteps.classify(pd.DatetimeIndex(self.coarse.time.values))[0] or "day"

    @property
    def lags(self) -> range:
        return range(1, self.settings["persistence_lags"] + 1)

    def space(self, x) -> np.ndarray:
        return to_metric_space(np.asarray(x), self.log10, self.floor)

    def coarse_on(self, times: pd.DatetimeIndex) -> np.ndarray:
        """The coarse record (physical) on ``times``; every day must be there."""
        have = pd.DatetimeIndex(self.coarse.time.values).normalize()
        missing = pd.DatetimeIndex(times).difference(have)
        if len(missing):
            raise io.DataValidationError(None, f"the coarse record lacks {len(missing)} day(s), first {missing[0].date()}")
        return self.coarse.sel(time=pd.DatetimeIndex(times)).values

    def coarse_consistency(self, physical: np.ndarray, coarse_physical: np.ndarray) -> dict[str, float]:
        return coarse_consistency(physical, coarse_physical, self.averager, self.log10, self.floor)

    def variogram(self, fields: np.ndarray) -> tuple[dict, np.ndarray]:
        """The semivariogram of ``fields`` with its spherical fit (JSON-ready), and the bins' distances."""
        s = self.settings
        v = dg.semivariogram(fields, self.lat, self.lon, n_pairs=s["variogram_pairs"], max_km=s["variogram_max_km"],
                             n_bins=s["variogram_bins"], seed=s["seed"])
        return {"gamma": _floats(v["gamma"]), "pairs": list(map(int, v["pairs"])),
                "fit": dg.fit_spherical(v["distance"], v["gamma"], v["pairs"])}, v["distance"]

    def memory(self, fields: np.ndarray, times: pd.DatetimeIndex) -> tuple[dict, dict]:
        """ACF/PACF of the area-mean series and the persistence curves (JSON-ready)."""
        acf, pacf = dg.acf_pacf(dg.area_mean_series(fields, times, self.step), self.settings["acf_lags"])
        curves = dg.lag_curves(fields, times, self.lags, self.step)
        return {"acf": _floats(acf), "pacf": _floats(pacf)}, {"rmse": _floats(curves["rmse"]), "r2": _floats(curves["r2"])}


def _record_diagnostics(sc: _Scoring, fine: xr.DataArray, core: pd.DatetimeIndex, variable: str) -> dict:
    """The diagnostics' skeleton with the fine record's own curves (the reference where no truth exists)."""
    record = sc.space(fine.sel(time=core).values)
    acf, lags = sc.memory(record, core)
    variogram, distance = sc.variogram(record)
    return {
        "metric_space": "log10" if sc.log10 else "linear", "variable": variable, "coarse_cell_px": sc.cell_px,
        "lat": _floats(sc.lat), "lon": _floats(sc.lon),
        "variogram": {"record truth": variogram}, "spectra": {}, "rank_histogram": {}, "drift": {},
        "acf": {"record truth": acf}, "lags": {"lag": list(sc.lags), "record truth": lags},
        "variogram_distance_km": _floats(distance),
    }


@dataclass(frozen=True)
class _Truth:
    """One period's truth (metric space) on its scored days, with the coarse record there."""

    values: np.ndarray
    days: pd.DatetimeIndex
    coarse: np.ndarray  # the coarse record (physical) on those days
    coarse_consistency: dict[str, float]
    spectra: tuple[np.ndarray, np.ndarray]  # wavenumbers (K,) and each day's power spectrum (T, K): once, not per model


def _score_period(sc: _Scoring, diag: dict, period: str, times: pd.DatetimeIndex, truth_da: xr.DataArray | None,
                  samples: Mapping[str, list[Mapping[str, PathLike]]], variable: str) -> PeriodScores | None:
    """Every seed of every model for one period (None without truth); adds the first seed's curves to ``diag``."""
    # The days scored: those with truth (all test days; the beyond days truth.nc holds).
    started = time.perf_counter()
    scored = pd.DatetimeIndex(truth_da.time.values) if truth_da is not None else times[:0]
    pick = times.get_indexer(scored)
    if np.array_equal(pick, np.arange(len(times))):
        pick = slice(None)  # every day has truth (the twin): a view, not a copy of the season's members
    coarse = sc.coarse_on(times)[pick]
    truth = None
    if truth_da is not None:
        values = sc.space(truth_da.values)
        truth = _Truth(values, scored, coarse, sc.coarse_consistency(truth_da.values, coarse), day_spectra(values))
        k, rings = truth.spectra
        diag["spectra"][period] = {"k": _floats(k), "cutoff": high_frequency_cutoff(sc.cell_px),
                                   "truth": _floats(rings.mean(axis=0))}
        diag["variogram"][f"{period} truth"] = sc.variogram(truth.values)[0]
    found = None
    if truth is not None:
        n_seeds = max(len(runs) for runs in samples.values())
        found = PeriodScores(Resamples.draw(len(scored), n_seeds, sc.settings["bootstrap"], sc.settings["seed"]), {}, {})
    for model, runs in samples.items():
        for seed, paths in enumerate(runs):
            # The diagnostics and figures show the first seed; the others are scored only.
            curves = diag if seed == 0 else None
            if curves is None and found is None:
                continue
            members = _score_run(sc, curves, found, period, times, pick, truth, model, seed, paths[period], variable)
            # A season of 23 years takes minutes a model: the log says how far the job has come.
            log.info("%s: %s seed %d scored (%d days x %d members) after %.0f s", period, model, seed, len(times),
                     members, time.perf_counter() - started)
    if truth is not None and period == "beyond":
        diag["acf"]["beyond truth"], diag["lags"]["beyond truth"] = sc.memory(truth.values, scored)
    return found


def _score_run(sc: _Scoring, curves: dict | None, found: PeriodScores | None, period: str, times: pd.DatetimeIndex,
               pick: slice | np.ndarray, truth: _Truth | None, model: str, seed: int, path: PathLike,
               variable: str) -> int:
    """One seed of one model: its curves into ``curves``, its scores into ``found``; returns its member count.

    A function of its own so that a model's fields (physical float32 and metric float64, 3.9 GB
    for a season of area1 over 23 years) are freed before the next model's are read, not held
    beside them.
    """
    members_da = read_members(path, variable, times)
    if not (np.allclose(members_da.lat, sc.lat) and np.allclose(members_da.lon, sc.lon)):
        raise io.DataValidationError(path, "grid differs from the region's fine grid in the split files")
    physical = members_da.values  # (M, T, Y, X)
    members = sc.space(physical)
    if curves is not None:
        curves["variogram"][f"{period} {model}"] = sc.variogram(members[0])[0]
        if period == "beyond":
            curves["acf"][f"beyond {model}"], curves["lags"][f"beyond {model}"] = sc.memory(members[0], times)
    if found is not None:
        day_scores = DayScores(truth.values, members[:, pick], sc.cell_px, truth.spectra)
        row = _model_row(sc, curves, model, period, truth, physical[:, pick], members[:, pick], day_scores)
        found.add(model, row | {"seed": seed}, day_scores.scores(found.resamples.days))
    return physical.shape[0]


def _ensemble_mean(fields: np.ndarray) -> np.ndarray:
    """(M, T, Y, X) -> (T, Y, X); one member is its own mean (a view, not a season-sized copy)."""
    return fields[0] if fields.shape[0] == 1 else fields.mean(axis=0)


def _model_row(sc: _Scoring, diag: dict | None, model: str, period: str, truth: _Truth, physical: np.ndarray,
               members: np.ndarray, day_scores: DayScores) -> dict:
    """One model's scores on one period's scored days; adds its spectrum, rank histogram and drift to ``diag``.

    The scores are ``day_scores`` on every day once: :func:`diffscale.core.metrics.score`'s
    columns (equal to rel 1e-9, tests/test_bootstrap.py), from sums taken a slab of days at a
    time, where ``score`` makes temporaries the size of the season's fields.
    """
    if diag is not None:
        diag["spectra"][period][model] = _floats(np.nanmean(day_scores.member_spectra, axis=0))
        diag["rank_histogram"].setdefault(period, {})[model] = list(map(int, rank_histogram(truth.values, members,
                                                                                            sc.settings["seed"])))
    cc = sc.coarse_consistency(_ensemble_mean(physical), truth.coarse)
    row = {"model": model, "period": period} | day_scores.score_row() | {
        "coarse_rmse": cc["rmse"], "coarse_bias": cc["bias"], "coarse_rmse_truth": truth.coarse_consistency["rmse"],
        "coarse_bias_truth": truth.coarse_consistency["bias"]}
    if period == "beyond":
        d = dg.drift(truth.values, _ensemble_mean(members), truth.days, sc.fine_period)
        if diag is not None:
            diag["drift"][model] = {"time": [str(t.date()) for t in d["time"]],
                                    "days_from_record": list(map(int, d["days_from_record"])),
                                    "rmse": _floats(d["rmse"]), "r2": _floats(d["r2"])}
        row["drift_rmse_per_year"] = d.attrs["trend_rmse_per_year"]
    return row


@dataclass(frozen=True)
class RegionSeasonScores:
    """What rule evaluate writes for one region and season.

    summary: one row per model and period (registry order, test first), the seed means of
    the summary.csv columns with ``{score}_lo/_hi`` and ``seeds``; by_seed: the same per
    seed (column ``seed``); comparisons: each model minus the method in RMSE and CRPS with
    paired intervals; diagnostics: the paper's curves of each model's first seed.
    """

    summary: list[dict]
    by_seed: list[dict]
    comparisons: list[dict]
    diagnostics: dict


def evaluate_region_season(samples: Mapping[str, Runs], fine_path: PathLike,
                           truth_path: PathLike | None, days_path: PathLike, coarse_files: Sequence[PathLike],
                           variable: str, log10: bool, floor: float, fine_period: tuple[str, str],
                           settings: dict | None = None) -> RegionSeasonScores:
    """Score every seed of every model's samples of one region and season against the fine truth.

    samples: {model: {"test": path, "beyond": path}} in the sample contract, or {model:
    [one such dict per seed]}; every model with several seeds must have the same number
    (seed k of a model is paired with seed k of the others); fine_path:
    split fine.nc (truth of test days); truth_path: split truth.nc (truth of beyond days)
    or None where no fine truth exists outside the fine record (see :func:`read_truths`);
    days_path: the split's days.json; coarse_files: the raw coarse record (native grid)
    for coarse consistency; settings: overrides of :data:`SETTINGS` (``bootstrap``: the
    resamples behind the intervals).
    """
    runs = _runs(samples)
    counts = {len(r) for r in runs.values()} - {1}
    if len(counts) > 1:
        raise ValueError(f"models have different numbers of seeds: { {m: len(r) for m, r in runs.items()} }")
    days = DaySplit.from_json(days_path)
    fine, truths = read_truths(fine_path, truth_path, days, variable)
    sc = _Scoring.build(fine, coarse_files, variable, log10, floor, fine_period, settings)
    diag = _record_diagnostics(sc, fine, days.core, variable)
    summary, by_seed, comparisons = [], [], []
    for period in PERIODS:
        times = getattr(days, period)
        found = _score_period(sc, diag, period, times, truths.get(period), runs, variable) if len(times) else None
        if found is not None:
            summary += found.summary_rows()
            by_seed += [row for rows in found.rows.values() for row in rows]
            comparisons += [{"period": period} | row for row in found.comparison_rows(registry.METHOD)]
    return RegionSeasonScores(summary, by_seed, comparisons, diag)


def write_scores(samples: Mapping[str, Runs], fine_path: PathLike, truth_path: PathLike | None,
                 days_path: PathLike, coarse_files: Sequence[PathLike], variable: str, log10: bool, floor: float,
                 fine_period: tuple[str, str], settings: dict | None, *, region: str, season: str,
                 scores_out: PathLike, diagnostics_out: PathLike, by_seed_out: PathLike | None = None,
                 comparisons_out: PathLike | None = None) -> pd.DataFrame:
    """Rule evaluate: :func:`evaluate_region_season` written to ``scores.csv`` (seed means with intervals),
    ``scores_by_seed.csv``, ``comparisons.csv`` and ``diagnostics.json``."""
    runs = _runs(samples)
    log.info("region %s, season %s: models %s (seeds %s), beyond truth %s", region, season, ", ".join(runs) or "none",
             ", ".join(f"{m} {len(r)}" for m, r in runs.items()), truth_path)
    found = evaluate_region_season(runs, fine_path, truth_path, days_path, coarse_files, variable, log10,
                                   floor, tuple(fine_period), dict(settings or {}))
    rows, diagnostics = found.summary, found.diagnostics
    where = {"region": region, "season": season}
    table = scores_frame([where | r for r in rows])
    for r in rows:
        log.info("%s %s (%d days, %d seeds): r2 %.3f rmse %.4f [%.4f, %.4f] crps %.4f [%.4f, %.4f]", r["model"],
                 r["period"], r["days"], r["seeds"], r["r2"], r["rmse"], r["rmse_lo"], r["rmse_hi"], r["crps"],
                 r["crps_lo"], r["crps_hi"])
    for r in found.comparisons:
        log.info("%s %s minus %s, %s: %.4f [%.4f, %.4f]%s", r["model"], r["period"], r["reference"], r["score"],
                 r["difference"], r["lo"], r["hi"], f", {r['better']} better" if r["better"] else ", not resolved")
    n_beyond = len(DaySplit.from_json(days_path).beyond)
    if n_beyond and not any(r["period"] == "beyond" for r in rows):
        why = "no fine truth outside the fine record" if truth_path is None else f"{truth_path} holds none of these days"
        log.info("beyond: %d day(s) reconstructed but unscored (%s); no beyond rows", n_beyond, why)
    with io.atomic_path(scores_out) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    if by_seed_out is not None:
        with io.atomic_path(by_seed_out) as tmp:
            frame = scores_frame([where | r for r in found.by_seed])
            frame.insert(4, "seed", frame.pop("seed"))
            frame.drop(columns="seeds").to_csv(tmp, index=False, float_format="%.6g")
    if comparisons_out is not None:
        with io.atomic_path(comparisons_out) as tmp:
            comparisons_frame([where | r for r in found.comparisons]).to_csv(tmp, index=False, float_format="%.6g")
    with io.atomic_path(diagnostics_out) as tmp:
        tmp.write_text(json.dumps({"region": region, "season": season, "models": list(runs)} | diagnostics))
    return table


def with_skill_scores(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with the :data:`SKILL_COLUMNS`: each row's score against the reference's row of its region, season, period.

    NaN where the reference has no row (a table without the ``ceiling`` model, say).
    """
    keys = ["region", "season", "period"]
    out = df.copy()
    for ref in SKILL_REFERENCES:
        base = df[df["model"] == ref].groupby(keys, as_index=False)[list(SKILL_OF.values())].mean()
        aligned = df[keys].merge(base, on=keys, how="left")  # row order of df
        for skill, column in SKILL_OF.items():
            out[f"{skill}_{ref}"] = skill_score(df[column].to_numpy(float), aligned[column].to_numpy(float))
    return out


def scores_frame(rows: list[dict]) -> pd.DataFrame:
    """Rows of scores -> a DataFrame with the summary columns first (present even when empty), skill scores included."""
    df = pd.DataFrame(rows)
    for c in SUMMARY_COLUMNS:
        if c not in df:
            df[c] = np.nan if c not in ("region", "season", "model", "period") else pd.Series(dtype=str)
    df = with_skill_scores(df)
    return df[SUMMARY_COLUMNS + [c for c in df.columns if c not in SUMMARY_COLUMNS]]


def comparisons_frame(rows: list[dict]) -> pd.DataFrame:
    """Rows of comparisons -> a DataFrame with :data:`COMPARISON_COLUMNS` (present even when empty)."""
    df = pd.DataFrame(rows, columns=COMPARISON_COLUMNS)
    df["better"] = df["better"].fillna("")
    return df


def _read_tables(paths: Sequence[PathLike], keys: Sequence[str], what: str) -> list[pd.DataFrame]:
    parts = []
    for path in paths:
        try:
            parts.append(pd.read_csv(path, keep_default_na=False, na_values=[""]))
        except Exception as exc:  # pandas raises several kinds for a broken CSV
            raise io.DataValidationError(path, f"cannot be read as a {what} table ({exc})") from exc
        missing = [c for c in keys if c not in parts[-1]]
        if missing:
            raise io.DataValidationError(path, f"columns {missing} missing")
    return parts


def _sorted(df: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Rows by region, season, then ``by`` with models in registry order and test before beyond."""
    rank = {m: i for i, m in enumerate(registry.order(list(df["model"].unique())))}
    df = df.assign(_m=df["model"].map(rank), _p=df["period"].map({"test": 0, "beyond": 1}))
    keys = ["region", "season", *[{"model": "_m", "period": "_p"}.get(k, k) for k in by]]
    return df.sort_values(keys, kind="stable").drop(columns=["_m", "_p"]).reset_index(drop=True)


def summary_table(paths: Sequence[PathLike]) -> pd.DataFrame:
    """Concatenate per region/season score files, sorted by region, season, model (registry order), period."""
    parts = _read_tables(paths, ("region", "season", "model", "period"), "scores")
    df = scores_frame(pd.concat(parts, ignore_index=True).to_dict("records") if parts else [])
    return _sorted(df, ["model", "period"])


def comparisons_table(paths: Sequence[PathLike]) -> pd.DataFrame:
    """Concatenate per region/season comparison files, sorted by region, season, period, model, score."""
    parts = _read_tables(paths, COMPARISON_COLUMNS, "comparisons")
    df = comparisons_frame(pd.concat(parts, ignore_index=True).to_dict("records") if parts else [])
    return _sorted(df, ["period", "model"])


def write_summary(score_paths: Sequence[PathLike], out: PathLike, comparison_paths: Sequence[PathLike] = (),
                  comparisons_out: PathLike | None = None) -> pd.DataFrame:
    """Rule summarize_metrics: every region's and season's scores in one table (:func:`summary_table`),
    and their comparisons with the method in another (:func:`comparisons_table`)."""
    table = summary_table(list(score_paths))
    with io.atomic_path(out) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    log.info("%d rows (%s)", len(table), ", ".join(sorted(table["model"].unique())) if len(table) else "none")
    if comparisons_out is not None:
        compared = comparisons_table(list(comparison_paths))
        with io.atomic_path(comparisons_out) as tmp:
            compared.to_csv(tmp, index=False, float_format="%.6g")
        log.info("%d comparisons, %d resolved", len(compared), int(compared["excludes_zero"].sum()))
    return table
