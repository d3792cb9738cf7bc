"""Runs of one model on the same days, compared day by day (diffscale.evaluation.paired)."""

import numpy as np
import pandas as pd
import pytest

from diffscale.core import metrics
from diffscale.evaluation.paired import compare_runs, day_scores


def scores(run: str, crps: np.ndarray, sq: np.ndarray, seeds: int = 1) -> pd.DataFrame:
    days = pd.date_range("2001-01-01", periods=len(crps) // seeds)
    return pd.DataFrame({"run": run, "seed": np.repeat(np.arange(seeds), len(days)), "region": "west", "season": "DJF",
                         "day": np.tile(days, seeds), "crps": crps, "sq": sq})


def test_day_scores_are_the_fair_crps_and_squared_error_of_each_day():
    rng = np.random.default_rng(0)
    truth, members = rng.normal(size=(3, 5, 6)), rng.normal(size=(4, 3, 5, 6))
    crps, sq = day_scores(members, truth)
    for t in range(3):
        assert crps[t] == pytest.approx(metrics.crps(truth[t], members[:, t], fair=True))
        assert sq[t] == pytest.approx(np.mean((members[:, t].mean(axis=0) - truth[t]) ** 2))


def test_a_shift_on_every_day_is_resolved_and_noise_of_the_days_is_not():
    rng = np.random.default_rng(1)
    base = rng.uniform(0.05, 0.15, 40)
    table = compare_runs(pd.concat([scores("ref", base, base ** 2),
                                    scores("worse", base + 0.001, (base + 0.001) ** 2),
                                    scores("noisy", base + rng.normal(0, 0.01, 40), base ** 2)]), "ref", draws=500)
    row = table.set_index("run")
    assert row.loc["ref", ["crps_diff", "crps_diff_lo", "crps_diff_hi"]].tolist() == [0, 0, 0]
    # paired: the days' own spread (0.03) does not widen the interval of a shift every day shares
    assert row.loc["worse", "crps_diff"] == pytest.approx(0.001)
    assert row.loc["worse", "crps_diff_lo"] == pytest.approx(0.001) and row.loc["worse", "crps_diff_hi"] == pytest.approx(0.001)
    assert row.loc["worse", "rmse_diff_lo"] > 0
    assert row.loc["noisy", "crps_diff_lo"] < 0 < row.loc["noisy", "crps_diff_hi"]
    assert row.loc["noisy", "rmse"] == pytest.approx(row.loc["ref", "rmse"])


def test_days_pair_by_seed_whatever_the_row_order():
    base = np.arange(1.0, 7.0)
    ref = scores("ref", base, base, seeds=2)
    other = scores("other", base + 1.0, base, seeds=2).iloc[::-1]  # shuffled rows: still paired by (seed, day)
    row = compare_runs(pd.concat([ref, other]), "ref", draws=200).set_index("run").loc["other"]
    assert row["days"] == 6 and row["crps_diff_lo"] == pytest.approx(1.0) and row["crps_diff_hi"] == pytest.approx(1.0)


def test_runs_on_other_days_or_an_unknown_reference_are_refused():
    base = np.ones(4)
    ref = scores("ref", base, base)
    other = scores("other", base, base).assign(day=lambda d: d["day"] + pd.Timedelta(days=1))
    with pytest.raises(ValueError, match="not scored on the days of 'ref'"):
        compare_runs(pd.concat([ref, other]), "ref")
    with pytest.raises(ValueError, match="no run named 'paper'"):
        compare_runs(ref, "paper")
