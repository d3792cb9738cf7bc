"""Conditional diffusion: EDM preconditioning and loss, and two samplers.

Formulation: EDM (Karras et al. 2022, "Elucidating the design space of diffusion-based
generative models"). The network F is wrapped as a denoiser

    D(x; sigma, cond) = c_skip(sigma) x + c_out(sigma) F(c_in(sigma) x, cond; c_noise(sigma))

so its inputs and targets have unit variance at every noise level, and trained with
the EDM loss (log-normal noise levels, weight (sigma^2 + sigma_data^2) / (sigma sigma_data)^2).
Why EDM rather than the paper's x0-prediction DDPM: it is the same model class
(D is an x0-predictor, and the DDPM posterior is one of its samplers, below), but the
preconditioning removes the need to tune a discrete schedule for training, trains
well in few steps (the demo has a CPU minute per model), and lets one trained network
be sampled by the paper's ancestral DDPM and by a fast ODE solver alike.

All noise levels are expressed relative to ``sigma_data``, the standard deviation of
the training targets: EDM's published defaults are for sigma_data = 0.5, and we scale
them with it (sigma_min = 0.004 sigma_data, sigma_max = 160 sigma_data, P_mean shifted
by ln(2 sigma_data)); the preconditioner holds that range and the samplers read it
from there (as EDM's generate.py reads ``net.sigma_min``). Samplers are plain functions
of (preconditioner, denoise function, cond, steps, generator); an ensemble of M members
is one batch of M copies of the condition. The loss returns per-pixel values; the
training task reduces them (EDM's training/loss.py and training_loop.py split it so).

Shapes: x, targets (B, 1, H, W); cond (B, C, H, W); sigma (B,).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol

import torch
from torch import nn

from diffscale.method.networks.unet import UNet

DenoiseFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]  # (x, sigma, cond) -> x0


# EDM's published range (0.002, 80) is for sigma_data = 0.5: these are the same levels relative to sigma_data.
SIGMA_MIN, SIGMA_MAX = 0.004, 160.0


class Denoiser(nn.Module):
    """EDM preconditioning around a UNet built with ``noise_embedding=True`` and 1 + C input channels.

    Holds the noise range the samplers use (``sigma_min``, ``sigma_max``), as EDM's
    preconditioners do: python floats derived from the python ``sigma_data``.
    """

    def __init__(self, net: UNet, sigma_data: float):
        super().__init__()
        self.net = net
        self.sigma_data = float(sigma_data)
        self.sigma_min = SIGMA_MIN * self.sigma_data
        self.sigma_max = SIGMA_MAX * self.sigma_data
        # In the coefficients sigma_data is a float32 tensor, as the network was always trained
        # (a python float rounds differently); not saved: the spec rebuilds it.
        self.register_buffer("sigma_data_f32", torch.tensor(self.sigma_data, dtype=torch.float32), persistent=False)

    def condition_stem(self, cond: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) cond -> (B, channels[0], H, W): its share of the network's input convolution.

        The solver steps of one sample share the condition; passed to :meth:`forward` as
        ``cond_stem`` it is convolved once, not concatenated and convolved at every step.
        """
        return self.net.input_response(cond, first=1)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor,
                cond_stem: torch.Tensor | None = None) -> torch.Tensor:
        """cond_stem: :meth:`condition_stem` of ``cond``, when the caller has it (cond is then not read)."""
        sd = self.sigma_data_f32
        s = sigma.to(x.dtype).reshape(-1, 1, 1, 1)
        c_skip = sd**2 / (s**2 + sd**2)
        c_out = s * sd / (s**2 + sd**2).sqrt()
        c_in = 1.0 / (s**2 + sd**2).sqrt()
        c_noise = sigma.log() / 4
        if cond_stem is None:
            f = self.net(torch.cat([c_in * x, cond], dim=1), c_noise)
        else:
            f = self.net(c_in * x, c_noise, stem=cond_stem)
        return c_skip * x + c_out * f.to(x.dtype)


def edm_loss(denoiser: DenoiseFn, target: torch.Tensor, cond: torch.Tensor, sigma_data: float,
             generator: torch.Generator | None = None, p_mean: float = -1.2, p_std: float = 1.2) -> torch.Tensor:
    """EDM loss per pixel, (B, 1, H, W): noise levels log-normal around sigma_data-relative P_mean.

    The caller reduces it (over real pixels only: :func:`diffscale.method.tasks.masked_mean`).
    """
    sd = float(sigma_data)
    b = target.shape[0]
    z = torch.randn(b, generator=generator)
    sigma = torch.exp(p_mean + math.log(2 * sd) + p_std * z)  # (B,)
    noise = torch.randn(target.shape, generator=generator) * sigma.reshape(-1, 1, 1, 1)
    weight = (sigma**2 + sd**2) / (sigma * sd) ** 2
    sigma, noise = sigma.to(target.device), noise.to(target.device)
    denoised = denoiser(target + noise, sigma, cond)
    return weight.to(target.device).reshape(-1, 1, 1, 1) * (denoised - target) ** 2


