"""The trained baselines: a deterministic U-Net, the transfer U-Net and a conditional VAE.

All three see what the diffusion model sees for day t and predict the same residual
(:class:`diffscale.method.residual.ResidualModel`), are trained on the same crops by the
same task and loop, and sample whole regions through the same tiling and drivers. Only
the head and the loss differ:

* ``unet``: the project's U-Net on [raw condition, history days], MSE loss, so it
  estimates the conditional mean; one member.
* ``transfer_unet``: the frozen transfer encoder's features of the history days (the
  method's own conditioning) decoded by a deterministic U-Net, MSE loss; the earlier
  transfer-learning downscaler (ASDMTE-like); one member.
* ``vae``: a conditional VAE with a per-pixel latent (``latent_channels``): a posterior
  U-Net q(z | target, condition) of half the width, a decoder U-Net p(target | z, condition) with a learned
  global noise scale (the sigma-VAE of Rybkin et al. 2021: the ELBO then needs no
  hand-set KL weight) and prior N(0, I). Members are decoder outputs for latents drawn
  from the prior; the latent is drawn once per member over the whole region and cut
  into the same tiles as the condition, so overlapping tiles decode the same latent.

Targets are divided by ``spec.scale`` (the training residuals' standard deviation), so the
networks work with unit-variance outputs, as the EDM-preconditioned denoiser does.

Shapes: cond (N, C, P, P); target, pred (N, 1, P, P); latent (N, latent_channels, P, P);
per-pixel losses (N, 1, P, P).
"""

from __future__ import annotations

import torch
from torch import nn

from diffscale.method.networks.unet import UNet
from diffscale.method.residual import ResidualModel, ResidualSpec
from diffscale.method.tiling import Tiling


def mse_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared error per pixel."""
    return (pred - target) ** 2


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) summed over latent channels: (N, Z, P, P) -> (N, 1, P, P)."""
    return 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(dim=1, keepdim=True)


def elbo_loss(pred: torch.Tensor, target: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
              log_sigma: torch.Tensor) -> torch.Tensor:
    """Negative ELBO per pixel (constant dropped): Gaussian NLL with scale exp(log_sigma) + KL to the prior."""
    nll = 0.5 * ((pred - target) / log_sigma.exp()) ** 2 + log_sigma
    return nll + gaussian_kl(mu, logvar)


class UNetRegressor(ResidualModel):
    """``unet``: residual / scale from the condition by one U-Net; MSE."""

    deterministic = True

    def __init__(self, spec: ResidualSpec, encoder: UNet | None = None, extra_inputs: int = 0):
        super().__init__(spec, encoder)
        self.net = UNet(self.cond_channels + extra_inputs, 1, tuple(spec.channels), spec.blocks, spec.attention,
                        stem_kernel=1)

    @property
    def factor(self) -> int:
        return self.net.factor

    def forward(self, cond: torch.Tensor, latent: torch.Tensor | None = None) -> torch.Tensor:
        """Predicted residual in units of ``scale``."""
        return self.net(cond)

    def pixel_loss(self, net: nn.Module, raw: torch.Tensor, history: torch.Tensor, target: torch.Tensor,
                   generator: torch.Generator | None) -> torch.Tensor:
        return mse_loss(net(self.condition(raw, history)), target / self.spec.scale)

    def latents(self, tiling: Tiling, members: int, generator: torch.Generator | None) -> torch.Tensor | None:
        """(N*M, Z, P, P) tile-major latents to decode; None for a deterministic head."""
        return None

    def residual(self, cond: torch.Tensor, tiling: Tiling, members: int, generator: torch.Generator | None,
                 sampler: str | None, steps: int | None) -> torch.Tensor:
        out = self(cond, self.latents(tiling, members, generator)) * self.spec.scale  # (N*M, 1, P, P)
        return tiling.stitch(out.reshape(len(tiling.origins), members, 1, tiling.tile, tiling.tile))

    def provenance(self, sampler: str, steps: int) -> dict:
        return {"sampler": "none (deterministic)"}


class TransferUNetRegressor(UNetRegressor):
    """``transfer_unet``: the U-Net sees the history days only through the frozen encoder's features."""

    keeps_days = False


class VAERegressor(UNetRegressor):
    """``vae``: the U-Net decodes a per-pixel latent; trained by the sigma-VAE's ELBO."""

    deterministic = False

    def __init__(self, spec: ResidualSpec, encoder: UNet | None = None):
        super().__init__(spec, encoder, extra_inputs=spec.latent_channels)
        # The posterior only guides training (sampling draws from the prior): half the
        # decoder's width keeps the vae's step cost near the other models'.
        half = tuple(max(1, c // 2) for c in spec.channels)
        self.posterior = UNet(1 + self.cond_channels, 2 * spec.latent_channels, half, 1, attention=False, stem_kernel=1)
        self.log_sigma = nn.Parameter(torch.zeros(()))

    def forward(self, cond: torch.Tensor, latent: torch.Tensor | None = None) -> torch.Tensor:
        """The decoder: residual in units of ``scale`` for ``latent``."""
        if latent is None:
            raise ValueError("the vae decodes a latent: pass (N, latent_channels, P, P)")
        return self.net(torch.cat([cond, latent], dim=1))

    def encode(self, target: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The posterior q(z | target, cond): (mu, logvar), each (N, Z, P, P)."""
        mu, logvar = self.posterior(torch.cat([target, cond], dim=1)).chunk(2, dim=1)
        return mu, logvar.clamp(-10, 10)

    def pixel_loss(self, net: nn.Module, raw: torch.Tensor, history: torch.Tensor, target: torch.Tensor,
                   generator: torch.Generator | None) -> torch.Tensor:
        cond = self.condition(raw, history)
        target = target / self.spec.scale
        mu, logvar = self.encode(target, cond)
        eps = torch.randn(mu.shape, generator=generator).to(mu.device)
        z = mu + (0.5 * logvar).exp() * eps
        return elbo_loss(net(cond, z), target, mu, logvar, self.log_sigma)

    def latents(self, tiling: Tiling, members: int, generator: torch.Generator | None) -> torch.Tensor:
        # One latent per member over the whole region, cut like the condition: overlapping tiles decode the same z.
        z = torch.randn((members, self.spec.latent_channels, tiling.height, tiling.width), generator=generator)
        z = z.to(next(self.parameters()).device)
        return tiling.cut(z).reshape(len(tiling.origins) * members, self.spec.latent_channels, tiling.tile, tiling.tile)

    def provenance(self, sampler: str, steps: int) -> dict:
        return {"sampler": "latent drawn from N(0, I) per member"}
