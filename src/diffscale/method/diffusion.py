"""The method: conditional EDM diffusion of the residual, with or without the frozen transfer encoder.

One class serves both registry models: ``diffusion`` (the frozen transfer encoder's
features of the history days join the condition) and ``diffusion_no_transfer`` (the
ablation: the same denoiser, config, budget and inputs, without those features); the
spec's ``uses_encoder``, read from the registry, tells them apart.

Sampling denoises whole-region images: at every solver step the current image is cut
into halo tiles, each tile is denoised with its own condition, and the tiles are blended
with Hann weights (:mod:`diffscale.method.tiling`) before the solver moves on, so
neighbouring tiles agree on one realisation and no seams appear.

Shapes: x, target (N, 1, P, P); sigma (N,); cond (N, C, P, P); samples (M, 1, H, W).
"""

from __future__ import annotations

import torch
from torch import nn

from diffscale.method.edm import Denoiser, edm_loss, sample
from diffscale.method.networks.unet import UNet
from diffscale.method.residual import ResidualModel, ResidualSpec
from diffscale.method.tiling import Tiling


class DiffusionDownscaler(ResidualModel):
    """An EDM-preconditioned denoiser of the residual; spec.scale is its sigma_data."""

    def __init__(self, spec: ResidualSpec, encoder: UNet | None = None):
        super().__init__(spec, encoder)
        net = UNet(1 + self.cond_channels, 1, tuple(spec.channels), spec.blocks, spec.attention,
                   noise_embedding=True, stem_kernel=1)
        self.denoiser = Denoiser(net, spec.scale)

    @property
    def factor(self) -> int:
        return self.denoiser.net.factor

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.denoiser(x, sigma, cond)

    def pixel_loss(self, net: nn.Module, raw: torch.Tensor, history: torch.Tensor, target: torch.Tensor,
                   generator: torch.Generator | None) -> torch.Tensor:
        return edm_loss(net, target, self.condition(raw, history), self.denoiser.sigma_data, generator)

    def residual(self, cond: torch.Tensor, tiling: Tiling, members: int, generator: torch.Generator | None,
                 sampler: str | None, steps: int | None) -> torch.Tensor:
        n = len(tiling.origins)

        def denoise(x: torch.Tensor, sigma: torch.Tensor, _cond: torch.Tensor) -> torch.Tensor:
            tiles = tiling.cut(x)  # (N, M, 1, P, P)
            out = self.denoiser(tiles.reshape(n * members, *tiles.shape[2:]), sigma.repeat(n), cond)
            return tiling.stitch(out.reshape(tiles.shape))

        return sample(sampler, self.denoiser, cond, steps, generator, shape=(members, 1, tiling.height, tiling.width),
                      denoise=denoise)

    def provenance(self, sampler: str, steps: int) -> dict:
        return {"sampler": sampler, "sampler_steps": steps}
