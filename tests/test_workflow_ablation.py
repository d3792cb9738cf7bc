"""The ablation (diffusion without the transfer encoder) and the report's "3. Method" category, in real
Snakemake runs on the tiny twin."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml
import torch
import xarray as xr
from conftest import FULL_RUN_MODELS as MODELS
from conftest import ROOT, full_run_config, run_snakemake, tiny_config
from test_workflow_evaluate import job_stats


@pytest.fixture
def ablation_dir(full_run):
    """The session's whole-chain run (conftest.full_run) holds the ablation."""
    return full_run


@pytest.mark.slow
def test_the_ablation_does_not_wait_for_the_encoder(tmp_path):
    config = tiny_config(evaluation={"models": MODELS})
    proc = run_snakemake(tmp_path, config, "-n", "results/models/solo/winter/diffusion_no_transfer.s0.pt")
    planned = job_stats(proc.stdout)
    assert planned.get("train_diffusion") == 1 and "pretrain_encoder" not in planned, planned
    # its regression part is the unet, not the transfer_unet: the overlay drops transfer from both parts
    assert planned.get("train_baseline") == 1 and "results/models/solo/winter/unet.s0.pt" in proc.stdout, planned
    assert "transfer_unet" not in proc.stdout
    # ... while the method does
    planned = job_stats(run_snakemake(tmp_path, config, "-n", "results/models/solo/winter/diffusion.s0.pt").stdout)
    assert planned.get("train_diffusion") == 1 and planned.get("pretrain_encoder") == 1, planned
    # the split's ablation: the transfer encoder, but no regression part to wait for
    proc = run_snakemake(tmp_path, tiny_config(evaluation={"models": ["diffusion_from_coarse"]}), "-n",
                         "results/models/solo/winter/diffusion_from_coarse.s0.pt")
    planned = job_stats(proc.stdout)
    assert planned.get("train_diffusion") == 1 and planned.get("pretrain_encoder") == 1, planned
    assert "train_baseline" not in planned, planned


@pytest.mark.slow
def test_the_ablation_is_trained_sampled_and_scored_beside_the_method(ablation_dir):
    res = ablation_dir / "results"
    for model in ("diffusion", "diffusion_no_transfer"):
        for period in ("test", "beyond"):
            ds = xr.open_dataset(res / f"samples/solo/winter/{model}/s0/{period}.nc")
            assert ds.sizes["member"] > 1 and ds.attrs["model"] == model
    summary = pd.read_csv(res / "metrics/summary.csv")
    rows = set(zip(summary["model"], summary["period"]))
    assert {(m, p) for m in ("diffusion", "diffusion_no_transfer") for p in ("test", "beyond")} <= rows
    # The checkpoints say which is which: only the method conditions on the transfer encoder.
    method = torch.load(res / "models/solo/winter/diffusion.s0.pt", weights_only=False)
    ablation = torch.load(res / "models/solo/winter/diffusion_no_transfer.s0.pt", weights_only=False)
    assert method["model"] == "diffusion" and ablation["model"] == "diffusion_no_transfer"
    assert method["spec"]["uses_encoder"] is True and ablation["spec"]["uses_encoder"] is False
    assert ablation["encoder"] is None and not any(k.startswith("encoder.") for k in ablation["state"])
    assert method["regressor"]["model"] == "transfer_unet" and ablation["regressor"]["model"] == "unet"
    assert not any(k.startswith("regressor.encoder.") for k in ablation["state"])
    # Same budget: the same denoiser width and the same steps.
    assert method["spec"]["channels"] == ablation["spec"]["channels"] and method["steps"] == ablation["steps"] == 20
    curves = [pd.read_csv(res / f"models/solo/winter/{m}.s0_loss.csv") for m in ("diffusion", "diffusion_no_transfer")]
    assert curves[0]["step"].tolist() == curves[1]["step"].tolist() == list(range(1, 21))
    assert curves[0]["val_loss"].notna().sum() == curves[1]["val_loss"].notna().sum()  # validated as often
    # The split's ablation: the transfer encoder, no regression part, its residual from the coarse field.
    split = torch.load(res / "models/solo/winter/diffusion_from_coarse.s0.pt", weights_only=False)
    assert split["spec"]["uses_encoder"] is True and split["spec"]["regressor"] is None and not split.get("regressor")
    assert not any(k.startswith("regressor.") for k in split["state"]) and split["steps"] == method["steps"]
    for model, source in (("diffusion", "transfer_unet prediction"), ("diffusion_from_coarse", "coarse field")):
        assert xr.open_dataset(res / f"samples/solo/winter/{model}/s0/test.nc").attrs["residual_from"] == source
    assert {("diffusion_from_coarse", p) for p in ("test", "beyond")} <= rows
    comparisons = pd.read_csv(res / "metrics/comparisons.csv")
    assert {"diffusion_no_transfer", "diffusion_from_coarse"} <= set(comparisons["model"])
    # The product stays the method's
    product = xr.open_dataset(res / "downscaled/solo.nc")
    assert json.loads(product.attrs["model_checkpoints"]) == {"winter": "results/models/solo/winter/diffusion.s0.pt"}


@pytest.mark.slow
def test_the_method_category_of_the_report(ablation_dir):
    res = ablation_dir / "results"
    assert (res / "figures/method/solo/winter/training.png").stat().st_size > 20_000
    # The samplers are compared on validation days only, and this run's split leaves none with a test-free
    # history: the table is empty (test_workflow_method checks a filled one).
    samplers = pd.read_csv(res / "metrics/samplers.csv")
    assert samplers.empty and list(samplers.columns) == ["sampler", "steps", "nfe", "crps", "rmse", "seconds"]
    run_snakemake(ablation_dir, full_run_config(), "--report", "results/report.html")
    html = (res / "report.html").read_text()
    for text in ("3. Method", "Training curves", "Samplers", "training.png", "samplers.csv", "4. Evaluation",
                 "This run includes the ablation"):
        assert text in html, text


@pytest.mark.slow
def test_the_ablation_overlay_plans_the_ablation_on_the_demo(tmp_path):
    proc = run_snakemake(tmp_path, None, "-n", "--configfile", str(ROOT / "config/config.yaml"),
                         str(ROOT / "config/ablation.yaml"))
    planned = job_stats(proc.stdout)
    demo = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    splits = [(r, s) for r in demo["regions"] for s in demo["seasons"]]
    # the method and its two ablations each trained and sampled in every region and season of the demo
    assert planned["train_diffusion"] == 3 * len(splits) and planned["pretrain_encoder"] == len(splits)
    assert planned["train_baseline"] == 3 * len(splits)  # the demo's baselines are kept by the overlay
    for region, season in splits:
        for model in ("diffusion_no_transfer", "diffusion_from_coarse"):
            assert f"results/samples/{region}/{season}/{model}/s0/test.nc" in proc.stdout
    # without the overlay there is no ablation
    plain = run_snakemake(tmp_path, None, "-n", "--configfile", str(ROOT / "config/config.yaml"))
    assert job_stats(plain.stdout)["train_diffusion"] == len(splits) and "diffusion_no_transfer" not in plain.stdout
