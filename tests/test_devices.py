"""The config's device and sampling precision, and that a model and every tensor it is given share a device.

No GPU is needed: the second device is torch's ``meta`` device (tensors with shapes but no
data), which, like CUDA, refuses to compute with CPU tensors. A model moved there must be
given nothing but meta tensors from its inputs to its noise; only the last copy of the
result back to the CPU fails, since meta tensors hold no values.
"""

from __future__ import annotations

import itertools
import re

import numpy as np
import pandas as pd
import pytest
import torch

from diffscale.core.config import load_schema
from diffscale.method import devices, edm
from diffscale.method.conditioning import SeasonData
from diffscale.method.devices import compiled, device, precision
from diffscale.method.diffusion import DiffusionDownscaler
from diffscale.method.regressors import UNetRegressor, VAERegressor
from diffscale.method.residual import ResidualSpec, load_model
from diffscale.method.sampling import ChainState, continue_chain, teacher_forced

META = torch.device("meta")


class DeviceProbe:
    """Forward pre-hooks on every module: the devices of its own weights and of every tensor it is given."""

    def __init__(self, model: torch.nn.Module):
        self.calls: list[tuple[str, set, set]] = []
        self.handles = [m.register_forward_pre_hook(self._hook(name), with_kwargs=True)
                        for name, m in model.named_modules()]

    def _hook(self, name: str):
        def hook(module, args, kwargs):
            own = {t.device for t in itertools.chain(module.parameters(recurse=False), module.buffers(recurse=False))}
            given = {v.device for v in itertools.chain(args, kwargs.values()) if isinstance(v, torch.Tensor)}
            self.calls.append((name, own, given))
        return hook

    def devices(self) -> set:
        return set().union(*(own | given for _, own, given in self.calls))

    def strays(self, dev: torch.device) -> list[tuple[str, set, set]]:
        """Calls where a weight or an input was not on ``dev``."""
        return [c for c in self.calls if (c[1] | c[2]) - {dev}]


def spec(name: str) -> ResidualSpec:
    return ResidualSpec(name=name, history=3, patch=16, halo=2, encoder_channels=(4, 8), encoder_attention=True,
                        channels=(8, 8), blocks=1, attention=True, uses_encoder=name in ("diffusion", "transfer_unet"),
                        scale=0.1, latent_channels=2)


MODELS = {"diffusion": DiffusionDownscaler, "unet": UNetRegressor, "vae": VAERegressor}


def untrained(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return MODELS[name](spec(name)).eval()


class Identity:
    def forward(self, x):
        return x

    def inverse(self, x):
        return x


def fake_season(h: int = 17, w: int = 21) -> SeasonData:
    """A season of random fields: a fine record in May, beyond days before and after it."""
    rng = np.random.default_rng(0)
    coarse_times = pd.date_range("2000-04-20", "2000-06-10")
    fine_times = pd.date_range("2000-05-01", "2000-05-31")
    fine = rng.uniform(0, 1, (len(fine_times), h, w)).astype(np.float32)
    beyond = coarse_times[(coarse_times < fine_times[0]) | (coarse_times > fine_times[-1])]
    days = {"train": fine_times[5:25], "val": fine_times[:0], "test": fine_times[25:28], "core": fine_times,
            "pool": fine_times, "beyond": beyond}
    return SeasonData("x", {}, np.linspace(33, 34, h), np.linspace(64, 65.25, w), fine_times, fine, coarse_times,
                      rng.uniform(0, 1, (len(coarse_times), h, w)).astype(np.float32), {"elevation": rng.uniform(0, 3000, (h, w))},
                      days, Identity())


def test_device_choices(monkeypatch):
    assert device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert device("auto") == torch.device("cpu")
    with pytest.raises(RuntimeError, match="no CUDA device"):
        device("cuda")
    with pytest.raises(ValueError, match="not one of"):
        device("gpu")
    # With GPUs (the flags only: no tensor is made there): auto and cuda take the local rank's.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert device("auto") == device("cuda") == torch.device("cuda", 1)
    assert device("cuda:0") == torch.device("cuda", 0)
    with pytest.raises(RuntimeError, match="only 2"):
        device("cuda:2")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match="several processes"):
        device("cuda:0")


