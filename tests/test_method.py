"""The method end to end on a tiny twin: conditioning, no leakage, tiled sampling, outputs, product.

One tiny encoder, its regression part (transfer_unet) and the diffusion model of both
variants (residual from the regressor's prediction, the default, and from the coarse field)
are trained once per module (seconds) on split-contract files made from a small synthetic
twin (tests/method_fixtures.py).
"""

import copy
import json

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from diffscale.core import io
from diffscale.method.conditioning import history_window, load_season, training_days
from diffscale.method.diffusion import DiffusionDownscaler
from diffscale.method.fit import load_encoder, load_regressor, pretrain_encoder, train_model
from diffscale.method.residual import load_model
from diffscale.method.tiling import Tiling, seam_ratio
from diffscale.method.product import SOURCE_FLAGS, assemble
from diffscale.method.sampling import autoregressive, ensemble_scores, runs, samples_dataset, teacher_forced
from method_fixtures import DIFF, ENC, HALO, MONTHS, season_with_encoder, train_regressor

torch.set_num_threads(1)
COARSE = DIFF | {"residual": "coarse"}  # the variant without a regression part


def train_split(data, encoder_path, regressor_path, checkpoint, cfg=DIFF):
    """The method (diffusion.residual: regression) on ``data``, from the saved encoder and regressor."""
    encoder = load_encoder(encoder_path)
    regressor = load_regressor(regressor_path, "diffusion", ENC, cfg, HALO, encoder)
    return train_model(data, "diffusion", encoder, ENC, cfg, HALO, checkpoint, regressor=regressor)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("method")
    split, data, encoder_path = season_with_encoder(out)
    regressor_path = train_regressor(data, "transfer_unet", encoder_path, out)
    model, result = train_split(data, encoder_path, regressor_path, out / "diff.ckpt")
    model.save(out / "diffusion.pt")
    coarse, _ = train_model(data, "diffusion", load_encoder(encoder_path), ENC, COARSE, HALO, out / "coarse.ckpt")
    return {"dir": out, "split": split, "data": data, "model": DiffusionDownscaler.load(out / "diffusion.pt"),
            "result": result, "coarse": coarse, "encoder": encoder_path, "regressor": regressor_path}


@pytest.fixture(params=["regression", "coarse"])
def variant(request, trained):
    """The method's model of each diffusion.residual variant."""
    return trained["model"] if request.param == "regression" else trained["coarse"]


def test_the_training_target_is_the_residual_from_the_regressor(trained):
    """The method's sigma_data (the std of its training targets) is that of fine minus the regressor's teacher-forced
    prediction; the coarse variant's that of fine minus coarse. The regressor has skill, so the two differ."""
    data = trained["data"]
    days = training_days(data, "train", ENC["history"])
    fine = np.stack([data.fine_on(d) for d in days])
    regression = teacher_forced(load_model(trained["regressor"]), data, days, 1, "dpmpp", 1)[0]
    coarse = np.stack([data.coarse_on(d) for d in days])
    assert trained["model"].spec.scale == pytest.approx(float(np.std(fine - regression)), rel=1e-4)
    assert trained["coarse"].spec.scale == pytest.approx(float(np.std(fine - coarse)), rel=1e-4)
    assert np.std(fine - regression) < 0.9 * np.std(fine - coarse)


def test_the_reference_can_be_predicted_with_the_sampling_tiles(trained, tmp_path):
    """diffusion.reference_tiling: sampling predicts the training reference with sampling.tile and sampling.overlap
    (as sampling will): the residual scale is that of fine minus those predictions, not of the patch tiling's."""
    data = trained["data"]
    days = training_days(data, "train", ENC["history"])
    fine = np.stack([data.fine_on(d) for d in days])
    regressor = load_model(trained["regressor"])
    tile = 2 * ENC["patch"]
    sampled = teacher_forced(regressor, data, days, 1, "dpmpp", 1, tile=tile, stride=tile - 2 * HALO)[0]
    patch = teacher_forced(regressor, data, days, 1, "dpmpp", 1)[0]
    cfg = dict(DIFF, steps=1, reference_tiling="sampling")
    model, _ = train_model(data, "diffusion", load_encoder(trained["encoder"]), ENC, cfg, HALO, tmp_path / "c.ckpt",
                           regressor=regressor, sampling={"tile": tile, "overlap": 0.0})
    assert model.spec.scale == pytest.approx(float(np.std(fine - sampled)), rel=1e-4)
    assert abs(np.std(fine - sampled) - np.std(fine - patch)) > 1e-3 * np.std(fine - patch)  # 10x the tolerance
    with pytest.raises(ValueError, match="reference_tiling: sampling needs"):
        train_model(data, "diffusion", load_encoder(trained["encoder"]), ENC, cfg, HALO, tmp_path / "d.ckpt",
                    regressor=regressor)


