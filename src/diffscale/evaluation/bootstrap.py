"""Seed means with 95% bootstrap intervals, and each model's paired difference from the method.

Scores of one region, season and period come from every seed of every model on the same
scored days. A bootstrap resample draws those days with replacement and, with several
seeds, the seed indices with replacement; both draws are shared by every model
(:class:`Resamples`), so a model and the method are compared on the same days and seed k of
one is paired with seed k of the other (seed k of every model trains on the encoder of seed
k). A resample's score of a model is the mean over its drawn seeds of each seed's score on
the drawn days (:class:`~diffscale.evaluation.day_scores.DayScores`); deterministic models
(bicubic, the oracle) have one seed, drawn every time.

* ``summary.csv``: each score's seed mean (of the scores on all days) and the 2.5% and
  97.5% percentiles of its resamples, ``{score}_lo`` and ``{score}_hi``: the spread of the
  days and, with several seeds, of training and sampling. With one seed the interval is
  over days alone.
* ``comparisons.csv``: per model and score (RMSE, CRPS), model minus method, the percentile
  interval of that difference over the same resamples, and whether it excludes 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

LEVEL = 0.95
COMPARED = ("rmse", "crps_fair")  # the fair CRPS: ensembles of any size, deterministic models alike
COMPARISON_COLUMNS = ["region", "season", "period", "model", "reference", "score", "difference", "lo", "hi",
                      "excludes_zero", "better", "seeds", "days"]


def resample_counts(n: int, draws: int, seed: int | Sequence[int]) -> np.ndarray:
    """(draws, n): how often each of n items is drawn in each resample of n draws with replacement."""
    if n < 1:
        raise ValueError(f"cannot resample {n} items")
    idx = np.random.default_rng(seed).integers(0, n, size=(draws, n))
    counts = np.zeros((draws, n))
    np.add.at(counts, (np.arange(draws)[:, None], idx), 1.0)
    return counts


@dataclass(frozen=True)
class Resamples:
    """The resamples every model of one region, season and period shares: day counts (R, T), seed counts (R, S)."""

    days: np.ndarray
    seeds: np.ndarray

    @classmethod
    def draw(cls, n_days: int, n_seeds: int, draws: int, seed: int = 0) -> Resamples:
        days = resample_counts(n_days, draws, [seed, 0, n_days])
        seeds = resample_counts(n_seeds, draws, [seed, 1, n_seeds]) if n_seeds > 1 else np.ones((draws, 1))
        return cls(days, seeds)

    def seed_mean(self, values: np.ndarray) -> np.ndarray:
        """(S, R) each seed's score on each resample -> (R,) the mean over each resample's drawn seeds.

        A model with one seed (deterministic) is its own mean; any other count must be the
        count the seeds were drawn for, or the pairing by index would be lost.
        """
        values = np.asarray(values, dtype=np.float64)
        if values.shape[0] == 1:
            return values[0]
        if values.shape[0] != self.seeds.shape[1]:
            raise ValueError(f"{values.shape[0]} seeds, but the resamples draw {self.seeds.shape[1]}")
        return np.sum(self.seeds.T * values, axis=0) / self.seeds.sum(axis=1)


def interval(values: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """The central ``level`` percentile interval of the resampled values (NaN resamples left out)."""
    values = np.asarray(values, dtype=np.float64)
    if not np.isfinite(values).any():
        return float("nan"), float("nan")
    tail = 50.0 * (1.0 - level)
    lo, hi = np.nanpercentile(values, [tail, 100.0 - tail])
    return float(lo), float(hi)


@dataclass
class PeriodScores:
    """Every model's scores of one region, season and period, per seed, and on the shared resamples.

    rows: {model: [the score row of each seed, in seed order]}; resampled: {model: {score:
    (S, R)}}, each seed's scores on the resamples' day counts.
    """

    resamples: Resamples
    rows: dict[str, list[dict]]
    resampled: dict[str, dict[str, np.ndarray]]

    def add(self, model: str, row: dict, resampled: Mapping[str, np.ndarray]) -> None:
        """The next seed of ``model``: its score row and its {score: (R,)} on the resamples."""
        self.rows.setdefault(model, []).append(dict(row))
        mine = self.resampled.setdefault(model, {})
        for score, values in resampled.items():
            mine[score] = np.vstack([mine[score], values]) if score in mine else np.atleast_2d(values)

    def summary_rows(self) -> list[dict]:
        """One row per model: the seed mean of every numeric column, ``{score}_lo/_hi`` of every resampled score."""
        out = []
        for model, rows in self.rows.items():
            row = _seed_mean_row(rows)
            for score, values in self.resampled[model].items():
                row[f"{score}_lo"], row[f"{score}_hi"] = interval(self.resamples.seed_mean(values))
            out.append(row | {"seeds": len(rows)})
        return out

    def comparison_rows(self, reference: str, scores: Sequence[str] = COMPARED) -> list[dict]:
        """Each other model minus ``reference`` in each of ``scores``, paired over the shared resamples."""
        if reference not in self.rows:
            return []
        ref_point = _seed_mean_row(self.rows[reference])
        out = []
        for model, rows in self.rows.items():
            if model == reference:
                continue
            point = _seed_mean_row(rows)
            for score in scores:
                diff = (self.resamples.seed_mean(self.resampled[model][score])
                        - self.resamples.seed_mean(self.resampled[reference][score]))
                lo, hi = interval(diff)
                excludes = bool(lo > 0 or hi < 0)
                # RMSE and CRPS: lower is better.
                better = "" if not excludes else (reference if lo > 0 else model)
                out.append({"model": model, "reference": reference, "score": score,
                            "difference": point[score] - ref_point[score], "lo": lo, "hi": hi,
                            "excludes_zero": excludes, "better": better,
                            "seeds": max(len(rows), len(self.rows[reference])), "days": point.get("days")})
        return out


def _seed_mean_row(rows: list[dict]) -> dict:
    """The first seed's row with every numeric column replaced by its mean over the seeds (counts stay counts)."""
    row = {k: v for k, v in rows[0].items() if k != "seed"}
    for key, value in row.items():
        if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
            mean = float(np.mean([r[key] for r in rows]))
            row[key] = int(mean) if isinstance(value, (int, np.integer)) and mean == int(mean) else mean
    return row
