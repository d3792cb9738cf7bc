"""The residual-model base: every trained model of the registry saves and loads as its own class,
a diffusion model with its regression part."""

import pytest
import torch

from diffscale.core import registry
from diffscale.core.io import DataValidationError
from diffscale.method.conditioning import raw_channels
from diffscale.method.diffusion import DiffusionDownscaler
from diffscale.method.fit import load_regressor
from diffscale.method.networks.encoder import encoder_unet
from diffscale.method.residual import ResidualModel, ResidualSpec, load_model, model_class

RAW_CHANNELS = raw_channels(("elevation",))  # the default spec's static fields

torch.set_num_threads(1)
TRAINED = [name for name, entry in registry.MODELS.items() if entry.trained]
ENC = dict(history=3, patch=8, channels=[4, 8], attention=True)
NET = dict(channels=[8, 8], blocks=1, attention=True, latent_channels=2)


def build(name: str, residual: str = "regression") -> ResidualModel:
    """An untrained model; a diffusion model with its regression part (the registry's) unless residual is coarse."""
    part = registry.regression(name, residual) if registry.entry(name).family == "diffusion" else None
    regressor = {"regressor": build(part)} if part else {}
    torch.manual_seed(0)
    return model_class(name)(ResidualSpec.from_config(name, ENC, NET | {"residual": residual}, halo=1, scale=0.3),
                             **regressor)


def test_every_trained_model_has_a_class():
    assert set(TRAINED) == {"unet", "vae", "transfer_unet", "diffusion_no_transfer", "diffusion", "diffusion_from_coarse"}
    for name in TRAINED:
        assert issubclass(model_class(name), ResidualModel)
    with pytest.raises(ValueError, match="not trained"):
        model_class("bicubic")


@pytest.mark.parametrize("name,residual", [(n, "regression") for n in TRAINED] +
                         [(n, "coarse") for n in registry.of_family("diffusion")])
def test_load_model_round_trips(name, residual, tmp_path):
    model = build(name, residual)
    entry = registry.entry(name)
    # what the registry says of the model is what the class does
    assert model.spec.uses_encoder == entry.uses_encoder == (model.encoder is not None)
    assert model.deterministic == (not entry.ensemble)
    model.save(tmp_path / "m.pt", extra={"steps": 3})
    again = load_model(tmp_path / "m.pt")
    assert type(again) is model_class(name) and again.spec == model.spec and not again.training
    a, b = model.state_dict(), again.state_dict()
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
    assert type(again).load(tmp_path / "m.pt").spec == model.spec
    # the loaded model samples as the saved one
    raw, hist = torch.randn(RAW_CHANNELS, 11, 9), torch.randn(1, 3, 11, 9)
    draw = dict(members=2, sampler="dpmpp", steps=2)
    out = model.eval().sample_day(raw, hist, generator=torch.Generator().manual_seed(1), **draw)
    assert out.shape == ((1 if model.deterministic else 2), 11, 9)
    assert torch.equal(out, again.sample_day(raw, hist, generator=torch.Generator().manual_seed(1), **draw))


def test_load_checks_the_class(tmp_path):
    build("unet").save(tmp_path / "unet.pt")
    with pytest.raises(TypeError, match="not a DiffusionDownscaler"):
        model_class("diffusion").load(tmp_path / "unet.pt")


def test_the_registry_pairs_each_diffusion_model_with_a_regressor_of_the_same_encoder_use():
    """The ablation drops the transfer encoder from both parts: its regression part is the unet."""
    assert registry.regression("diffusion", "regression") == "transfer_unet"
    assert registry.regression("diffusion_no_transfer", "regression") == "unet"
    assert registry.regression("diffusion", "coarse") is None
    # the split's ablation has no regression part whatever diffusion.residual says
    assert registry.regression("diffusion_from_coarse", "regression") is None
    assert registry.entry("diffusion_from_coarse").uses_encoder
    for name in registry.of_family("diffusion"):
        if name == "diffusion_from_coarse":
            continue
        part = registry.entry(registry.entry(name).regression)
        assert part.family == "regressor" and not part.ensemble
        assert part.uses_encoder == registry.entry(name).uses_encoder
    with pytest.raises(ValueError, match="'mean' is not one of regression, coarse"):
        registry.regression("diffusion", "mean")


