"""The method's rules in a real Snakemake run on a tiny twin: every output, readable and sensible."""

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from conftest import run_snakemake, tiny_config

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
                         "results/samples/solo/winter/diffusion/test.nc", "results/figures/method/members.png")
    res = tmp_path / "results"
    for rule in ("pretrain_encoder", "train_diffusion", "sample", "assemble", "sampler_benchmark", "members_curve"):
        assert f"rule {rule}:" in proc.stdout + proc.stderr
    # training logs carry the loss curve; checkpoints are removed once the model is saved
    log = (res / "logs/train_diffusion/solo_winter_diffusion.log").read_text()
    assert "launching 2 processes" in log and "step 30 loss" in log
    curve = pd.read_csv(res / "models/solo/winter/diffusion_loss.csv")
    assert list(curve.columns) == ["step", "loss", "val_loss"] and len(curve) == 30
    assert not list((res / "models").rglob("*.ckpt"))

    days = json.loads((res / "split/solo/winter/days.json").read_text())
    test = xr.open_dataset(res / "samples/solo/winter/diffusion/test.nc")
    assert test.DUEXTTAU.dims == ("member", "time", "lat", "lon") and test.sizes["member"] == 3
    assert [str(t)[:10] for t in test.time.values] == days["test"]
    beyond = xr.open_dataset(res / "samples/solo/winter/diffusion/beyond.nc")
    assert [str(t)[:10] for t in beyond.time.values] == days["beyond"] and beyond.sizes["member"] == 2
    assert np.isfinite(beyond.DUEXTTAU.values).all() and (beyond.DUEXTTAU.values > 0).all()

    product = xr.open_dataset(res / "downscaled/solo.nc")
    assert product.sizes["time"] == 60 and product.DUEXTTAU_members.sizes["member"] == 2
    assert (product.source.values == 1).sum() == 32 and (product.source.values == 2).sum() == 28
    assert "diffusion.pt" in product.attrs["model_checkpoints"] and json.loads(product.attrs["sampler"])["sampler"] == "dpmpp"

    table = pd.read_csv(res / "metrics/samplers.csv")
    assert list(table.columns) == ["sampler", "steps", "nfe", "crps", "rmse", "seconds"]
    assert set(table.sampler) == {"ddpm", "dpmpp"} and (table.crps > 0).all() and (table.seconds > 0).all()
    # The members curve: every ensemble size up to curve_members, on the validation days only.
    curve = pd.read_csv(res / "metrics/members/solo_winter.csv")
    assert list(curve.members) == [1, 2, 3, 4] and list(curve.groups) == [4, 2, 1, 1]
    first, test = pd.Timestamp(config["data"]["fine_period"][0]), set(pd.to_datetime(days["test"]))
    history = [pd.Timedelta(days=k) for k in range(1, METHOD["encoder"]["history"] + 1)]
    usable = [v for v in pd.to_datetime(days["val"]) if all(v - k >= first and v - k not in test for k in history)]
    assert usable and (curve.days == len(usable)).all() and (curve.crps_fair > 0).all()
    assert (curve.crps >= curve.crps_fair - 1e-9).all() and curve.crps.iloc[0] == pytest.approx(curve.crps_fair.iloc[0])
    assert (res / "figures/method/members.png").stat().st_size > 5000
    selfcheck = json.loads((res / "samples/solo/winter/diffusion/selfcheck.json").read_text())
    assert {"test", "beyond", "test_coarse_on_fine"} <= set(selfcheck)
