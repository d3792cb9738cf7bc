"""Scoring the workflow's files: every model's samples of one region and season against the fine truth.

The metrics themselves are :mod:`diffscale.core.metrics`; this module reads the sample
files, the split's truth and the coarse record, and writes the rows of ``summary.csv``
and the paper's diagnostics.
"""

from __future__ import annotations

import numpy as np

from diffscale.core.grids import grid_of
from diffscale.core.metrics import (METRIC_COLUMNS, CoarseAverager, coarse_cell_px, coarse_consistency,
                                    high_frequency_cutoff, power_spectrum, rank_histogram, score)
from diffscale.core.transform import to_metric_space

PERIODS = ("test", "beyond")


def _series_dict(s) -> dict:
    return {"acf": list(map(float, s[0])), "pacf": list(map(float, s[1]))}


def evaluate_region_season(samples: dict[str, dict[str, str]], fine_path: str, truth_path: str | None,
                           days_path: str, coarse_files: list[str], variable: str, log10: bool, floor: float,
                           fine_period: tuple[str, str], settings: dict | None = None):
    """Score every model's samples of one region and season against the fine truth.

    samples: {model: {"test": path, "beyond": path}} in the sample contract; fine_path:
    split fine.nc (truth of test days); truth_path: split truth.nc (truth of beyond days)
    or None where no fine truth exists outside the fine record; beyond is scored on the
    season's beyond days that truth.nc holds (the user's files may cover only some),
    and not at all where it holds none; coarse_files: the raw coarse record (native
    grid) for coarse consistency.
    Returns (rows, diagnostics): one dict per model and scored period with the
    summary.csv columns, and a JSON-ready dict of the paper's diagnostics.
    """
    import json

    import pandas as pd

    from diffscale.evaluation import diagnostics as dg
    from diffscale.core import io
    from diffscale.core.samples import read_members

    s = {"variogram_pairs": 20000, "variogram_bins": 24, "variogram_max_km": 600.0, "acf_lags": 30,
         "persistence_lags": 10, "seed": 0} | (settings or {})
    days = json.loads(open(days_path).read())
    for key in PERIODS + ("core",):
        if key not in days:
            raise io.DataValidationError(days_path, f"day list '{key}' missing (expected keys core, test, beyond, ...)")
    fine = io.read_field(fine_path, variable)
    fine_grid = grid_of(fine)
    truths = {"test": fine.sel(time=pd.to_datetime(days["test"]))}
    if truth_path is not None and days["beyond"]:
        truth = io.read_field(truth_path, variable)
        have = pd.DatetimeIndex(truth.time.values).normalize()
        held = pd.DatetimeIndex(pd.to_datetime(days["beyond"])).intersection(have)
        if len(held):
            truths["beyond"] = truth.sel(time=held)
    for period, t in truths.items():
        if not (np.array_equal(t.lat, fine.lat) and np.array_equal(t.lon, fine.lon)):
            raise io.DataValidationError(truth_path, "grid differs from the fine record's")
    coarse = io.read_record(coarse_files, variable)
    averager = CoarseAverager(fine_grid, grid_of(coarse))
    cell_px = coarse_cell_px(grid_of(coarse), fine_grid)
    space = lambda x: to_metric_space(np.asarray(x), log10, floor)  # noqa: E731

    def coarse_for(times):
        have = pd.DatetimeIndex(coarse.time.values).normalize()
        missing = pd.DatetimeIndex(times).difference(have)
        if len(missing):
            raise io.DataValidationError(None, f"the coarse record lacks {len(missing)} day(s), first {missing[0].date()}")
        return coarse.sel(time=pd.DatetimeIndex(times)).values

    rows: list[dict] = []
    vg = dict(n_pairs=s["variogram_pairs"], max_km=s["variogram_max_km"], n_bins=s["variogram_bins"], seed=s["seed"])
    lat, lon = fine_grid.lat, fine_grid.lon

    def variogram(fields):
        v = dg.semivariogram(fields, lat, lon, **vg)
        return {"gamma": list(map(float, v["gamma"])), "pairs": list(map(int, v["pairs"])),
                "fit": dg.fit_spherical(v["distance"], v["gamma"], v["pairs"])}, v["distance"]

    record_days = pd.to_datetime(days["core"])
    record = space(fine.sel(time=record_days).values)
    lags = range(1, s["persistence_lags"] + 1)
    rec_lag = dg.lag_curves(record, record_days, lags)
    diag: dict = {
        "metric_space": "log10" if log10 else "linear", "variable": variable, "coarse_cell_px": cell_px,
        "lat": list(map(float, lat)), "lon": list(map(float, lon)),
        "variogram": {}, "spectra": {}, "rank_histogram": {}, "drift": {},
        "acf": {"record truth": _series_dict(dg.acf_pacf(dg.area_mean_series(record, record_days), s["acf_lags"]))},
        "lags": {"lag": list(lags), "record truth": {"rmse": list(map(float, rec_lag["rmse"])), "r2": list(map(float, rec_lag["r2"]))}},
    }
    rv, distance = variogram(record)
    diag["variogram"]["record truth"] = rv
    diag["variogram_distance_km"] = list(map(float, distance))
    for period in PERIODS:
        times = pd.DatetimeIndex(pd.to_datetime(days[period]))
        if len(times) == 0:
            continue
        truth = space(truths[period].values) if period in truths else None
        # The days scored: those with truth (all test days; the beyond days truth.nc holds).
        scored = pd.DatetimeIndex(truths[period].time.values) if truth is not None else times[:0]
        pick = times.get_indexer(scored)
        coarse_phys = coarse_for(times)[pick]
        if truth is not None:
            k, p = power_spectrum(truth)
            diag["spectra"].setdefault(period, {"k": list(map(float, k)), "cutoff": high_frequency_cutoff(cell_px)})["truth"] = list(map(float, p))
            diag["variogram"][f"{period} truth"] = variogram(truth)[0]
            truth_cc = coarse_consistency(truths[period].values, coarse_phys, averager, log10, floor)
        for model, paths in samples.items():
            members_da = read_members(paths[period], variable, days[period])
            if not (np.allclose(members_da.lat, lat) and np.allclose(members_da.lon, lon)):
                raise io.DataValidationError(paths[period], "grid differs from the region's fine grid in the split files")
            phys = members_da.values  # (M, T, Y, X)
            members = space(phys)
            member0 = members[0]
            diag["variogram"][f"{period} {model}"] = variogram(member0)[0]
            if period == "beyond":
                diag["acf"][f"beyond {model}"] = _series_dict(dg.acf_pacf(dg.area_mean_series(member0, times), s["acf_lags"]))
                lc = dg.lag_curves(member0, times, lags)
                diag["lags"][f"beyond {model}"] = {"rmse": list(map(float, lc["rmse"])), "r2": list(map(float, lc["r2"]))}
            if truth is None:
                continue
            phys, members = phys[:, pick], members[:, pick]
            diag["spectra"][period][model] = list(map(float, np.nanmean([power_spectrum(m)[1] for m in members], axis=0)))
            diag["rank_histogram"].setdefault(period, {})[model] = list(map(int, rank_histogram(truth, members, s["seed"])))
            cc = coarse_consistency(np.mean(phys, axis=0), coarse_phys, averager, log10, floor)
            row = {"model": model, "period": period} | score(truth, members, cell_px) | {
                "coarse_rmse": cc["rmse"], "coarse_bias": cc["bias"], "coarse_rmse_truth": truth_cc["rmse"],
                "coarse_bias_truth": truth_cc["bias"]}
            if period == "beyond":
                d = dg.drift(truth, members.mean(axis=0), scored, fine_period)
                diag["drift"][model] = {"time": [str(t.date()) for t in d["time"]],
                                        "days_from_record": list(map(int, d["days_from_record"])),
                                        "rmse": list(map(float, d["rmse"])), "r2": list(map(float, d["r2"]))}
                row["drift_rmse_per_year"] = d.attrs["trend_rmse_per_year"]
            rows.append(row)
        if truth is not None and period == "beyond":
            diag["acf"]["beyond truth"] = _series_dict(dg.acf_pacf(dg.area_mean_series(truth, scored), s["acf_lags"]))
            lc = dg.lag_curves(truth, scored, lags)
            diag["lags"]["beyond truth"] = {"rmse": list(map(float, lc["rmse"])), "r2": list(map(float, lc["r2"]))}
    return rows, diag


