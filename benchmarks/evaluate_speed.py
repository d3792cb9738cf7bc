"""Where rule evaluate's time goes: each part of a model's scoring, timed on fields of a region's size.

    PYTHONPATH=src python benchmarks/evaluate_speed.py [--shape 432 357] [--days 270] [--members 1]
        [--threads 1]

Rule evaluate scores every model of a region and season on its test and beyond days: at
area1's size over 23 years that is 2,077 days of 154,224 pixels a model (README,
"Paper-size data"). This times each part on ``--days`` random days of ``--shape`` pixels
(three DJF seasons of 90 days by default, so the lag curves meet the seasons' gaps), with
``--members`` members, in the metric space the rule uses:

* the conversion of physical values to the metric space (log10), one field;
* the per-day sums of every score (:class:`diffscale.evaluation.day_scores.DayScores`), with
  the truth's spectra taken by the caller (once per period, as evaluate does) and without;
* the scores of ``--resamples`` bootstrap resamples of the days (nse's per-pixel sums are
  the product of the resamples' day counts with every pixel's daily values);
* the lag curves (persistence RMSE and R2 over 10 lags) and the semivariogram;
* the power spectrum and the rank histogram.

Seconds per part, and per day of the period so they scale to a season. Prints figures;
asserts nothing.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch

from diffscale.core import metrics
from diffscale.core.transform import to_metric_space
from diffscale.evaluation import diagnostics as dg
from diffscale.evaluation.bootstrap import Resamples
from diffscale.evaluation.day_scores import DayScores, day_spectra


def djf_days(n: int) -> pd.DatetimeIndex:
    """n days of consecutive DJF seasons from 2000-12-01: the beyond days' calendar, gaps included."""
    days: list[pd.Timestamp] = []
    year = 2000
    while len(days) < n:
        days += list(pd.date_range(f"{year}-12-01", f"{year + 1}-02-28"))
        year += 1
    return pd.DatetimeIndex(days[:n])


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", type=int, nargs=2, default=[432, 357], help="pixels (area1: 432 357)")
    ap.add_argument("--days", type=int, default=270)
    ap.add_argument("--members", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (evaluation.bootstrap)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    rng = np.random.default_rng(0)
    h, w = a.shape
    times = djf_days(a.days)
    physical = (10 ** rng.normal(-1.3, 0.3, (a.members + 1, a.days, h, w))).astype(np.float32)
    lat, lon = np.linspace(30, 57, h), np.linspace(-20, 2.3, w)
    rows = [("metric space (one field)", timed(lambda: to_metric_space(physical[0], True, 1e-6)))]
    truth = to_metric_space(physical[0], True, 1e-6)
    members = to_metric_space(physical[1:], True, 1e-6)
    spectra = day_spectra(truth)
    scored = DayScores(truth, members, 8.0, spectra)
    resamples = Resamples.draw(a.days, 1, a.resamples)
    rows += [
        ("DayScores (every score's per-day sums)", timed(lambda: DayScores(truth, members, 8.0))),
        ("  the same, the truth's spectra given", timed(lambda: DayScores(truth, members, 8.0, spectra))),
        (f"scores of {a.resamples} bootstrap resamples", timed(lambda: scored.scores(resamples.days))),
        ("lag curves (10 lags)", timed(lambda: dg.lag_curves(members[0], times, range(1, 11)))),
        ("semivariogram (50,000 pairs)", timed(lambda: dg.semivariogram(truth, lat, lon, n_pairs=50000)))]
    rows += [("power spectrum", timed(lambda: metrics.power_spectrum(members[0]))),
             ("rank histogram", timed(lambda: metrics.rank_histogram(truth, members)))]
    table = pd.DataFrame(rows, columns=["part", "seconds"])
    table["ms_per_day"] = table["seconds"] / a.days * 1e3
    print(f"{a.days} days of {h} x {w} pixels, {a.members} member(s), {torch.get_num_threads()} torch thread(s):")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))


if __name__ == "__main__":
    main()
