"""`make tune`'s target (rule tuning) in a real Snakemake run on a tiny twin: the selection, and no test truth read."""

import json

import pandas as pd
import pytest
import yaml

from conftest import run_snakemake, tiny_config
from diffscale.core.config import validate_config
from test_tuning import add_noise

TUNED = {
    "encoder": {"history": 3, "patch": 16, "channels": [4, 8], "epochs": 1, "batch_size": 8},
    "diffusion": {"channels": [8, 8], "steps": 20, "batch_size": 8, "checkpoint_every": 10},
    # validation days with a whole, test-free history to tune on
    "split": {"val_fraction": 0.25},
    "tuning": {"steps": [10, 20], "batch_size": [8], "lr": [2.0e-3], "sampler_steps": [2, 3], "members": 2},
}
SCORES = ["kind", "batch_size", "lr", "steps", "sampler_steps", "nfe", "crps_fair", "rmse", "days", "members"]


@pytest.mark.slow
def test_tuning_selects_on_validation_days_and_never_reads_test_truth(tmp_path):
    config = tiny_config(**TUNED)
    out = run_snakemake(tmp_path, config, "tuning")
    assert "rule tune:" in out.stdout + out.stderr and "rule train_diffusion:" not in out.stdout + out.stderr
    res = tmp_path / "results"
    table = pd.read_csv(res / "tuning/solo_winter.csv")
    # every step along one run for the config's (batch, lr), and each sampler step count at its own training choices
    training = table[table.kind == "training"]
    assert sorted(training.steps) == [10, 20] and (training.sampler_steps == 3).all()
    assert sorted(table[table.kind == "sampler"].sampler_steps) == [2, 3]
    days = json.loads((res / "split/solo/winter/days.json").read_text())
    test_days = set(pd.to_datetime(days["test"]))
    usable = [v for v in pd.to_datetime(days["val"])
              if all(v - pd.Timedelta(days=k) not in test_days for k in range(1, 4))]
    assert usable and (table.days <= len(usable)).all() and (table.crps_fair > 0).all()

    selected = yaml.safe_load((res / "tuning/selected.yaml").read_text())
    assert set(selected) >= {"diffusion", "sampling"} and selected["diffusion"]["batch_size"] == 8
    assert selected["diffusion"]["steps"] in (10, 20) and selected["sampling"]["steps"] in (2, 3)
    # a config overlay: the config with it validates
    validate_config({**config, **{k: config.get(k, {}) | v for k, v in selected.items()}})
    selection = pd.read_csv(res / "tuning/selection.csv")
    assert selection.selected.sum() == 2
    assert (res / "figures/method/tuning.png").stat().st_size > 5000
    assert (res / "benchmarks/tune/solo_winter.tsv").exists() and not list(res.glob("tuning/*.runs"))

    # Test-day fine values and the beyond truth replaced by noise: rerunning the tuning gives the same scores.
    add_noise(res / "split/solo", pd.DatetimeIndex(sorted(test_days)))
    run_snakemake(tmp_path, config, "tuning", "--forcerun", "tune", "--rerun-triggers", "params")
    again = pd.read_csv(res / "tuning/solo_winter.csv")
    pd.testing.assert_frame_equal(again[SCORES], table[SCORES])
    assert yaml.safe_load((res / "tuning/selected.yaml").read_text()) == selected
