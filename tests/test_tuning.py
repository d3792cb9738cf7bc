"""Validation-only tuning: the selection rule, and proof that the tuning never reads test or beyond truth.

The leak test runs the tuning library call (the one rule tune makes) twice on a tiny twin:
on its split, and on a copy whose fine values on the test days and whose whole beyond
truth (truth.nc) are replaced by noise. The tables must be identical. That the check can
fail is shown in the same test: scoring the test days instead of the validation days
(the mutation a leak would be) makes the two runs differ.
"""

import shutil

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from diffscale.core import io
from diffscale.core.config import load_schema
from diffscale.method import tuning
from diffscale.core.tuning_table import TUNING_COLUMNS
from diffscale.evaluation.selection import overlay, select, selection_files
from diffscale.method.conditioning import load_season
from diffscale.method.fit import load_encoder, train_model
from diffscale.method.residual import load_model
from method_fixtures import DIFF, ENC, HALO, season_with_encoder, train_regressor

torch.set_num_threads(1)
SCORES = ["kind", "batch_size", "lr", "steps", "sampler_steps", "nfe", "crps_fair", "rmse", "days", "members"]


def row(kind, crps, days, region="r", season="s", batch=8, lr=2e-3, steps=100, sampler_steps=5, rmse=0.1):
    return {"kind": kind, "batch_size": batch, "lr": lr, "steps": steps, "sampler": "dpmpp",
            "sampler_steps": sampler_steps, "nfe": sampler_steps, "crps_fair": crps, "rmse": rmse, "sample_seconds": 1.0,
            "train_seconds": 1.0, "days": days, "members": 8, "region": region, "season": season}


def test_schema_defaults_hold_the_config_values_among_the_candidates():
    tune = {k: v["default"] for k, v in load_schema()["properties"]["tuning"]["properties"].items()}
    diff = {k: v["default"] for k, v in load_schema()["properties"]["diffusion"]["properties"].items()}
    assert diff["steps"] in tune["steps"] and diff["batch_size"] in tune["batch_size"] and diff["lr"] in tune["lr"]
    assert load_schema()["properties"]["sampling"]["properties"]["steps"]["default"] in tune["sampler_steps"]


def test_selection_pools_by_validation_days_and_ties_go_to_the_cheaper():
    table = pd.DataFrame([
        # 200 steps: 0.100 on 1 day, 0.090 on 3 days -> pooled 0.0925; 400 steps: 0.092 on both -> 0.092
        row("training", 0.100, 1, season="a", steps=200), row("training", 0.090, 3, season="b", steps=200),
        row("training", 0.092, 1, season="a", steps=400), row("training", 0.092, 3, season="b", steps=400),
        row("training", 0.150, 1, season="a", steps=100), row("training", 0.150, 3, season="b", steps=100),
        row("sampler", 0.0800, 4, sampler_steps=8), row("sampler", 0.0805, 4, sampler_steps=5),
        row("sampler", 0.0900, 4, sampler_steps=3),
    ])
    strict = select(table, tolerance=0.0)
    chosen = strict[strict.selected].set_index("kind")
    assert chosen.loc["training", "steps"] == 400 and chosen.loc["sampler", "sampler_steps"] == 8
    pooled = strict[(strict.kind == "training") & (strict.steps == 200)].iloc[0]
    assert pooled.crps_fair == pytest.approx(0.0925) and pooled.days == 4 and pooled.cost == 200 * 8
    # within 1%: 200 steps (0.0925 vs 0.092) and 5 sampler steps (0.0805 vs 0.080) tie, and cost less
    loose = select(table, tolerance=0.01)
    chosen = loose[loose.selected].set_index("kind")
    assert chosen.loc["training", "steps"] == 200 and chosen.loc["sampler", "sampler_steps"] == 5
    assert loose.selected.sum() == 2


def test_overlay_keeps_the_regression_part_the_tuning_used():
    table = pd.DataFrame([row("training", 0.09, 4, batch=16, lr=1e-3, steps=800),
                          row("training", 0.10, 4, batch=8, lr=2e-3, steps=600), row("sampler", 0.09, 4)])
    diffusion = {"steps": 600, "batch_size": 8, "lr": 2e-3}
    out = overlay(select(table, 0.0), diffusion, {"steps": None, "batch_size": None, "lr": 5e-4})
    assert out["diffusion"] == {"steps": 800, "batch_size": 16, "lr": 1e-3}
    # null baselines keys follow diffusion: pinned to what the regression part was trained with; lr was set already
    assert out["baselines"] == {"steps": 600, "batch_size": 8}
    assert out["sampling"] == {"steps": 5}


