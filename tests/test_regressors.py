"""The trained baselines (unet, vae, transfer_unet): shapes, losses, members, no leakage, save/load."""

import numpy as np
import pandas as pd
import pytest
import torch

from diffscale.core import registry
from diffscale.core.config import baseline_settings
from diffscale.method.conditioning import raw_channels
from diffscale.method.fit import load_encoder, train_model
from diffscale.method.loop import LoopConfig, train_loop
from diffscale.method.networks.unet import UNet
from diffscale.method.regressors import TransferUNetRegressor, elbo_loss, gaussian_kl, mse_loss
from diffscale.method.residual import ResidualSpec, load_model, model_class
from diffscale.method.sampling import autoregressive, ensemble_scores, teacher_forced
from diffscale.method.tasks import masked_mean, residual_loss
from method_fixtures import BASE, DIFF, ENC, HALO, season_with_encoder

RAW_CHANNELS = raw_channels(("elevation",))  # the default spec's static fields

torch.set_num_threads(1)
KINDS = registry.of_family("regressor")


def spec(kind, **kw):
    return ResidualSpec(**{"name": kind, "history": 3, "patch": 16, "halo": HALO, "encoder_channels": (4, 8),
                           "encoder_attention": True, "channels": (8, 8), "blocks": 1, "attention": True,
                           "uses_encoder": registry.entry(kind).uses_encoder, "latent_channels": 2, "scale": 0.5} | kw)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("baselines")
    _, data, encoder_path = season_with_encoder(out)
    cfg = baseline_settings(BASE, DIFF)
    models, results = {}, {}
    for kind in KINDS:
        model, results[kind] = train_model(data, kind, load_encoder(encoder_path), ENC, cfg, HALO, out / f"{kind}.ckpt")
        model.save(out / f"{kind}.pt")
        models[kind] = load_model(out / f"{kind}.pt")
    return {"dir": out, "data": data, "models": models, "results": results}


def test_baseline_settings_take_the_diffusion_budget():
    cfg = baseline_settings(BASE | {"lr": 1e-3}, DIFF)
    assert cfg["steps"] == 40 and cfg["batch_size"] == 8 and cfg["channels"] == [8, 8] and cfg["lr"] == 1e-3
    assert cfg["latent_channels"] == 2


def test_baseline_stops_after_patience_validations_without_improvement(tmp_path):
    _, data, encoder_path = season_with_encoder(tmp_path)
    # A learning rate far too high: validation gets worse after the first check.
    cfg = baseline_settings(BASE | {"patience": 1, "lr": 0.5, "checkpoint_every": 5}, DIFF)
    _, result = train_model(data, "unet", None, ENC, cfg, HALO, tmp_path / "unet.ckpt")
    assert result.stopped_early and result.steps < cfg["steps"]
    best_step = min(result.val, key=lambda sv: sv[1])[0]
    assert result.steps == best_step + cfg["checkpoint_every"]  # one validation without improvement, then stop


@pytest.mark.parametrize("kind", KINDS)
def test_shapes_of_every_kind(kind):
    torch.manual_seed(0)
    model = model_class(kind)(spec(kind))
    raw, hist = torch.randn(5, RAW_CHANNELS, 16, 16), torch.randn(5, 3, 16, 16)
    cond = model.condition(raw, hist)
    assert cond.shape == (5, model.cond_channels, 16, 16)
    latent = torch.randn(5, 2, 16, 16) if kind == "vae" else None
    assert model(cond, latent).shape == (5, 1, 16, 16)
    target = torch.randn(5, 1, 16, 16)
    assert model.pixel_loss(model, raw, hist, target, torch.Generator().manual_seed(0)).shape == (5, 1, 16, 16)
    loss = residual_loss(model, (raw, hist, target, torch.ones(5, 1, 16, 16)), torch.Generator().manual_seed(0))
    assert loss.ndim == 0 and torch.isfinite(loss)
    # whole regions of any size through the tiles: (R, H, W) -> (members, H, W)
    out = model.sample_day(torch.randn(RAW_CHANNELS, 21, 17), torch.randn(1, 3, 21, 17), members=4,
                           generator=torch.Generator().manual_seed(0))
    assert out.shape == ((4 if kind == "vae" else 1), 21, 17) and torch.isfinite(out).all()


def test_transfer_unet_keeps_the_encoder_frozen():
    model = TransferUNetRegressor(spec("transfer_unet"), UNet(3, 1, (4, 8)))
    assert all(not p.requires_grad for p in model.encoder.parameters())
    assert any(p.requires_grad for p in model.net.parameters())


def test_losses_on_hand_computed_cases():
    pred, target = torch.tensor([[[[1.0, 3.0]]]]), torch.tensor([[[[0.0, 0.0]]]])
    assert float(masked_mean(mse_loss(pred, target))) == pytest.approx(5.0)
    assert float(masked_mean(mse_loss(pred, target), torch.tensor([[[[1.0, 0.0]]]]))) == pytest.approx(1.0)
    mu, logvar = torch.zeros(1, 2, 1, 2), torch.zeros(1, 2, 1, 2)
    assert torch.equal(gaussian_kl(mu, logvar), torch.zeros(1, 1, 1, 2))
    assert float(gaussian_kl(torch.ones(1, 2, 1, 1), torch.zeros(1, 2, 1, 1))) == pytest.approx(1.0)  # 2 x 0.5
    # sigma = e: 0.5 (x / e)^2 + 1, averaged over x = 1 and 3
    per_pixel = elbo_loss(pred, target, mu, logvar, torch.tensor(1.0))
    assert per_pixel.shape == pred.shape and float(masked_mean(per_pixel)) == pytest.approx(0.5 * 5 / np.e**2 + 1)