SUMMARY_COLUMNS = ["region", "season", "model", "period", *METRIC_COLUMNS, "ssim_member", "coarse_rmse", "coarse_bias",
                   "coarse_rmse_truth", "coarse_bias_truth", "drift_rmse_per_year", "members", "days"]
MODEL_ORDER = ["bicubic", "unet", "vae", "transfer_unet", "diffusion_no_transfer", "diffusion", "oracle"]


def scores_frame(rows: list[dict]):
    """Rows of scores -> a DataFrame with the summary columns first (present even when empty)."""
    import pandas as pd

    df = pd.DataFrame(rows)
    for c in SUMMARY_COLUMNS:
        if c not in df:
            df[c] = np.nan if c not in ("region", "season", "model", "period") else pd.Series(dtype=str)
    return df[SUMMARY_COLUMNS + [c for c in df.columns if c not in SUMMARY_COLUMNS]]


def summary_table(paths: list[str]):
    """Concatenate per region/season score files, sorted by region, season, model, period."""
    import pandas as pd

    from diffscale.core import io

    parts = []
    for path in paths:
        try:
            parts.append(pd.read_csv(path))
        except Exception as exc:  # pandas raises several kinds for a broken CSV
            raise io.DataValidationError(path, f"cannot be read as a scores table ({exc})") from exc
        missing = [c for c in ("region", "season", "model", "period") if c not in parts[-1]]
        if missing:
            raise io.DataValidationError(path, f"columns {missing} missing")
    df = scores_frame(pd.concat(parts, ignore_index=True).to_dict("records") if parts else [])
    rank = {m: i for i, m in enumerate(MODEL_ORDER)}
    df = df.assign(_m=df["model"].map(lambda m: rank.get(m, len(rank))), _p=df["period"].map({"test": 0, "beyond": 1}))
    return df.sort_values(["region", "season", "_m", "_p"], kind="stable").drop(columns=["_m", "_p"]).reset_index(drop=True)
