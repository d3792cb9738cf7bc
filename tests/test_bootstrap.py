"""Seed means, bootstrap intervals and the paired comparisons with the method, with answers known in advance."""

from __future__ import annotations

import numpy as np
import pytest

from diffscale.core import metrics
from diffscale.evaluation.bootstrap import PeriodScores, Resamples, interval, resample_counts
from diffscale.evaluation.day_scores import SLAB_DAYS, DayScores

CELL = 4.0


def fields(days: int = 12, members: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A truth with day-to-day changes of level and an ensemble around it (log10-like values)."""
    rng = np.random.default_rng(seed)
    truth = -1.5 + 0.3 * rng.normal(size=(days, 1, 1)) + 0.2 * rng.normal(size=(days, 14, 17))
    ens = truth[None] + 0.15 * rng.normal(size=(members, days, 14, 17)) + 0.05
    return truth, ens


def test_day_scores_of_float32_fields_equal_float64_and_hold_no_float64_copy():
    """evaluate's fields are float32 (a season of area1 over 23 years is 1.3 GB a field): the sums are taken in
    float64 a slab at a time, so the scores are those of the float64 fields and the peak stays far below a copy."""
    import tracemalloc

    rng = np.random.default_rng(0)
    t32 = (-1.5 + 0.2 * rng.normal(size=(16 * SLAB_DAYS, 40, 50))).astype(np.float32)
    e32 = (t32 + 0.15 * rng.normal(size=(2, *t32.shape))).astype(np.float32)
    wide = DayScores(t32.astype(np.float64), e32.astype(np.float64), CELL).scores(np.ones((3, t32.shape[0])))
    tracemalloc.start()
    got = DayScores(t32, e32, CELL)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    for name, values in got.scores(np.ones((3, t32.shape[0]))).items():
        np.testing.assert_array_equal(values, wide[name], err_msg=name)
    assert peak < 0.5 * (t32.nbytes + e32.nbytes) * 2  # half of float64 copies of both: a slab's temporaries


@pytest.mark.parametrize("members,days", [(1, 12), (5, 12), (3, 2 * SLAB_DAYS + 5)])
def test_day_scores_equal_score_on_every_column(members, days):
    """Also over several slabs of days (a season's 23 years are read a slab at a time)."""
    truth, ens = fields(days=days, members=members)
    truth[3, 2, 5] = np.nan  # gaps are left out the same way
    ens[0, -1, 1, 1] = np.nan
    expected = metrics.score(truth, ens, CELL)
    got = {k: float(v[0]) for k, v in DayScores(truth, ens, CELL).scores().items()}
    # Every score of score() has its per-day form (a new column without one fails here).
    assert set(got) == set(expected) - {"members", "days"}
    for name, value in got.items():
        assert value == pytest.approx(expected[name], rel=1e-9, abs=1e-12, nan_ok=True), name
    row = DayScores(truth, ens, CELL).score_row()  # what evaluate writes: score()'s columns, members and days too
    assert set(row) == set(expected) and (row["members"], row["days"]) == (members, days)


def test_day_weights_score_the_resampled_days():
    truth, ens = fields()
    # Every day at least once (so SSIM's data range is that of all days), some twice or three times.
    idx = np.r_[np.arange(12), [0, 0, 4, 7, 11]]
    weights = np.bincount(idx, minlength=12)[None]
    expected = metrics.score(truth[idx], ens[:, idx], CELL)
    got = DayScores(truth, ens, CELL).scores(weights)
    for name, value in got.items():
        assert value[0] == pytest.approx(expected[name], rel=1e-9), name


def test_many_resamples_score_nse_as_each_alone():
    # The resamples' per-pixel sums are taken in float32 (centred), the score's in float64.
    truth, ens = fields(days=40, members=3)
    truth[3, 2, 5] = np.nan
    weights = resample_counts(40, 6, [0, 40])
    scores = DayScores(truth, ens, CELL)
    many = scores.scores(weights)["nse"]
    alone = [scores.scores(row[None])["nse"][0] for row in weights]
    np.testing.assert_allclose(many, alone, rtol=1e-5)
    assert len(set(np.round(many, 6))) > 1  # the resamples differ


def test_resample_counts_draw_n_with_replacement_reproducibly():
    counts = resample_counts(9, 500, [0, 9])
    assert counts.shape == (500, 9) and np.all(counts.sum(axis=1) == 9)
    assert np.array_equal(counts, resample_counts(9, 500, [0, 9]))
    assert (counts == 0).any() and (counts > 1).any()  # with replacement
    assert counts.mean(axis=0) == pytest.approx(np.ones(9), abs=0.15)


def period_scores(truth: np.ndarray, models: dict[str, list[np.ndarray]], draws: int = 400) -> PeriodScores:
    """Every model's seeds scored against the truth on shared resamples, as rule evaluate does."""
    seeds = max(len(runs) for runs in models.values())
    found = PeriodScores(Resamples.draw(truth.shape[0], seeds, draws, seed=3), {}, {})
    for model, runs in models.items():
        for k, ens in enumerate(runs):
            row = {"model": model, "seed": k} | metrics.score(truth, ens, CELL)
            found.add(model, row, DayScores(truth, ens, CELL).scores(found.resamples.days))
    return found


def constant_errors(days: int = 15, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A truth and day errors of very different sizes, all positive."""
    rng = np.random.default_rng(seed)
    truth = rng.normal(size=(days, 6, 7))
    error = np.exp(2.0 * rng.normal(size=(days, 1, 1))) * np.ones((1, 6, 7))
    return truth, error


def comparison(found: PeriodScores, model: str, score: str) -> dict:
    return next(r for r in found.comparison_rows("diffusion") if r["model"] == model and r["score"] == score)


def test_a_constant_difference_comes_back_with_a_zero_width_interval():
    # Deterministic models whose errors differ by 0.5 on every pixel of every day: their CRPS (the MAE)
    # differs by 0.5 on any resample of the days, though each one's CRPS varies widely with the days.
    truth, error = constant_errors()
    found = period_scores(truth, {"unet": [(truth + error + 0.5)[None]], "diffusion": [(truth + error)[None]]})
    row = comparison(found, "unet", "crps_fair")
    assert row["difference"] == pytest.approx(0.5)
    assert row["lo"] == pytest.approx(0.5) and row["hi"] == pytest.approx(0.5)
    assert row["excludes_zero"] and row["better"] == "diffusion"
    # Each model's own interval is wide: the width above is the pairing's doing.
    summary = {r["model"]: r for r in found.summary_rows()}
    assert summary["diffusion"]["crps_hi"] - summary["diffusion"]["crps_lo"] > 1.0
    assert summary["diffusion"]["crps_lo"] < summary["diffusion"]["crps"] < summary["diffusion"]["crps_hi"]


def test_pairing_by_seed_index_keeps_a_constant_difference_exact():
    # Seeds differ a lot, but seed k of unet is seed k of the method plus 0.25: a paired difference.
    truth, error = constant_errors()
    scale = [0.1, 3.0, 10.0]
    method = [(truth + s * error)[None] for s in scale]
    other = [(truth + s * error + 0.25)[None] for s in scale]
    found = period_scores(truth, {"unet": other, "diffusion": method})
    row = comparison(found, "unet", "crps_fair")
    assert (row["lo"], row["difference"], row["hi"]) == pytest.approx((0.25, 0.25, 0.25))
    assert row["seeds"] == 3
    # The seed mean is the mean of the seeds' scores on all days.
    summary = {r["model"]: r for r in found.summary_rows()}
    assert summary["diffusion"]["crps"] == pytest.approx(np.mean([metrics.score(truth, m, CELL)["crps"] for m in method]))
    assert summary["diffusion"]["seeds"] == 3


def test_identical_models_differ_by_nothing_and_noise_is_not_resolved():
    truth, ens = fields(days=20)
    same = period_scores(truth, {"vae": [ens], "diffusion": [ens.copy()]})
    for score in ("rmse", "crps_fair"):
        row = comparison(same, "vae", score)
        assert row["lo"] <= 0 <= row["hi"] and not row["excludes_zero"] and row["better"] == ""
    # Two ensembles drawn alike from the same distribution: the interval straddles 0.
    rng = np.random.default_rng(5)
    alike = truth[None] + 0.15 * rng.normal(size=ens.shape) + 0.05
    found = period_scores(truth, {"vae": [alike], "diffusion": [ens]})
    row = comparison(found, "vae", "crps_fair")
    assert row["lo"] < 0 < row["hi"] and not row["excludes_zero"]


def test_a_model_better_than_the_method_is_named():
    truth, ens = fields(days=20)
    rng = np.random.default_rng(2)
    sharper = truth[None] + 0.05 * rng.normal(size=ens.shape)
    found = period_scores(truth, {"vae": [sharper], "diffusion": [ens]})
    for score in ("rmse", "crps_fair"):
        row = comparison(found, "vae", score)
        assert row["hi"] < 0 and row["better"] == "vae"


def test_seed_counts_must_match_for_pairing():
    resamples = Resamples.draw(10, 3, 50)
    assert resamples.seed_mean(np.ones((1, 50))).shape == (50,)  # a deterministic model: its one run
    with pytest.raises(ValueError, match="2 seeds, but the resamples draw 3"):
        resamples.seed_mean(np.ones((2, 50)))


def test_interval_is_the_central_95_percent():
    lo, hi = interval(np.arange(1001.0))
    assert (lo, hi) == pytest.approx((25.0, 975.0))
    assert np.isnan(interval(np.full(10, np.nan))[0])
