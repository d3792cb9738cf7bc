"""EDM preconditioning and the samplers, checked against an exactly known denoiser."""

import math

import pytest
import torch
from torch import nn

from diffscale.method.edm import Denoiser, cosine_sigmas, edm_loss, karras_sigmas, nfe, sample
from diffscale.method.networks.unet import UNet
from diffscale.method.tasks import masked_mean

torch.set_num_threads(1)


def gaussian_denoiser(mu: float, s: float):
    """The exact E[x0 | x] for x0 ~ N(mu, s^2) per pixel and x = x0 + sigma n."""
    def denoise(x, sigma, cond):
        sig = sigma.double().reshape(-1, 1, 1, 1)
        return (mu + s**2 / (s**2 + sig**2) * (x.double() - mu)).to(x.dtype)
    return denoise


def preconditioner(sigma_data: float) -> Denoiser:
    """A preconditioner for its noise range only (the samplers read sigma_min/sigma_max from it)."""
    return Denoiser(nn.Identity(), sigma_data)


@pytest.mark.parametrize("name,steps,tolerance", [("ddpm", 200, 0.05), ("dpmpp", 50, 0.03), ("dpmpp", 10, 0.2), ("dpmpp", 6, 0.2)])
def test_samplers_draw_the_data_distribution(name, steps, tolerance):
    """Exact denoiser of N(mu, s^2): samples have its mean and, up to the solver's error, its spread.

    A few-step ODE solver over-disperses this Gaussian by ~15% (measured), hence the looser bound.
    """
    mu, s = 0.3, 0.1
    cond = torch.zeros(64, 1, 16, 16, dtype=torch.float64)
    x = sample(name, preconditioner(s), cond, steps, torch.Generator().manual_seed(0), denoise=gaussian_denoiser(mu, s))
    assert x.shape == (64, 1, 16, 16)
    assert abs(float(x.mean()) - mu) < 0.01
    assert abs(float(x.std()) / s - 1) < tolerance


def test_samplers_are_reproducible_and_seed_dependent():
    cond = torch.zeros(4, 1, 8, 8, dtype=torch.float64)
    den, net = gaussian_denoiser(0.0, 1.0), preconditioner(1.0)
    a = sample("ddpm", net, cond, 20, torch.Generator().manual_seed(1), denoise=den)
    b = sample("ddpm", net, cond, 20, torch.Generator().manual_seed(1), denoise=den)
    c = sample("ddpm", net, cond, 20, torch.Generator().manual_seed(2), denoise=den)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_unknown_sampler_is_named():
    with pytest.raises(ValueError, match="unknown sampler 'euler'"):
        sample("euler", preconditioner(1.0), torch.zeros(1, 1, 4, 4), 3, None, denoise=gaussian_denoiser(0, 1))


def test_samplers_take_the_noise_range_from_the_preconditioner():
    """sigma_min/sigma_max are the preconditioner's (EDM's 0.002/80 at sigma_data 0.5); the samplers start at sigma_max."""
    net = preconditioner(0.5)
    assert (net.sigma_min, net.sigma_max) == (0.004 * 0.5, 160.0 * 0.5)
    seen = []

    def record(x, sigma, cond):
        seen.append(float(sigma[0]))
        return torch.zeros_like(x)

    for name in ("dpmpp", "ddpm"):
        seen.clear()
        sample(name, net, torch.zeros(1, 1, 4, 4), 8, torch.Generator().manual_seed(0), denoise=record)
        assert seen[0] == pytest.approx(net.sigma_max) and min(seen) >= net.sigma_min - 1e-12
        assert len(seen) == nfe(name, 8, net)
    net.sigma_max = 10.0  # a narrower range is followed
    seen.clear()
    sample("dpmpp", net, torch.zeros(1, 1, 4, 4), 8, torch.Generator().manual_seed(0), denoise=record)
    assert seen[0] == pytest.approx(10.0)


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
    assert exact.shape == target.shape  # per pixel; the training task reduces it
    exact, identity = masked_mean(exact), masked_mean(identity)
    # EDM's weighting makes the loss of the optimal denoiser about 1 per pixel at most noise levels
    assert exact < identity and 0.3 < float(exact) < 1.5

    def only_top_half_right(x, sig, c):
        out = gaussian_denoiser(0.0, s)(x, sig, c)
        out[..., 4:, :] = 1e3  # wrong where the mask is 0
        return out

    mask = torch.zeros(256, 1, 8, 8)
    mask[..., :4, :] = 1
    masked = masked_mean(edm_loss(only_top_half_right, target, cond, s, torch.Generator().manual_seed(0)), mask)
    assert math.isfinite(float(masked)) and float(masked) < 1.5


@pytest.mark.parametrize("stem_kernel", [1, 3])
def test_a_precomputed_condition_stem_gives_the_denoisers_output(stem_kernel):
    # Sampling convolves the condition once per day and reuses it at every solver step: the
    # denoiser must give what it gives when the condition is concatenated at each call.
    torch.manual_seed(0)
    d = Denoiser(UNet(1 + 9, 1, (4, 8), noise_embedding=True, stem_kernel=stem_kernel), 0.3).eval()
    x, cond, sigma = torch.randn(5, 1, 16, 16), torch.randn(5, 9, 16, 16), torch.rand(5) + 0.1
    with torch.no_grad():
        whole = d(x, sigma, cond)
        stem = d.condition_stem(cond)
        split = d(x, sigma, torch.empty(0), cond_stem=stem)
    assert stem.shape == (5, 4, 16, 16)
    torch.testing.assert_close(split, whole, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(d(x, sigma, cond, cond_stem=d.condition_stem(cond.flip(0))), whole, atol=1e-3)