def test_the_ensemble_mean_tracks_the_regression(trained, tmp_path):
    """A fine record that is the regressor's prediction plus white noise (each day predicted from the noisy days
    before it): the method learns to generate that noise, so its members scatter around the regressor's prediction
    with the noise's spread, and their mean tracks the prediction, not the coarse field."""
    noise = 0.03
    data = copy.deepcopy(trained["data"])
    regressor = load_model(trained["regressor"])
    rng = np.random.default_rng(0)
    for i, day in enumerate(data.fine_times):  # in time order: each day's history is already the noisy record
        if all(data.has_fine(d) for d in history_window(day, ENC["history"])):
            predicted = teacher_forced(regressor, data, [day], 1, "dpmpp", 1)[0, 0]
            data.fine[i] = predicted + noise * rng.standard_normal(predicted.shape).astype(np.float32)
    model, _ = train_split(data, trained["encoder"], trained["regressor"], tmp_path / "noise.ckpt",
                           cfg=DIFF | {"steps": 100, "checkpoint_every": 50})
    assert model.spec.scale == pytest.approx(noise, rel=0.05)  # the target: the noise, nothing of fine - coarse
    days = data.days["test"]
    samples = teacher_forced(model, data, days, 8, "dpmpp", 6, seed=3)
    regression = teacher_forced(regressor, data, days, 1, "dpmpp", 1)[0]
    coarse = np.stack([data.coarse_on(d) for d in days])
    residual = samples - regression
    # measured: residual mean 0.0004, spread 0.0305, ensemble-mean error 0.011 (noise / sqrt(8) = 0.0106)
    assert abs(float(residual.mean())) < 0.1 * noise
    assert 0.8 * noise < float(residual.std()) < 1.25 * noise
    mean_error = float(np.sqrt(np.mean((samples.mean(axis=0) - regression) ** 2)))
    assert mean_error < 0.5 * noise and mean_error < 0.25 * float(np.sqrt(np.mean((coarse - regression) ** 2)))


def test_history_window_ends_the_day_before():
    day = pd.Timestamp("2000-05-10")
    w = history_window(day, 3)
    assert list(w) == list(pd.to_datetime(["2000-05-07", "2000-05-08", "2000-05-09"]))


def test_load_season_reads_the_contract_files(trained):
    data = trained["data"]
    assert data.fine.shape[1:] == data.coarse.shape[1:] == data.static["elevation"].shape == (17, 21)
    assert data.coarse_times[0] == pd.Timestamp("2000-01-01") and len(data.coarse_times) == 366
    assert data.truth is not None and np.isfinite(data.fine).all()
    # the scaler maps the training days onto [0, 1]
    train = np.stack([data.fine_on(d) for d in data.days["train"]])
    assert train.min() == pytest.approx(0, abs=1e-6) and train.max() == pytest.approx(1, abs=1e-6)


def test_missing_split_file_is_named(trained, tmp_path):
    for name in ("fine.nc", "coarse_on_fine.nc", "elevation.nc"):
        (tmp_path / name).write_bytes((trained["split"] / name).read_bytes())
    (tmp_path / "S").mkdir()
    (tmp_path / "S" / "scaler.json").write_bytes((trained["split"] / "S" / "scaler.json").read_bytes())
    with pytest.raises(io.DataValidationError, match="days.json"):
        load_season(tmp_path, "S", "DUEXTTAU")
    with pytest.raises(io.DataValidationError, match="variable 'AOD' not found"):
        load_season(trained["split"], "S", "AOD")


