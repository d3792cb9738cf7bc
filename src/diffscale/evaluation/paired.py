"""Runs of one model on the same days, compared day by day: how a sampling setting moves the scores.

The benchmarks that choose a sampling setting (tiling, precision) sample the same
validation days once per setting. Each run's per-day scores (:func:`day_scores`) are
pooled over regions and seasons, and every run is set against a reference run with a
paired bootstrap over the days (:func:`compare_runs`): one draw of days is shared by every
run, so the interval is that of the difference, not of two scores apart.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from diffscale.core import metrics
from diffscale.evaluation.bootstrap import interval, resample_counts

KEYS = ("seed", "region", "season", "day")  # what pairs a day of one run with the same day of another, where present


def day_scores(samples: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(M, T, H, W) members and (T, H, W) truth in the metric space -> per day fair CRPS (T,) and squared error (T,)."""
    crps = np.nanmean(metrics.crps_points(truth, samples, fair=True), axis=(-2, -1))
    sq = np.nanmean((samples.mean(axis=0) - truth) ** 2, axis=(-2, -1))
    return crps, sq


def compare_runs(scores: pd.DataFrame, reference: str, draws: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Each run's CRPS and RMSE over its days, and run minus ``reference`` with 95% paired bootstrap intervals.

    scores: a row per run and day, columns ``run``, ``region``, ``season``, ``day``, ``crps``
    (fair CRPS of the day) and ``sq`` (squared error of the ensemble mean, the day's mean),
    and ``seed`` where several trained models are pooled (a day of seed k pairs with the same
    day of seed k). Every run must cover the reference's days; RMSE is the root of the drawn
    days' mean sq.
    """
    keys = [k for k in KEYS if k in scores.columns]
    runs = {run: g.sort_values(keys).reset_index(drop=True) for run, g in scores.groupby("run", sort=False)}
    if reference not in runs:
        raise ValueError(f"no run named {reference!r} among {list(runs)}")
    base = runs[reference]
    for run, g in runs.items():
        if not g[keys].equals(base[keys]):
            raise ValueError(f"run {run!r} is not scored on the days of {reference!r}: no pairing")
    counts = resample_counts(len(base), draws, seed)  # (R, T): the same drawn days for every run
    n = counts.sum(axis=1)

    def resampled(g: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        return counts @ g["crps"].to_numpy() / n, np.sqrt(counts @ g["sq"].to_numpy() / n)

    base_crps, base_rmse = resampled(base)
    rows = []
    for run, g in runs.items():
        crps, rmse = resampled(g)
        (c_lo, c_hi), (r_lo, r_hi) = interval(crps - base_crps), interval(rmse - base_rmse)
        rows.append({"run": run, "days": len(g), "crps": g["crps"].mean(), "rmse": np.sqrt(g["sq"].mean()),
                     "crps_diff": g["crps"].mean() - base["crps"].mean(), "crps_diff_lo": c_lo, "crps_diff_hi": c_hi,
                     "rmse_diff": np.sqrt(g["sq"].mean()) - np.sqrt(base["sq"].mean()),
                     "rmse_diff_lo": r_lo, "rmse_diff_hi": r_hi})
    return pd.DataFrame(rows)