def karras_sigmas(steps: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> torch.Tensor:
    """EDM's noise levels, (steps + 1,), decreasing, the last one 0."""
    ramp = torch.linspace(0, 1, steps, dtype=torch.float64)
    sig = (sigma_max ** (1 / rho) + ramp * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    return torch.cat([sig, torch.zeros(1, dtype=torch.float64)])


def cosine_sigmas(steps: int, sigma_data: float, sigma_min: float, sigma_max: float, s: float = 0.008) -> torch.Tensor:
    """The cosine schedule (Nichol & Dhariwal 2021) of a DDPM in EDM units, (steps + 1,), the last one 0.

    A VP-DDPM state x_t = sqrt(ab) x0 + sqrt(1 - ab) eps is x0 + sigma eps after division by
    sqrt(ab), sigma = sqrt((1 - ab) / ab); DDPM data are scaled to about [-1, 1] (std ~0.5),
    so sigma is multiplied by 2 sigma_data to carry the schedule over to our data's scale.
    """
    t = torch.linspace(1, 0, steps + 1, dtype=torch.float64)[:-1]
    ab = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    sig = (2 * sigma_data * ((1 - ab) / ab.clamp(min=1e-12)).sqrt()).clamp(sigma_min, sigma_max)
    # The first levels of the cosine schedule lie above sigma_max (pure noise); clamped, they
    # would repeat and cost evaluations that change nothing.
    return torch.cat([torch.unique_consecutive(sig), torch.zeros(1, dtype=torch.float64)])


class NoiseRange(Protocol):
    """What a sampler reads from the preconditioner (:class:`Denoiser`)."""

    sigma_data: float
    sigma_min: float
    sigma_max: float


def _start(cond: torch.Tensor, sigma0: float, generator: torch.Generator | None,
           shape: tuple[int, ...] | None) -> torch.Tensor:
    shape = shape or (cond.shape[0], 1, *cond.shape[-2:])
    return torch.randn(shape, generator=generator, dtype=torch.float64).to(cond.device) * sigma0


@torch.no_grad()
def sample_ddpm(net: NoiseRange, denoise: DenoiseFn, cond: torch.Tensor, steps: int = 200,
                generator: torch.Generator | None = None, shape: tuple[int, ...] | None = None) -> torch.Tensor:
    """The paper's ancestral DDPM sampler on the cosine schedule; NFE <= steps. Returns (B, 1, H, W).

    Each step draws from the DDPM posterior q(x_s | x_t, x0 = D(x_t)), which in EDM
    units is N(x0 + (s^2/t^2)(x_t - x0), s^2 (1 - s^2/t^2)).
    """
    sigmas = cosine_sigmas(steps, net.sigma_data, net.sigma_min, net.sigma_max)
    x = _start(cond, float(sigmas[0]), generator, shape)
    for t, s in zip(sigmas[:-1], sigmas[1:]):
        x0 = denoise(x.to(cond.dtype), torch.full((x.shape[0],), float(t), device=cond.device), cond).double()
        ratio = (s / t) ** 2
        x = x0 + ratio * (x - x0)
        if s > 0:
            noise = torch.randn(x.shape, generator=generator, dtype=torch.float64).to(x.device)
            x = x + s * (1 - ratio).sqrt() * noise
    return x.to(cond.dtype)


@torch.no_grad()
def sample_dpmpp(net: NoiseRange, denoise: DenoiseFn, cond: torch.Tensor, steps: int = 10,
                 generator: torch.Generator | None = None, shape: tuple[int, ...] | None = None) -> torch.Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022) on EDM's noise levels; deterministic given the start; NFE = steps."""
    sigmas = karras_sigmas(steps, net.sigma_min, net.sigma_max)
    x = _start(cond, float(sigmas[0]), generator, shape)
    old = None
    for i in range(steps):
        sigma, nxt = sigmas[i], sigmas[i + 1]
        x0 = denoise(x.to(cond.dtype), torch.full((x.shape[0],), float(sigma), device=cond.device), cond).double()
        if nxt == 0:
            x = x0
            break
        h = math.log(sigma / nxt)  # step in lambda = -ln(sigma)
        if old is not None:
            r = math.log(sigmas[i - 1] / sigma) / h
            x0_mix = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * old
        else:
            x0_mix = x0
        x = (nxt / sigma) * x + (1 - nxt / sigma) * x0_mix
        old = x0
    return x.to(cond.dtype)


SAMPLERS: dict[str, Callable[..., torch.Tensor]] = {"ddpm": sample_ddpm, "dpmpp": sample_dpmpp}


def sample(name: str, net: NoiseRange, cond: torch.Tensor, steps: int, generator: torch.Generator | None,
           shape: tuple[int, ...] | None = None, denoise: DenoiseFn | None = None) -> torch.Tensor:
    """Dispatch by sampler name; the noise range is the preconditioner's (``net.sigma_min``, ``net.sigma_max``).

    denoise: the function evaluated at each step, (x, sigma, cond) -> x0 (default ``net``
    itself; a tiled whole-region denoiser passes its own); shape: of the sample when it
    differs from (B, 1, H, W) of cond.
    """
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler '{name}' (expected one of {sorted(SAMPLERS)})")
    return SAMPLERS[name](net, denoise or net, cond, steps, generator, shape)


def nfe(name: str, steps: int, net: NoiseRange) -> int:
    """Denoiser evaluations one sample of ``name`` with ``steps`` steps costs."""
    if name == "ddpm":
        return len(cosine_sigmas(steps, net.sigma_data, net.sigma_min, net.sigma_max)) - 1
    return steps