def test_saved_model_samples_like_the_trained_one(trained):
    day = trained["data"].days["test"][0]
    a = teacher_forced(trained["model"], trained["data"], [day], 2, "dpmpp", 3, seed=1)
    b = teacher_forced(trained["result"].model, trained["data"], [day], 2, "dpmpp", 3, seed=1)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)


def _perturbed(data, fine_from=None, coarse_after=None, truth=True):
    d = copy.deepcopy(data)
    rng = np.random.default_rng(7)
    if fine_from is not None:
        sel = d.fine_times >= fine_from
        d.fine[sel] = rng.uniform(0, 1, d.fine[sel].shape).astype(np.float32)
    if coarse_after is not None:
        sel = d.coarse_times > coarse_after
        d.coarse[sel] = rng.uniform(0, 1, d.coarse[sel].shape).astype(np.float32)
    if truth and d.truth is not None:
        d.truth[:] = rng.uniform(0, 1, d.truth.shape)
    return d


def test_no_leakage_teacher_forced(trained, variant):
    """The prediction for day t does not move when the fine field of t and later, or the coarse field after t, changes."""
    model, data = variant, trained["data"]
    day = data.days["test"][len(data.days["test"]) // 2]
    base = teacher_forced(model, data, [day], 3, "dpmpp", 3, seed=5)
    future = _perturbed(data, fine_from=day, coarse_after=day)
    assert np.array_equal(base, teacher_forced(model, future, [day], 3, "dpmpp", 3, seed=5))
    # controls: the test can fail: yesterday's fine field and today's coarse field do matter
    yesterday = _perturbed(data, fine_from=day - pd.Timedelta(days=1))
    assert not np.array_equal(base, teacher_forced(model, yesterday, [day], 3, "dpmpp", 3, seed=5))
    today = _perturbed(data, coarse_after=day - pd.Timedelta(days=1))
    assert not np.array_equal(base, teacher_forced(model, today, [day], 3, "dpmpp", 3, seed=5))


def test_no_leakage_autoregressive(trained, variant):
    """Beyond days: the coarse future and the hidden fine truth never enter the run up to day t."""
    model, data = variant, trained["data"]
    october = pd.date_range("2000-10-01", "2000-10-06")
    base = autoregressive(model, data, october, 2, "dpmpp", 3, spinup=2, seed=0)
    cut = october[3]
    future = _perturbed(data, coarse_after=cut)
    again = autoregressive(model, future, october, 2, "dpmpp", 3, spinup=2, seed=0)
    assert np.array_equal(base[:, :4], again[:, :4])
    assert not np.array_equal(base[:, 4:], again[:, 4:])


def test_autoregressive_members_follow_their_own_history(trained):
    model, data = trained["model"], trained["data"]
    march = pd.date_range("2000-03-01", "2000-03-10")
    out = autoregressive(model, data, march, 3, "dpmpp", 3, spinup=3, seed=0)
    assert out.shape == (3, 10, 17, 21) and np.isfinite(out).all()
    assert not np.allclose(out[0], out[1])
    assert [len(r) for r in runs(data.days["beyond"])] == [31, 31]  # March and October


def test_tiled_samples_have_no_seams(trained):
    """Per-step Hann blending: gradients across tile-core edges are like gradients elsewhere."""
    model, data = trained["model"], trained["data"]
    days = data.days["test"][:4]
    samples = torch.from_numpy(teacher_forced(model, data, days, 4, "dpmpp", 4, seed=0, tile=8, stride=4))
    tiling = Tiling(17, 21, 8, HALO, 4)
    truth = torch.from_numpy(np.stack([data.fine_on(d) for d in days]))
    assert seam_ratio(samples, tiling) < 1.2 * seam_ratio(truth, tiling)


def test_samples_file_is_cf_with_members_in_physical_units(trained, tmp_path):
    model, data = trained["model"], trained["data"]
    days = data.days["test"][:2]
    scaled = teacher_forced(model, data, days, 3, "dpmpp", 3)
    path = io.write_netcdf(samples_dataset(scaled, days, data, {"model": "diffusion"}), tmp_path / "test.nc")
    ds = xr.open_dataset(path)
    da = ds["DUEXTTAU"]
    assert da.dims == ("member", "time", "lat", "lon") and da.shape == (3, 2, 17, 21)
    assert da.attrs["units"] == "1" and ds.lat.attrs["units"] == "degrees_north"
    assert np.issubdtype(ds.time.dtype, np.datetime64) and list(pd.DatetimeIndex(ds.time.values)) == list(days)
    np.testing.assert_allclose(data.scaler.forward(da.values.astype(np.float64)), scaled, atol=1e-4)
    assert (da.values > 0).all()


def test_the_model_learns_something(trained):
    """Even 40 steps beat the coarse field alone on the test days (log10 RMSE)."""
    model, data = trained["model"], trained["data"]
    days = data.days["test"]
    truth = np.stack([data.fine_on(d) for d in days])
    samples = teacher_forced(model, data, days, 4, "dpmpp", 4)
    coarse = np.stack([data.coarse_on(d) for d in days])[None]
    assert ensemble_scores(samples, truth)["rmse"] < ensemble_scores(coarse, truth)["rmse"]


def test_product_is_continuous_with_flags_and_provenance(trained, tmp_path):
    model, data = trained["model"], trained["data"]
    beyond = data.days["beyond"]
    scaled = autoregressive(model, data, beyond, 3, "dpmpp", 3, spinup=2)
    path = io.write_netcdf(samples_dataset(scaled, beyond, data, {}), tmp_path / "beyond.nc")
    ds = assemble(trained["split"] / "fine.nc", {"S": path}, {"S": MONTHS}, "DUEXTTAU", ("2000-01-01", "2000-12-31"), 2,
                  {"config": {"a": 1}, "sampler": "dpmpp"})
    out = io.write_netcdf(ds, tmp_path / "product.nc")
    ds = xr.open_dataset(out)
    assert ds.sizes["time"] == 366 and ds["DUEXTTAU_members"].shape == (2, 366, 17, 21)
    src = pd.Series(ds.source.values, index=pd.DatetimeIndex(ds.time.values))
    assert (src["2000-04-01":"2000-09-30"] == SOURCE_FLAGS["fine_record"]).all()
    assert (src["2000-03"] == SOURCE_FLAGS["diffusion_ensemble"]).all() and (src["2000-10"] == SOURCE_FLAGS["diffusion_ensemble"]).all()
    assert (src["2000-01"] == SOURCE_FLAGS["no_model"]).all() and (src["2000-12"] == SOURCE_FLAGS["no_model"]).all()
    assert ds.DUEXTTAU.sel(time="2000-01-15").isnull().all()
    fine = xr.open_dataset(trained["split"] / "fine.nc").DUEXTTAU
    np.testing.assert_array_equal(ds.DUEXTTAU.sel(time="2000-06-01").values, fine.sel(time="2000-06-01").values)
    oct1 = ds.DUEXTTAU_spread.sel(time="2000-10-01")
    assert (oct1 > 0).all()
    assert json.loads(ds.attrs["config"]) == {"a": 1} and ds.attrs["sampler"] == "dpmpp"
    assert ds.DUEXTTAU.encoding.get("zlib")
    with pytest.raises(ValueError, match="members_saved"):
        assemble(trained["split"] / "fine.nc", {"S": path}, {"S": MONTHS}, "DUEXTTAU", ("2000-01-01", "2000-12-31"), 5, {})


def test_training_is_reproducible(trained, tmp_path):
    """Same config and seed, same machine: the same encoder and the same diffusion losses."""
    data = trained["data"]
    a, ra = pretrain_encoder(data, MONTHS, ENC, tmp_path / "a.ckpt")
    b, rb = pretrain_encoder(data, MONTHS, ENC, tmp_path / "b.ckpt")
    assert ra.losses == rb.losses
    cfg = dict(DIFF, steps=5)
    reg = trained["regressor"]
    _, da = train_model(data, "diffusion", a, ENC, cfg, HALO, tmp_path / "c.ckpt", regressor=load_model(reg))
    _, db = train_model(data, "diffusion", b, ENC, cfg, HALO, tmp_path / "d.ckpt", regressor=load_model(reg))
    assert da.losses == db.losses
