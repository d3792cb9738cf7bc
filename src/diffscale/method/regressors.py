"""The trained baselines: a deterministic U-Net, a conditional VAE and the transfer U-Net.

All three see what the diffusion model sees for day t (:mod:`diffscale.method.conditioning`:
the coarse field of t on the fine grid, elevation, position, season, and the fine field
of the previous ``history`` days), predict the same residual fine(t) - coarse(t), are
trained on the same crops (:class:`diffscale.method.diffusion.DiffusionTask`'s batches, halo
padding and mask) by the same loop, and sample whole regions through the same tiling
and the same teacher-forced / autoregressive drivers (:mod:`diffscale.method.sampling`). Only the
head and the loss differ:

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

Each baseline keeps the weights that scored best on the validation days (checked every
``checkpoint_every`` steps; the last ones when there are no validation days): with a
few dozen training days, the deterministic regressors overfit within the budget.

Targets are divided by ``scale`` (the training residuals' standard deviation), so the
networks work with unit-variance outputs, as the EDM-preconditioned denoiser does.

Shapes: raw (N, R, P, P); history (N, history, P, P); cond (N, C, P, P); target, pred (N, 1, P, P);
latent (N, latent_channels, P, P).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import torch
from torch import nn

from diffscale.method.conditioning import RAW_CHANNELS
from diffscale.method.diffusion import DiffusionTask, Downscaler, encoder_unet
from diffscale.core.io import atomic_path
from diffscale.method.networks.encoder import TransferEncoder
from diffscale.method.networks.unet import UNet
from diffscale.method.tiling import Tiling

KINDS = ("unet", "vae", "transfer_unet")


@dataclass(frozen=True)
class RegressorSpec:
    kind: str
    history: int
    patch: int
    halo: int
    encoder_channels: tuple[int, ...]
    encoder_attention: bool
    channels: tuple[int, ...]
    blocks: int
    attention: bool
    latent_channels: int = 4
    scale: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown baseline '{self.kind}' (expected one of {list(KINDS)})")


def mse_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error over the real (mask = 1) pixels."""
    err = (pred - target) ** 2
    if mask is None:
        return err.mean()
    return (err * mask).sum() / mask.expand_as(err).sum().clamp(min=1)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) summed over latent channels: (N, Z, P, P) -> (N, 1, P, P)."""
    return 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(dim=1, keepdim=True)


def elbo_loss(pred: torch.Tensor, target: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
              log_sigma: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Negative ELBO per real pixel (constant dropped): Gaussian NLL with scale exp(log_sigma) + KL to the prior."""
    nll = 0.5 * ((pred - target) / log_sigma.exp()) ** 2 + log_sigma
    per_pixel = nll + gaussian_kl(mu, logvar)
    if mask is None:
        return per_pixel.mean()
    return (per_pixel * mask).sum() / mask.expand_as(per_pixel).sum().clamp(min=1)


