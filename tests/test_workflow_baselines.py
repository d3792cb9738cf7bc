"""The trained baselines in a real Snakemake run on a tiny twin: train_baseline + sample per {model}, then scored."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from conftest import run_snakemake, tiny_config

BASELINES = ["unet", "vae", "transfer_unet"]


@pytest.mark.slow
def test_baselines_train_sample_and_are_scored(tmp_path):
    config = tiny_config(evaluation={"models": ["bicubic", *BASELINES], "variogram_pairs": 2000, "oracle": False})
    proc = run_snakemake(tmp_path, config, "results/metrics/summary.csv")
    out = proc.stdout + proc.stderr
    for rule in ("pretrain_encoder", "train_baseline", "sample", "evaluate"):
        assert f"rule {rule}:" in out
    assert "rule train_diffusion:" not in out  # the baselines need only the encoder of the method
    res = tmp_path / "results"
    days = json.loads((res / "split/solo/winter/days.json").read_text())
    for model in BASELINES:
        # the method's budget: baselines.steps is null, so diffusion.steps (20) crops of diffusion.batch_size
        curve = pd.read_csv(res / f"models/solo/winter/{model}.s0_loss.csv")
        assert len(curve) == config["diffusion"]["steps"] and np.isfinite(curve.loss).all()
        saved = torch.load(res / f"models/solo/winter/{model}.s0.pt", weights_only=False)
        assert saved["model"] == saved["spec"]["name"] == model and saved["steps"] == config["diffusion"]["steps"]
        # only the model that uses the encoder is given it (rule input, checkpoint, weights)
        uses = model == "transfer_unet"
        assert (saved["encoder"] is not None) == uses == any(k.startswith("encoder.") for k in saved["state"])
        members = config["sampling"]["members"] if model == "vae" else 1
        beyond_members = config["sampling"]["beyond_members"] if model == "vae" else 1
        test = xr.open_dataset(res / f"samples/solo/winter/{model}/s0/test.nc")
        assert test.DUEXTTAU.dims == ("member", "time", "lat", "lon") and test.sizes["member"] == members
        assert [str(t)[:10] for t in test.time.values] == days["test"]
        beyond = xr.open_dataset(res / f"samples/solo/winter/{model}/s0/beyond.nc")
        assert [str(t)[:10] for t in beyond.time.values] == days["beyond"] and beyond.sizes["member"] == beyond_members
        assert (beyond.DUEXTTAU.values > 0).all() and np.isfinite(test.DUEXTTAU.values).all()
        assert test.attrs["model"] == model
        assert not list((res / "models").rglob("*.ckpt"))
    summary = pd.read_csv(res / "metrics/summary.csv")
    for model in BASELINES:
        rows = summary[summary.model == model]
        assert set(rows.period) == {"test", "beyond"} and rows[["rmse", "crps"]].notna().all().all()
    # a deterministic model's CRPS is its MAE
    det = summary[summary.model.isin(["unet", "transfer_unet"])]
    np.testing.assert_allclose(det.crps, det.mae, rtol=1e-4)
