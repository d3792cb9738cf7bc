"""The method: EDM diffusion of the residual, with or without the frozen transfer encoder.

One class serves both registry models: ``diffusion`` (the frozen transfer encoder's
features of the history days join the condition) and ``diffusion_no_transfer`` (the
ablation: the same denoiser, config, budget and inputs, without those features); the
spec's ``uses_encoder``, read from the registry, tells them apart.

The residual it generates is taken from one of two references (config ``diffusion.residual``):

* ``regression`` (the CorrDiff split, the default): a deterministic regression network
  predicts the conditional mean and the denoiser generates only fine(t) minus that
  prediction. The regression part is the registry entry's ``regression`` (the method's is
  ``transfer_unet``, the ablation's ``unet``), trained first by its own rule and frozen
  inside this model (``spec.regressor``; its weights travel in the model file). Training
  targets are teacher-forced: the regressor sees the true previous fine days, as in its own
  training. At sampling each member's day is the regression's prediction from that
  member's own history plus the sampled residual, so the ensemble mean inherits the
  regressor's skill and the members add spread and fine-scale texture.
* ``coarse``: the residual fine(t) - coarse(t); the ensemble mean must then learn the
  conditional mean itself.

Where both parts use the encoder they share it: its features are computed once per day
and member history, for both, never per solver step.

Sampling denoises whole-region images: at every solver step the current image is cut
into halo tiles, each tile is denoised with its own condition, and the tiles are blended
with Hann weights (:mod:`diffscale.method.tiling`) before the solver moves on, so
neighbouring tiles agree on one realisation and no seams appear.

Shapes: x, target (N, 1, P, P); sigma (N,); cond (N, C, P, P); samples (M, 1, H, W).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict

import torch
from torch import nn

from diffscale.core import registry
from diffscale.core.io import DataValidationError
from diffscale.method.edm import Denoiser, edm_loss, sample
from diffscale.method.networks.unet import UNet
from diffscale.method.residual import ResidualModel, ResidualSpec, model_class
from diffscale.method.tiling import Tiling

# What a regression part must share with the diffusion model it serves: the same days, crops and tiles.
SHARED_SPEC = ("history", "patch", "halo", "encoder_channels", "encoder_attention", "encoder_features", "static")


def check_regression_part(spec: ResidualSpec, regressor: ResidualModel | None, encoder: UNet | None = None) -> None:
    """ValueError unless ``regressor`` can be the regression part of a model of ``spec``.

    It must be the deterministic regressor ``spec.regressor`` names, built for the same
    history, patch, halo and encoder and, where it uses the encoder, trained with the
    weights of ``encoder`` (when given: the pretrained U-Net the model is built with).
    """
    if spec.regressor is None:
        if regressor is not None:
            raise ValueError(f"{spec.name} takes its residual from the coarse field: it has no regression part")
        return
    if regressor is None:
        raise ValueError(f"{spec.name} takes its residual from the prediction of '{spec.regressor}' "
                         "(diffusion.residual: regression): pass the trained regressor")
    if regressor.spec.name != spec.regressor or not regressor.deterministic:
        raise ValueError(f"the regression part of {spec.name} is '{spec.regressor}', not '{regressor.spec.name}'")
    differ = [k for k in SHARED_SPEC if getattr(regressor.spec, k) != getattr(spec, k)]
    if differ:
        raise ValueError(f"'{regressor.spec.name}' was built for other {', '.join(differ)} than {spec.name}: "
                         f"{[getattr(regressor.spec, k) for k in differ]} vs {[getattr(spec, k) for k in differ]}")
    if regressor.encoder is not None and encoder is not None:
        mine, given = regressor.encoder.unet.state_dict(), encoder.state_dict()
        if mine.keys() != given.keys() or any(not torch.equal(mine[k], given[k].to(mine[k].device)) for k in mine):
            raise ValueError(f"'{regressor.spec.name}' was trained with another transfer encoder than {spec.name}'s")


class DiffusionDownscaler(ResidualModel):
    """An EDM-preconditioned denoiser of the residual; spec.scale is its sigma_data.

    regressor: the trained regression part ``spec.regressor`` names (required then, frozen
    here; :func:`check_regression_part`); where both use the encoder, the regressor's is
    replaced by this model's.
    """

    def __init__(self, spec: ResidualSpec, encoder: UNet | None = None, regressor: ResidualModel | None = None):
        super().__init__(spec, encoder)
        net = UNet(1 + self.cond_channels, 1, tuple(spec.channels), spec.blocks, spec.attention,
                   noise_embedding=True, stem_kernel=1)
        self.denoiser = Denoiser(net, spec.scale)
        check_regression_part(spec, regressor, encoder)
        if regressor is not None:
            if regressor.encoder is not None and self.encoder is not None:
                regressor.encoder = self.encoder  # the same weights (checked when given): features computed once
            regressor.requires_grad_(False).eval()
        self.regressor = regressor

    def train(self, mode: bool = True) -> DiffusionDownscaler:
        super().train(mode)
        if self.regressor is not None:
            self.regressor.eval()  # frozen
        return self

    @property
    def factor(self) -> int:
        if self.regressor is None:
            return self.denoiser.net.factor
        return math.lcm(self.denoiser.net.factor, self.regressor.factor)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.denoiser(x, sigma, cond)

    def pixel_loss(self, net: nn.Module, raw: torch.Tensor, history: torch.Tensor, target: torch.Tensor,
                   generator: torch.Generator | None) -> torch.Tensor:
        return edm_loss(net, target, self.condition(raw, history), self.denoiser.sigma_data, generator)

    def residual(self, cond: torch.Tensor, tiling: Tiling, members: int, generator: torch.Generator | None,
                 sampler: str | None, steps: int | None) -> torch.Tensor:
        n = len(tiling.origins)
        stem = self.denoiser.condition_stem(cond)  # (N*M, C0, P, P): once, for every solver step

        def denoise(x: torch.Tensor, sigma: torch.Tensor, _cond: torch.Tensor) -> torch.Tensor:
            tiles = tiling.cut(x)  # (N, M, 1, P, P)
            out = self.denoiser(tiles.reshape(n * members, *tiles.shape[2:]), sigma.repeat(n), cond, cond_stem=stem)
            return tiling.stitch(out.reshape(tiles.shape))

        return sample(sampler, self.denoiser, cond, steps, generator, shape=(members, 1, tiling.height, tiling.width),
                      denoise=denoise)

    def reference_residual(self, raw: torch.Tensor, history: torch.Tensor, features: torch.Tensor | None,
                           tiling: Tiling, rows: int) -> torch.Tensor | None:
        """The regression part's residual from each row's history, its encoder features shared with the denoiser's."""
        if self.regressor is None:
            return None
        shared = features if self.regressor.encoder is self.encoder else None
        cond = self.regressor.condition(raw, history, shared)
        return self.regressor.residual(cond, tiling, rows, None, None, None)

    def provenance(self, sampler: str, steps: int) -> dict:
        return {"sampler": sampler, "sampler_steps": steps,
                "residual_from": f"{self.spec.regressor} prediction" if self.regressor is not None else "coarse field"}

    def saved_parts(self) -> dict:
        if self.regressor is None:
            return {}
        return {"regressor": {"model": self.regressor.spec.name, "spec": asdict(self.regressor.spec)}}

    @classmethod
    def build(cls, spec: ResidualSpec, saved: dict, path: str | os.PathLike) -> DiffusionDownscaler:
        """The networks of a saved model, its regression part included (the weights come from the file)."""
        if spec.regressor is None:
            return cls(spec)
        part = saved.get("regressor")
        if not isinstance(part, dict) or part.get("model") != spec.regressor:
            found = part.get("model") if isinstance(part, dict) else None
            raise DataValidationError(path, f"model {spec.name} takes its residual from '{spec.regressor}' but the file "
                                            f"holds {f'a {found!r}' if found else 'no'} regression part; retrain it")
        expected = registry.entry(spec.name).regression
        if spec.regressor != expected:
            raise DataValidationError(path, f"model {spec.name} was trained on the residual from '{spec.regressor}', "
                                            f"but its regression part is now '{expected}' (registry); retrain it")
        reg_spec = ResidualSpec.from_dict(part["spec"])
        regressor = model_class(spec.regressor)(reg_spec)
        return cls(spec, regressor=regressor)