@pytest.mark.parametrize("name", [n for n in registry.of_family("diffusion") if registry.entry(n).regression])
def test_the_split_model_holds_its_regressor_and_adds_its_prediction(name, tmp_path):
    """Saved and loaded with its regressor; a member is the regressor's prediction from that member's own history
    plus the sampled residual: the coarse variant with the same denoiser draws the same residual onto the coarse field."""
    model = build(name)
    assert model.regressor is not None and all(not p.requires_grad for p in model.regressor.parameters())
    if model.encoder is not None:
        assert model.regressor.encoder is model.encoder  # shared: the features are computed once
    model.save(tmp_path / "m.pt")
    saved = torch.load(tmp_path / "m.pt", weights_only=False)
    assert saved["spec"]["regressor"] == saved["regressor"]["model"] == registry.entry(name).regression
    again = load_model(tmp_path / "m.pt")
    coarse = build(name, "coarse")
    coarse.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("regressor.")})
    raw, hist = torch.randn(RAW_CHANNELS, 11, 9), torch.randn(2, 3, 11, 9)  # each member its own history
    draw = dict(members=2, sampler="dpmpp", steps=3)
    out = again.sample_day(raw, hist, generator=torch.Generator().manual_seed(0), **draw)
    residual = coarse.eval().sample_day(raw, hist, generator=torch.Generator().manual_seed(0), **draw) - raw[0]
    for m in range(2):
        regression = model.regressor.sample_day(raw, hist[m:m + 1], 1)[0]
        torch.testing.assert_close(out[m], regression + residual[m], rtol=0, atol=1e-5)
    assert not torch.allclose(out[0] - residual[0], out[1] - residual[1])  # the members' own histories count


def test_a_mismatched_regressor_is_named(tmp_path):
    """Wrong regressor files are refused at training and at loading, naming the file."""
    build("vae").save(tmp_path / "vae.pt")
    build("unet").save(tmp_path / "unet.pt")
    with pytest.raises(DataValidationError, match=r"unet\.pt: not the regression part of diffusion: .*'transfer_unet', not 'unet'"):
        load_regressor(tmp_path / "unet.pt", "diffusion", ENC, NET, 1, None)
    with pytest.raises(DataValidationError, match=r"vae\.pt: .*'unet', not 'vae'"):
        load_regressor(tmp_path / "vae.pt", "diffusion_no_transfer", ENC, NET, 1, None)
    with pytest.raises(DataValidationError, match=r"unet\.pt: .*other halo"):
        load_regressor(tmp_path / "unet.pt", "diffusion_no_transfer", ENC, NET, 2, None)
    # trained with another encoder than the one the diffusion model is given
    build("transfer_unet").save(tmp_path / "transfer_unet.pt")
    torch.manual_seed(1)
    other = encoder_unet(ENC["history"], ENC["channels"], ENC["attention"])
    with pytest.raises(DataValidationError, match=r"transfer_unet\.pt: .*another transfer encoder"):
        load_regressor(tmp_path / "transfer_unet.pt", "diffusion", ENC, NET, 1, other)
    # a model file of the split variant without its regression part
    model = build("diffusion")
    torch.save({"model": "diffusion", "spec": {**vars(model.spec)}, "state": model.state_dict()}, tmp_path / "bad.pt")
    with pytest.raises(DataValidationError, match=r"bad\.pt: model diffusion takes its residual from 'transfer_unet' but "
                                                   "the file holds no regression part"):
        load_model(tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="pass the trained regressor"):
        DiffusionDownscaler(model.spec)


def test_bottleneck_features_are_the_encoders_middle_alone(tmp_path):
    """encoder.features: bottleneck hands the models the middle's output only; the file records the choice and a
    regression part with the other choice is refused."""
    enc = ENC | {"features": "bottleneck"}
    spec = ResidualSpec.from_config("transfer_unet", enc, NET, halo=1, scale=0.3)
    model = model_class("transfer_unet")(spec)
    assert spec.encoder_features == "bottleneck" and model.encoder.feature_channels == ENC["channels"][-1]
    hist = torch.randn(2, ENC["history"], 8, 8)
    feats = model.features(hist)
    assert feats.shape == (2, ENC["channels"][-1], 8, 8)
    # the levels' features end with the same middle output
    levels = model_class("transfer_unet")(ResidualSpec.from_config("transfer_unet", ENC, NET, halo=1, scale=0.3),
                                          model.encoder.unet)
    torch.testing.assert_close(levels.features(hist)[:, -ENC["channels"][-1]:], feats)
    assert levels.cond_channels - model.cond_channels == sum(ENC["channels"])
    model.save(tmp_path / "transfer_unet.pt")
    assert load_model(tmp_path / "transfer_unet.pt").spec.encoder_features == "bottleneck"
    with pytest.raises(DataValidationError, match=r"transfer_unet\.pt: .*encoder_features"):
        load_regressor(tmp_path / "transfer_unet.pt", "diffusion", ENC, NET, 1, None)
    with pytest.raises(ValueError, match="encoder.features 'skip' is not one of levels, bottleneck"):
        model_class("transfer_unet")(ResidualSpec.from_config("transfer_unet", ENC | {"features": "skip"}, NET, 1))