class Regressor(nn.Module):
    """One baseline of :data:`KINDS`; the same sampling interface as :class:`Downscaler`."""

    def __init__(self, spec: RegressorSpec, encoder: UNet | None = None):
        super().__init__()
        self.spec = spec
        if spec.kind == "transfer_unet":
            if encoder is None:
                encoder = encoder_unet(spec.history, spec.encoder_channels, spec.encoder_attention)
            self.encoder: TransferEncoder | None = TransferEncoder(encoder)
            cond = RAW_CHANNELS + self.encoder.feature_channels
        else:
            # unet and vae are trained end to end on the history days themselves: same information, no transfer.
            self.encoder, cond = None, RAW_CHANNELS + spec.history
        self.cond_channels = cond
        latent = spec.latent_channels if spec.kind == "vae" else 0
        self.net = UNet(cond + latent, 1, tuple(spec.channels), spec.blocks, spec.attention, stem_kernel=1)
        if spec.kind == "vae":
            # The posterior only guides training (sampling draws from the prior): half the
            # decoder's width keeps the vae's step cost near the other models'.
            half = tuple(max(1, c // 2) for c in spec.channels)
            self.posterior = UNet(1 + cond, 2 * latent, half, 1, attention=False, stem_kernel=1)
            self.log_sigma = nn.Parameter(torch.zeros(()))

    @property
    def deterministic(self) -> bool:
        return self.spec.kind != "vae"

    @property
    def factor(self) -> int:
        return self.net.factor

    def condition(self, raw: torch.Tensor, history: torch.Tensor) -> torch.Tensor:
        """(N, R, P, P) + (N, history, P, P) -> (N, C, P, P)."""
        if history is None:
            raise ValueError("the baselines condition on the previous days: pass (N, history, P, P)")
        feats = self.encoder(history) if self.encoder is not None else history
        return torch.cat([raw, feats], dim=1)

    def forward(self, cond: torch.Tensor, latent: torch.Tensor | None = None) -> torch.Tensor:
        """Predicted residual in units of ``scale``; the VAE decodes ``latent``."""
        if self.spec.kind == "vae":
            if latent is None:
                raise ValueError("the vae decodes a latent: pass (N, latent_channels, P, P)")
            cond = torch.cat([cond, latent], dim=1)
        return self.net(cond)

    def encode(self, target: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The VAE posterior q(z | target, cond): (mu, logvar), each (N, Z, P, P)."""
        mu, logvar = self.posterior(torch.cat([target, cond], dim=1)).chunk(2, dim=1)
        return mu, logvar.clamp(-10, 10)

    def training_loss(self, raw: torch.Tensor, history: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                      generator: torch.Generator | None = None) -> torch.Tensor:
        cond = self.condition(raw, history)
        target = target / self.spec.scale
        if self.spec.kind != "vae":
            return mse_loss(self(cond), target, mask)
        mu, logvar = self.encode(target, cond)
        eps = torch.randn(mu.shape, generator=generator).to(mu.device)
        z = mu + (0.5 * logvar).exp() * eps
        return elbo_loss(self(cond, z), target, mu, logvar, self.log_sigma, mask)

    @torch.no_grad()
    def sample_day(self, raw: torch.Tensor, history: torch.Tensor | None, members: int, sampler: str | None = None,
                   steps: int | None = None, generator: torch.Generator | None = None, tile: int | None = None,
                   stride: int | None = None) -> torch.Tensor:
        """(R, H, W) raw condition and (1 or M, history, H, W) history -> (M, H, W) scaled fine field.

        Deterministic kinds return one member whatever ``members`` asks; sampler and steps
        are the diffusion model's and are ignored (the call matches Downscaler.sample_day).
        """
        members = 1 if self.deterministic else members
        dev = next(self.net.parameters()).device
        raw, history = raw.to(dev), history.to(dev)
        h, w = raw.shape[-2:]
        tile = tile or self.spec.patch
        if tile % self.factor:
            raise ValueError(f"sampling tile {tile} must be a multiple of {self.factor}")
        tiling = Tiling(h, w, tile, self.spec.halo, stride)
        n = len(tiling.origins)
        raw_t = tiling.cut(raw)[:, None].expand(n, members, *raw.shape[:-2], tile, tile)
        hist_t = tiling.cut(history[:members])  # (N, 1 or M, history, P, P)
        hist_t = hist_t.expand(n, members, *hist_t.shape[2:])
        cond = self.condition(raw_t.reshape(n * members, *raw_t.shape[2:]), hist_t.reshape(n * members, *hist_t.shape[2:]))
        latent = None
        if self.spec.kind == "vae":
            z = torch.randn((members, self.spec.latent_channels, h, w), generator=generator).to(dev)
            latent = tiling.cut(z).reshape(n * members, self.spec.latent_channels, tile, tile)
        out = self(cond, latent) * self.spec.scale  # (N*M, 1, P, P)
        residual = tiling.stitch(out.reshape(n, members, 1, tile, tile))  # (M, 1, H, W)
        return (raw[0][None] + residual[:, 0]).cpu()  # channel 0 of the raw condition is the coarse field

    def save(self, path: str | os.PathLike, extra: dict | None = None) -> None:
        with atomic_path(path) as tmp:
            torch.save({"spec": asdict(self.spec), "state": self.state_dict(), **(extra or {})}, tmp)

    @staticmethod
    def load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> "Regressor":
        state = torch.load(path, map_location=map_location, weights_only=False)
        spec = RegressorSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in state["spec"].items()})
        model = Regressor(spec)
        model.load_state_dict(state["state"])
        return model.eval()


def load_model(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Downscaler | Regressor:
    """A saved diffusion model or baseline, told apart by its spec."""
    state = torch.load(path, map_location=map_location, weights_only=False)
    if "kind" in state.get("spec", {}):
        return Regressor.load(path, map_location)
    return Downscaler.load(path, map_location)


class RegressionTask(DiffusionTask):
    """The diffusion model's crops (raw, history, residual target, mask); the baseline's own loss."""

    def loss(self, net: nn.Module, batch: tuple[torch.Tensor, ...], gen: torch.Generator | None) -> torch.Tensor:
        # Baselines train in one process (train_baseline has no torchrun path), so calling
        # the unwrapped model skips no gradient synchronisation.
        inner = net.module if isinstance(net, nn.parallel.DistributedDataParallel) else net
        return inner.training_loss(*batch, generator=gen)