@pytest.mark.parametrize("kind", KINDS)
def test_loss_decreases_on_a_tiny_problem(kind, tmp_path):
    """Fit a fixed smooth residual from its coarse channel: the training loss must fall well below its start."""
    g = torch.Generator().manual_seed(0)
    raw = torch.randn(8, RAW_CHANNELS, 16, 16, generator=g)
    hist = torch.randn(8, 3, 16, 16, generator=g)
    target = 0.5 * raw[:, :1] + 0.1
    mask = torch.ones(8, 1, 16, 16)
    torch.manual_seed(0)
    model = model_class(kind)(spec(kind, scale=1.0), UNet(3, 1, (4, 8)))
    loop = LoopConfig(steps=60, lr=3e-3, ema_decay=None, checkpoint_every=1000, seed=0)
    result = train_loop(model, lambda step, gen: (raw, hist, target, mask), residual_loss, loop, tmp_path / "c.ckpt")
    first, last = result.losses[0][1], np.mean([v for _, v in result.losses[-5:]])
    assert last < first - 0.3 * abs(first)


def test_members_differ_for_the_vae_and_deterministic_models_give_one(trained):
    data, models = trained["data"], trained["models"]
    day = data.days["test"][0]
    for kind, model in models.items():
        out = teacher_forced(model, data, [day], 4, "dpmpp", 3, seed=1)
        if kind == "vae":
            assert out.shape[0] == 4 and not np.allclose(out[0], out[1])
        else:
            assert out.shape[0] == 1 and model.deterministic
        assert np.isfinite(out).all()


def test_saved_baselines_sample_like_the_trained_ones(trained, tmp_path):
    data = trained["data"]
    day = data.days["test"][1]
    for kind, model in trained["models"].items():
        model.save(tmp_path / f"{kind}.pt")
        again = load_model(tmp_path / f"{kind}.pt")
        assert type(again) is model_class(kind) and again.spec == model.spec
        np.testing.assert_array_equal(teacher_forced(model, data, [day], 2, "dpmpp", 3, seed=2),
                                      teacher_forced(again, data, [day], 2, "dpmpp", 3, seed=2))


def _perturbed(data, fine_from=None, coarse_after=None):
    import copy

    d = copy.deepcopy(data)
    rng = np.random.default_rng(7)
    if fine_from is not None:
        sel = d.fine_times >= fine_from
        d.fine[sel] = rng.uniform(0, 1, d.fine[sel].shape).astype(np.float32)
    if coarse_after is not None:
        sel = d.coarse_times > coarse_after
        d.coarse[sel] = rng.uniform(0, 1, d.coarse[sel].shape).astype(np.float32)
    if d.truth is not None:
        d.truth[:] = rng.uniform(0, 1, d.truth.shape)
    return d


@pytest.mark.parametrize("kind", KINDS)
def test_no_leakage(trained, kind):
    """Day t's prediction ignores the fine field of t and later and the coarse field after t; yesterday matters."""
    model, data = trained["models"][kind], trained["data"]
    day = data.days["test"][len(data.days["test"]) // 2]
    base = teacher_forced(model, data, [day], 3, "dpmpp", 3, seed=5)
    assert np.array_equal(base, teacher_forced(model, _perturbed(data, fine_from=day, coarse_after=day), [day], 3, "dpmpp", 3, seed=5))
    yesterday = _perturbed(data, fine_from=day - pd.Timedelta(days=1))
    assert not np.array_equal(base, teacher_forced(model, yesterday, [day], 3, "dpmpp", 3, seed=5))
    today = _perturbed(data, coarse_after=day - pd.Timedelta(days=1))
    assert not np.array_equal(base, teacher_forced(model, today, [day], 3, "dpmpp", 3, seed=5))
    # autoregressive: the coarse future and the hidden truth never reach earlier days
    october = pd.date_range("2000-10-01", "2000-10-06")
    members = 1 if model.deterministic else 2
    run = autoregressive(model, data, october, members, "dpmpp", 3, spinup=2, seed=0)
    again = autoregressive(model, _perturbed(data, coarse_after=october[3]), october, members, "dpmpp", 3, spinup=2, seed=0)
    assert run.shape[0] == members and np.array_equal(run[:, :4], again[:, :4])
    assert not np.array_equal(run[:, 4:], again[:, 4:])


def test_trained_baselines_beat_the_coarse_field(trained):
    """Not crippled: after the tiny budget the regressors already improve on the interpolated coarse input."""
    data = trained["data"]
    days = data.days["test"]
    truth = np.stack([data.fine_on(d) for d in days])
    coarse = ensemble_scores(np.stack([data.coarse_on(d) for d in days])[None], truth)
    for kind in ("unet", "transfer_unet"):
        scores = ensemble_scores(teacher_forced(trained["models"][kind], data, days, 1, "dpmpp", 3), truth)
        assert scores["rmse"] < coarse["rmse"], (kind, scores, coarse)