def test_the_schema_accepts_what_device_accepts():
    schema = re.compile(load_schema()["properties"]["device"]["pattern"])
    for value in ("auto", "cpu", "cuda", "cuda:0", "cuda:12", "gpu", "cuda:", "CPU", "mps", "cuda:1x"):
        assert bool(schema.match(value)) == bool(devices.CHOICE.match(value)), value


def test_autocast_only_on_cuda():
    with precision(torch.device("cpu"), True):
        assert not torch.is_autocast_enabled("cpu") and not torch.is_autocast_enabled("cuda")
    with pytest.warns(UserWarning, match="CUDA is not available"):  # built, not entered: this machine has no GPU
        ctx = precision(torch.device("cuda", 0), True)
    assert isinstance(ctx, torch.autocast) and ctx.device == "cuda" and ctx.fast_dtype == torch.bfloat16
    assert not isinstance(precision(torch.device("cuda", 0), False), torch.autocast)


def test_compile_only_on_cuda():
    """On the CPU sampling.compile leaves the model as it is, so CPU runs stay reproducible to the bit."""
    model = untrained("diffusion")
    denoiser = model.denoiser
    assert compiled(model, torch.device("cpu"), True) is model and model.denoiser is denoiser
    regressor = untrained("unet")
    assert compiled(regressor, torch.device("cuda", 0), True) is regressor  # no denoiser: nothing to compile


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU: compiling happens on CUDA only")
def test_compiled_denoiser_samples_what_the_eager_one_does():
    """A day sampled with the compiled denoiser, the same noise, against the eager model's (fused kernels round differently)."""
    dev = torch.device("cuda", 0)
    eager = untrained("diffusion").to(dev)
    fast = compiled(untrained("diffusion").to(dev), dev, True)
    assert fast.denoiser is not eager.denoiser
    data = fake_season()
    a = teacher_forced(eager, data, data.days["test"][:2], 2, "dpmpp", 3, seed=1)
    b = teacher_forced(fast, data, data.days["test"][:2], 2, "dpmpp", 3, seed=1)
    assert np.abs(a - b).max() < 1e-3 * np.abs(a).max()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_drivers_give_the_model_tensors_on_its_device(name):
    """On the CPU: every module call of the test and beyond drivers, and the results come back as numpy."""
    model, data = untrained(name), fake_season()
    probe = DeviceProbe(model)
    test = teacher_forced(model, data, data.days["test"], 2, "dpmpp", 2, seed=1)
    beyond, state = continue_chain(model, data, data.days["beyond"][-5:], 2, "dpmpp", 2, spinup=2, state=ChainState())
    assert isinstance(test, np.ndarray) and np.isfinite(beyond).all() and state.last_day == data.days["beyond"][-1]
    assert len(probe.calls) > 10 and probe.devices() == {torch.device("cpu")} and not probe.strays(torch.device("cpu"))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_model_on_another_device_is_given_only_tensors_there(name):
    """On the meta device: inputs, noise and latents all follow the model; only the copy back out fails."""
    model = untrained(name).to(META)
    probe = DeviceProbe(model)
    raw, history = torch.rand(6, 17, 21), torch.rand(1, 3, 17, 21)
    with pytest.raises(NotImplementedError, match="meta"):
        model.sample_day(raw, history, 2, "dpmpp", 2, torch.Generator().manual_seed(0))
    assert len(probe.calls) > 10 and probe.devices() == {META} and not probe.strays(META)


def test_the_probe_catches_a_tensor_left_behind(monkeypatch):
    """The control: sampling noise left on the CPU reaches the denoiser there, and the probe says so."""
    def start_on_cpu(cond, sigma0, generator, shape):
        return torch.randn(shape, generator=generator, dtype=torch.float64) * sigma0

    monkeypatch.setattr(edm, "_start", start_on_cpu)
    model = untrained("diffusion").to(META)
    probe = DeviceProbe(model)
    with pytest.raises((RuntimeError, NotImplementedError)):
        model.sample_day(torch.rand(6, 17, 21), torch.rand(1, 3, 17, 21), 2, "dpmpp", 2,
                         torch.Generator().manual_seed(0))
    strays = probe.strays(META)
    assert strays and strays[0][0] == "denoiser" and torch.device("cpu") in strays[0][2]


def test_load_model_puts_the_model_on_the_device_asked(tmp_path):
    untrained("vae").save(tmp_path / "vae.pt")
    model = load_model(tmp_path / "vae.pt", META)
    assert {p.device for p in itertools.chain(model.parameters(), model.buffers())} == {META}
    assert not model.training