def test_selection_files_write_a_config_overlay_and_refuse_a_foreign_table(tmp_path):
    part = tmp_path / "r_s.csv"
    pd.DataFrame([row("training", 0.09, 4), row("sampler", 0.09, 4)]).to_csv(part, index=False)
    chosen = selection_files([part], tmp_path / "selected.yaml", tmp_path / "selection.csv",
                             {"steps": 100, "batch_size": 8, "lr": 2e-3}, {}, 0.01)
    assert yaml.safe_load((tmp_path / "selected.yaml").read_text()) == chosen
    assert pd.read_csv(tmp_path / "selection.csv").selected.sum() == 2
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"steps": [1]}).to_csv(bad, index=False)
    with pytest.raises(io.DataValidationError, match="bad.csv.*columns"):
        selection_files([bad], tmp_path / "x.yaml", tmp_path / "x.csv", {}, {}, 0.01)
    with pytest.raises(ValueError, match="no validation scores"):
        select(pd.DataFrame(columns=TUNING_COLUMNS), 0.01)


def add_noise(split, test_days) -> None:
    """Replace the fine values of ``test_days`` in ``split``/fine.nc and every day of truth.nc with noise, in place."""
    rng = np.random.default_rng(1)
    for name, days in (("fine.nc", test_days), ("truth.nc", None)):
        da = io.read_field(split / name, "DUEXTTAU").load()
        values = da.values.copy()
        hit = np.ones(len(da.time), bool) if days is None else pd.DatetimeIndex(da.time.values).isin(days)
        values[hit] = 10 ** rng.uniform(-3, 0, size=values[hit].shape)
        io.write_netcdf(io.field_dataset(values, pd.DatetimeIndex(da.time.values), da.lat, da.lon, "DUEXTTAU",
                                         dict(da.attrs)), split / name)


@pytest.mark.slow
def test_tuning_never_reads_test_or_beyond_truth(tmp_path, monkeypatch):
    split, data, encoder_path = season_with_encoder(tmp_path)
    regressor_path = train_regressor(data, "transfer_unet", encoder_path, tmp_path)
    noisy_split = tmp_path / "noisy"
    shutil.copytree(split, noisy_split)
    add_noise(noisy_split, data.days["test"])
    noisy = load_season(noisy_split, "S", "DUEXTTAU")
    assert not np.allclose(noisy.fine_on(data.days["test"][0]), data.fine_on(data.days["test"][0]))
    assert not np.allclose(noisy.truth, data.truth)

    diffusion = DIFF | {"steps": 8}
    sampling = {"sampler": "dpmpp", "steps": 2, "seed": 0, "tile": 0, "overlap": 0.0, "autocast": False}
    grid = {"steps": [4, 8], "batch_size": [8], "lr": [2e-3], "sampler_steps": [2, 3], "members": 2}
    transform = {"log10": True, "floor": 1e-6}

    def tune(season):
        encoder = load_encoder(encoder_path)
        regressor = load_model(regressor_path)
        work = tmp_path / "runs"
        work.mkdir(exist_ok=True)
        return tuning.tune_season(season, encoder, regressor, ENC, diffusion, HALO, sampling, transform, grid, work,
                                  "cpu")[SCORES]

    # Along one run, the weights after s steps are those rule train_diffusion saves after s steps.
    cfg = DIFF | {"steps": 8}
    along = {s: m for s, m, _ in tuning.along_one_run(data, "diffusion", load_encoder(encoder_path), ENC, cfg, HALO,
                                                       [4, 8], tmp_path / "along.ckpt", "cpu",
                                                       load_model(regressor_path))}
    for s in (4, 8):
        direct, _ = train_model(data, "diffusion", load_encoder(encoder_path), ENC, cfg | {"steps": s}, HALO,
                                tmp_path / f"direct{s}.ckpt", device_name="cpu", regressor=load_model(regressor_path))
        for key, value in direct.state_dict().items():
            torch.testing.assert_close(along[s].state_dict()[key], value, rtol=0, atol=0, msg=key)
    assert not (tmp_path / "along.ckpt").exists()

    clean = tune(data)
    assert len(clean) == 4 and set(clean.kind) == {"training", "sampler"}
    assert (clean.days == len(tuning.validation_days(data, ENC["history"]))).all() and (clean.crps_fair > 0).all()
    pd.testing.assert_frame_equal(tune(noisy), clean)

    # The check can fail: a tuning that scored the test days would see the noise.
    monkeypatch.setattr(tuning, "validation_days", lambda d, history: d.days["test"])
    with pytest.raises(AssertionError):
        pd.testing.assert_frame_equal(tune(noisy), tune(data))
