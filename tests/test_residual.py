"""The residual-model base: every trained model of the registry saves and loads as its own class."""

import pytest
import torch

from diffscale.core import registry
from diffscale.method.conditioning import RAW_CHANNELS
from diffscale.method.residual import ResidualModel, ResidualSpec, load_model, model_class

torch.set_num_threads(1)
TRAINED = [name for name, entry in registry.MODELS.items() if entry.trained]
ENC = dict(history=3, patch=8, channels=[4, 8], attention=True)
NET = dict(channels=[8, 8], blocks=1, attention=True, latent_channels=2)


def build(name: str) -> ResidualModel:
    torch.manual_seed(0)
    return model_class(name)(ResidualSpec.from_config(name, ENC, NET, halo=1, scale=0.3))


def test_every_trained_model_has_a_class():
    assert set(TRAINED) == {"unet", "vae", "transfer_unet", "diffusion_no_transfer", "diffusion"}
    for name in TRAINED:
        assert issubclass(model_class(name), ResidualModel)
    with pytest.raises(ValueError, match="not trained"):
        model_class("bicubic")


@pytest.mark.parametrize("name", TRAINED)
def test_load_model_round_trips(name, tmp_path):
    model = build(name)
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
