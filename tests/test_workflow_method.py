"""The method's rules in a real Snakemake run on a tiny twin: every output, readable and sensible."""

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import torch

from conftest import run_snakemake, tiny_config
from test_workflow_evaluate import job_stats

METHOD = {
    "encoder": {"history": 3, "patch": 16, "channels": [4, 8], "epochs": 1, "batch_size": 8},
    # two processes: train_diffusion goes through torchrun + DDP (gloo on this CPU)
    "diffusion": {"channels": [8, 8], "steps": 30, "batch_size": 8, "checkpoint_every": 10, "gpus": 2},
    # validation days with a whole, test-free history, for the members curve
    "split": {"val_fraction": 0.25},
    "sampling": {"steps": 3, "members": 3, "beyond_members": 2, "members_saved": 2, "halo": 2, "spinup_days": 2,
                 "ddpm_steps": 8, "benchmark_days": 1, "benchmark_members": 2, "curve_members": 4},
}


@pytest.mark.slow
def test_method_rules_write_every_output(tmp_path):
    config = tiny_config(**METHOD)
    proc = run_snakemake(tmp_path, config, "results/downscaled/solo.nc", "results/metrics/samplers.csv",
                         "results/samples/solo/winter/diffusion/s0/test.nc", "results/figures/method/members.png")
    res = tmp_path / "results"
    out = proc.stdout + proc.stderr
    for rule in ("pretrain_encoder", "train_baseline", "train_diffusion", "sample", "assemble", "sampler_benchmark",
                 "members_curve"):
        assert f"rule {rule}:" in out
    # The CorrDiff split (the default): the regression part, transfer_unet, is trained first and the method's
    # file holds it and names the file it came from.
    assert out.index("rule train_baseline:") < out.index("rule train_diffusion:")
    assert (res / "logs/train_baseline/solo_winter_transfer_unet_s0.log").exists()
    saved = torch.load(res / "models/solo/winter/diffusion.s0.pt", weights_only=False)
    regressor_file = res / "models/solo/winter/transfer_unet.s0.pt"
    assert saved["spec"]["regressor"] == saved["regressor"]["model"] == "transfer_unet"
    assert saved["regressor_file"] == "results/models/solo/winter/transfer_unet.s0.pt"
    assert saved["regressor_sha256"] == hashlib.sha256(regressor_file.read_bytes()).hexdigest()
    assert any(k.startswith("regressor.") for k in saved["state"])
    # training logs carry the loss curve; checkpoints are removed once the model is saved
    log = (res / "logs/train_diffusion/solo_winter_diffusion_s0.log").read_text()
    assert "launching 2 processes" in log and "step 30 loss" in log
    curve = pd.read_csv(res / "models/solo/winter/diffusion.s0_loss.csv")
    assert list(curve.columns) == ["step", "loss", "val_loss"] and len(curve) == 30
    assert not list((res / "models").rglob("*.ckpt"))

    days = json.loads((res / "split/solo/winter/days.json").read_text())
    test = xr.open_dataset(res / "samples/solo/winter/diffusion/s0/test.nc")
    assert test.DUEXTTAU.dims == ("member", "time", "lat", "lon") and test.sizes["member"] == 3
    assert [str(t)[:10] for t in test.time.values] == days["test"]
    beyond = xr.open_dataset(res / "samples/solo/winter/diffusion/s0/beyond.nc")
    assert [str(t)[:10] for t in beyond.time.values] == days["beyond"] and beyond.sizes["member"] == 2
    assert np.isfinite(beyond.DUEXTTAU.values).all() and (beyond.DUEXTTAU.values > 0).all()

    product = xr.open_dataset(res / "downscaled/solo.nc")
    assert product.sizes["time"] == 60 and product.DUEXTTAU_members.sizes["member"] == 2
    assert (product.source.values == 1).sum() == 32 and (product.source.values == 2).sum() == 28
    assert "diffusion.s0.pt" in product.attrs["model_checkpoints"] and json.loads(product.attrs["sampler"])["sampler"] == "dpmpp"

    table = pd.read_csv(res / "metrics/samplers.csv")
    assert list(table.columns) == ["sampler", "steps", "nfe", "crps", "rmse", "seconds"]
    assert set(table.sampler) == {"ddpm", "dpmpp"} and (table.crps > 0).all() and (table.seconds > 0).all()
    # The members curve: every ensemble size up to curve_members, on the validation days only.
    curve = pd.read_csv(res / "metrics/members/solo_winter.csv")
    assert list(curve.members) == [1, 2, 3, 4] and list(curve.groups) == [4, 2, 1, 1]
    first, test_days = pd.Timestamp(config["data"]["fine_period"][0]), set(pd.to_datetime(days["test"]))
    history = [pd.Timedelta(days=k) for k in range(1, METHOD["encoder"]["history"] + 1)]
    usable = [v for v in pd.to_datetime(days["val"]) if all(v - k >= first and v - k not in test_days for k in history)]
    assert usable and (curve.days == len(usable)).all() and (curve.crps_fair > 0).all()
    assert (curve.crps >= curve.crps_fair - 1e-9).all() and curve.crps.iloc[0] == pytest.approx(curve.crps_fair.iloc[0])
    assert (res / "figures/method/members.png").stat().st_size > 5000
    selfcheck = json.loads((res / "samples/solo/winter/diffusion/s0/selfcheck.json").read_text())
    assert {"test", "beyond", "test_coarse_on_fine"} <= set(selfcheck)
    assert test.attrs["residual_from"] == "transfer_unet prediction"


@pytest.mark.slow
def test_train_diffusion_waits_for_its_regression_part_unless_the_residual_is_from_coarse(tmp_path):
    """The DAG: with diffusion.residual: regression (default) the regressor of the registry is an input of
    train_diffusion; with coarse it is not, and no baseline is trained for it."""
    target = "results/models/solo/winter/diffusion.s0.pt"
    config = tiny_config(**METHOD)
    proc = run_snakemake(tmp_path, config, "-n", "-p", target)
    planned = job_stats(proc.stdout)
    assert planned.get("train_baseline") == 1 and planned.get("train_diffusion") == 1, planned
    assert "results/models/solo/winter/transfer_unet.s0.pt" in proc.stdout
    coarse = tiny_config(**(METHOD | {"diffusion": METHOD["diffusion"] | {"residual": "coarse"}}))
    proc = run_snakemake(tmp_path, coarse, "-n", target)
    planned = job_stats(proc.stdout)
    assert "train_baseline" not in planned and planned.get("train_diffusion") == 1, planned
    assert "transfer_unet.s0.pt" not in proc.stdout
