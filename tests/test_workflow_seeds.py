"""Several training seeds in a real Snakemake run on a tiny twin, through to comparisons.csv."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from conftest import run_snakemake, tiny_config
from test_workflow_evaluate import job_stats

MODELS = ["bicubic", "unet", "diffusion"]
LEARNED = ["encoder", "unet", "diffusion"]


def seeds_config(seeds: int) -> dict:
    return tiny_config(evaluation={"models": MODELS, "seeds": seeds, "variogram_pairs": 2000, "bootstrap": 200})


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory):
    work = tmp_path_factory.mktemp("seeds")
    run_snakemake(work, seeds_config(2), "results/metrics/comparisons.csv")
    return work


@pytest.mark.slow
def test_every_learned_model_is_trained_and_sampled_once_per_seed(two_seeds):
    models = two_seeds / "results/models/solo/winter"
    base = seeds_config(2)
    for name in LEARNED:
        saved = [torch.load(models / f"{name}.s{k}.pt", weights_only=False) for k in (0, 1)]
        section = base["encoder"] if name == "encoder" else base["diffusion"]
        # seed k trains with the section's seed + k (schema default 0)
        assert [s["seed"] for s in saved] == [section.get("seed", 0), section.get("seed", 0) + 1]
        first, second = (s["state"] for s in saved)
        assert any(not torch.equal(first[k], second[k]) for k in first if not k.startswith("encoder."))
    # The models of seed k condition on the encoder of seed k.
    assert torch.load(models / "diffusion.s1.pt", weights_only=False)["encoder"].endswith("encoder.s1.pt")
    samples = two_seeds / "results/samples/solo/winter"
    for name in ("unet", "diffusion"):
        runs = [xr.open_dataset(samples / f"{name}/s{k}/test.nc") for k in (0, 1)]
        assert not np.allclose(runs[0].DUEXTTAU.values, runs[1].DUEXTTAU.values)
    assert [int(xr.open_dataset(samples / f"diffusion/s{k}/test.nc").attrs["seed"]) for k in (0, 1)] == [0, 1]
    # Bicubic is deterministic: one run, no seed folder.
    assert (samples / "bicubic/test.nc").exists() and not (samples / "bicubic/s1").exists()


@pytest.mark.slow
def test_summary_holds_seed_means_with_intervals(two_seeds):
    metrics = two_seeds / "results/metrics"
    summary = pd.read_csv(metrics / "summary.csv").set_index(["model", "period"])
    by_seed = pd.read_csv(metrics / "solo/winter/scores_by_seed.csv")
    assert by_seed.groupby("model")["seed"].nunique().to_dict() == {"bicubic": 1, "ceiling": 1, "diffusion": 2,
                                                                    "oracle": 1, "unet": 2}
    assert summary["seeds"].to_dict() == {(m, p): (2 if m in ("unet", "diffusion") else 1)
                                          for m in ("bicubic", "unet", "diffusion", "ceiling", "oracle")
                                          for p in ("test", "beyond")}
    means = by_seed.groupby(["model", "period"])[["rmse", "crps", "crps_fair", "r2", "ssim"]].mean()
    pd.testing.assert_frame_equal(summary.loc[means.index, means.columns], means, rtol=1e-4)
    # Every score has its interval (a percentile interval of a skewed score on 3 days need not hold
    # the estimate; those of RMSE and CRPS, built from per-day means, do).
    for score in ("r2", "r2_pearson", "rmse", "mae", "nse", "kge", "crps", "crps_fair", "ssim", "spectral_ratio"):
        assert (summary[f"{score}_lo"] <= summary[f"{score}_hi"]).all(), score
    for score in ("rmse", "crps", "crps_fair"):
        assert (summary[f"{score}_lo"] <= summary[score] + 1e-9).all(), score
        assert (summary[score] <= summary[f"{score}_hi"] + 1e-9).all(), score


@pytest.mark.slow
def test_comparisons_give_each_model_minus_the_method(two_seeds):
    summary = pd.read_csv(two_seeds / "results/metrics/summary.csv").set_index(["model", "period"])
    compared = pd.read_csv(two_seeds / "results/metrics/comparisons.csv", keep_default_na=False)
    assert set(zip(compared["model"], compared["period"], compared["score"])) == {
        (m, p, s) for m in ("bicubic", "unet", "ceiling", "oracle") for p in ("test", "beyond")
        for s in ("rmse", "crps_fair")}
    assert (compared["reference"] == "diffusion").all()
    for row in compared.itertuples():
        expected = summary.loc[(row.model, row.period), row.score] - summary.loc[("diffusion", row.period), row.score]
        assert row.difference == pytest.approx(expected, rel=1e-3, abs=1e-6)
        assert row.lo <= row.hi
        assert row.excludes_zero == (row.lo > 0 or row.hi < 0)
        assert row.better == ("" if not row.excludes_zero else "diffusion" if row.lo > 0 else row.model)
    # The oracle misses only the twin's noise: better than the tiny method, beyond doubt.
    oracle = compared[(compared["model"] == "oracle") & (compared["score"] == "rmse")]
    assert (oracle["better"] == "oracle").all()


@pytest.mark.slow
def test_seed_zero_is_the_single_seed_run_and_one_model_reruns_alone(two_seeds):
    # Going back to one seed trains and samples nothing: seed 0's files are the one-seed run's.
    planned = job_stats(run_snakemake(two_seeds, seeds_config(1), "-n", "results/metrics/comparisons.csv").stdout)
    assert planned == {"evaluate": 1, "summarize_metrics": 1}
    # One seed of one model reruns by naming its file, with what depends on it.
    planned = job_stats(run_snakemake(two_seeds, seeds_config(2), "-n", "results/metrics/comparisons.csv",
                                      "--forcerun", "results/models/solo/winter/unet.s1.pt").stdout)
    assert planned == {"train_baseline": 1, "sample": 1, "sample_beyond": 1, "gather_beyond": 1, "evaluate": 1,
                       "summarize_metrics": 1}
