"""EDM preconditioning and the samplers, checked against an exactly known denoiser."""

import math

import pytest
import torch

from diffscale.method.edm import Denoiser, cosine_sigmas, edm_loss, karras_sigmas, sample
from diffscale.method.networks.unet import UNet

torch.set_num_threads(1)


def gaussian_denoiser(mu: float, s: float):
    """The exact E[x0 | x] for x0 ~ N(mu, s^2) per pixel and x = x0 + sigma n."""
    def denoise(x, sigma, cond):
        sig = sigma.double().reshape(-1, 1, 1, 1)
        return (mu + s**2 / (s**2 + sig**2) * (x.double() - mu)).to(x.dtype)
    return denoise


@pytest.mark.parametrize("name,steps,tolerance", [("ddpm", 200, 0.05), ("dpmpp", 50, 0.03), ("dpmpp", 10, 0.2), ("dpmpp", 6, 0.2)])
def test_samplers_draw_the_data_distribution(name, steps, tolerance):
    """Exact denoiser of N(mu, s^2): samples have its mean and, up to the solver's error, its spread.

    A few-step ODE solver over-disperses this Gaussian by ~15% (measured), hence the looser bound.
    """
    mu, s = 0.3, 0.1
    cond = torch.zeros(64, 1, 16, 16, dtype=torch.float64)
    x = sample(name, gaussian_denoiser(mu, s), cond, steps, torch.Generator().manual_seed(0), sigma_data=s)
    assert x.shape == (64, 1, 16, 16)
    assert abs(float(x.mean()) - mu) < 0.01
    assert abs(float(x.std()) / s - 1) < tolerance


def test_samplers_are_reproducible_and_seed_dependent():
    cond = torch.zeros(4, 1, 8, 8, dtype=torch.float64)
    den = gaussian_denoiser(0.0, 1.0)
    a = sample("ddpm", den, cond, 20, torch.Generator().manual_seed(1), 1.0)
    b = sample("ddpm", den, cond, 20, torch.Generator().manual_seed(1), 1.0)
    c = sample("ddpm", den, cond, 20, torch.Generator().manual_seed(2), 1.0)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_unknown_sampler_is_named():
    with pytest.raises(ValueError, match="unknown sampler 'euler'"):
        sample("euler", gaussian_denoiser(0, 1), torch.zeros(1, 1, 4, 4), 3, None, 1.0)


def test_schedules_decrease_to_zero_within_range():
    for sig in (karras_sigmas(10, 0.002, 80.0), cosine_sigmas(200, 0.5, 0.002, 80.0)):
        assert sig[-1] == 0 and (sig[:-1] > 0).all()
        assert (sig[1:] < sig[:-1]).all()
        assert float(sig[0]) <= 80.0 + 1e-9 and float(sig[-2]) >= 0.002 - 1e-12


def test_preconditioning_passes_clean_input_through_at_low_noise():
    torch.manual_seed(0)
    den = Denoiser(UNet(3, 1, (8, 8), noise_embedding=True), sigma_data=0.2)
    x = torch.randn(2, 1, 8, 8)
    cond = torch.randn(2, 2, 8, 8)
    out = den(x, torch.full((2,), 1e-6), cond)
    torch.testing.assert_close(out, x, atol=1e-5, rtol=0)


def test_edm_loss_is_lower_for_the_exact_denoiser_and_respects_the_mask():
    s = 0.2
    target = torch.randn(256, 1, 8, 8) * s
    cond = torch.zeros(256, 0, 8, 8)
    exact = edm_loss(gaussian_denoiser(0.0, s), target, cond, s, torch.Generator().manual_seed(0))
    identity = edm_loss(lambda x, sig, c: x, target, cond, s, torch.Generator().manual_seed(0))
    # EDM's weighting makes the loss of the optimal denoiser about 1 per pixel at most noise levels
    assert exact < identity and 0.3 < float(exact) < 1.5

    def only_top_half_right(x, sig, c):
        out = gaussian_denoiser(0.0, s)(x, sig, c)
        out[..., 4:, :] = 1e3  # wrong where the mask is 0
        return out

    mask = torch.zeros(256, 1, 8, 8)
    mask[..., :4, :] = 1
    masked = edm_loss(only_top_half_right, target, cond, s, torch.Generator().manual_seed(0), mask)
    assert math.isfinite(float(masked)) and float(masked) < 1.5
