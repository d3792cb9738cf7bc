"""What every trained downscaler shares: the residual target, its conditioning, tiled sampling, files.

Every trained model of :mod:`diffscale.core.registry` predicts the *residual*
fine(t) - reference(t) of a day t from the same inputs (:mod:`diffscale.method.conditioning`).
The reference is the coarse field of day t on the fine grid, except for a diffusion model
with a regression part (``spec.regressor``, config ``diffusion.residual: regression``):
its reference is that frozen regressor's prediction of day t
(:class:`diffscale.method.diffusion.DiffusionDownscaler`). Every model sees
the raw condition of day t (coarse field, static channels, season) and the fine fields of
the previous ``history`` days, plus, where the registry says the model uses the encoder,
the frozen transfer encoder's features of those days. A subclass says only what differs:

* its network head (built in ``__init__``, after the encoder, so the initial weights
  come from the same random draws whatever the subclass);
* :meth:`ResidualModel.pixel_loss`, its per-pixel training loss (the training task
  reduces it over the real pixels, :func:`diffscale.method.tasks.masked_mean`);
* :meth:`ResidualModel.residual`, how the tiles of one day become the whole-region
  residual: the denoiser run by a sampler, one forward pass, or decoding latents;
* :meth:`ResidualModel.reference_residual`, the reference's departure from the coarse
  field (none but for the split diffusion model).

Whole regions are sampled in halo tiles (:mod:`diffscale.method.tiling`): the day's
condition is cut into ``tile`` tiles, every member of every tile is one row of a batch
(tile-major), and the subclass stitches its prediction back with Hann weights.

Shapes: raw condition (R, H, W); history (M or 1, history, H, W); samples (M, H, W), scaled;
batches: raw (N, R, P, P), history (N, history, P, P), cond (N, C, P, P).
"""

from __future__ import annotations

import importlib
import os
from dataclasses import asdict, dataclass, replace

import torch
from torch import nn
from torch.profiler import record_function

from diffscale.core import registry
from diffscale.core.io import atomic_path
from diffscale.method.conditioning import raw_channels
from diffscale.method.networks.encoder import TransferEncoder, encoder_unet
from diffscale.method.networks.unet import UNet
from diffscale.method.tiling import Tiling, tiling_of


@dataclass(frozen=True)
class ResidualSpec:
    """Everything that rebuilds a model's networks; saved with its weights."""

    name: str  # the registry's model name: which class load_model builds
    history: int
    patch: int
    halo: int
    encoder_channels: tuple[int, ...]
    encoder_attention: bool
    channels: tuple[int, ...]
    blocks: int
    attention: bool
    uses_encoder: bool
    # Standard deviation of the training residuals on real pixels: EDM's sigma_data for the
    # diffusion model, the regressors' output unit (their networks predict residual / scale).
    scale: float = 1.0
    latent_channels: int = 4  # the vae's per-pixel latent
    # A diffusion model's regression part (registry name) whose prediction its residual is
    # taken from; None: the residual from the coarse field.
    regressor: str | None = None
    # The static fields of the raw condition, in channel order (the split's); model files
    # written before they were recorded were all trained with elevation.
    static: tuple[str, ...] = ("elevation",)
    # Which encoder outputs the model receives (encoder.features); files written before the
    # choice existed received every level.
    encoder_features: str = "levels"

    @classmethod
    def from_config(cls, name: str, enc: dict, cfg: dict, halo: int, scale: float = 1.0,
                    static: tuple[str, ...] = ("elevation",)) -> ResidualSpec:
        """The spec of model ``name`` from the config's ``encoder`` section and its own (diffusion or resolved baselines).

        A diffusion section without ``residual`` takes the schema's default, ``regression``.
        static: the static fields it conditions on (:func:`diffscale.data.split.static_fields`).
        """
        entry = registry.entry(name)
        regressor = registry.regression(name, cfg.get("residual", "regression")) if entry.family == "diffusion" else None
        return cls(name=name, history=enc["history"], patch=enc["patch"], halo=halo,
                   encoder_channels=tuple(enc["channels"]), encoder_attention=enc["attention"],
                   channels=tuple(cfg["channels"]), blocks=cfg["blocks"], attention=cfg["attention"],
                   uses_encoder=entry.uses_encoder, scale=scale,
                   latent_channels=cfg.get("latent_channels", 4), regressor=regressor, static=tuple(static),
                   encoder_features=enc.get("features", "levels"))

    @classmethod
    def from_dict(cls, saved: dict) -> ResidualSpec:
        """The spec a model file holds (``asdict`` of it; lists back to tuples)."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in saved.items()})


class ResidualModel(nn.Module):
    """Base of the trained models: spec, conditioning, tiled ``sample_day``, ``save`` / ``load``."""

    deterministic = False  # True: one member whatever ``members`` asks
    keeps_days = True  # the condition holds the history days themselves, not only the encoder's features of them
    path: str | None = None  # the file it was loaded from (load_model), for errors that name it

    def __init__(self, spec: ResidualSpec, encoder: UNet | None = None):
        super().__init__()
        self.spec = spec
        if spec.uses_encoder:
            if encoder is None:  # a saved model: the weights come from its state
                encoder = encoder_unet(spec.history, spec.encoder_channels, spec.encoder_attention)
            self.encoder: TransferEncoder | None = TransferEncoder(encoder, spec.encoder_features)
        else:
            self.encoder = None

    @property
    def cond_channels(self) -> int:
        """C of :meth:`condition`."""
        days = self.spec.history if self.encoder is None or self.keeps_days else 0
        return raw_channels(self.spec.static) + days + (self.encoder.feature_channels if self.encoder is not None else 0)

    @property
    def factor(self) -> int:
        """Tile sides must be multiples of this (the head's U-Net levels)."""
        raise NotImplementedError

    def features(self, history: torch.Tensor) -> torch.Tensor | None:
        """The frozen encoder's features (N, F, P, P) of (N, history, P, P) days; None without an encoder."""
        return self.encoder(history) if self.encoder is not None else None

    def condition(self, raw: torch.Tensor, history: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        """(N, R, P, P) raw condition + (N, history, P, P) history days -> (N, C, P, P).

        features: :meth:`features` of ``history`` when already computed (sampling computes
        them once per day and shares them with a regression part); else computed here.
        """
        if history is None:
            raise ValueError("the models condition on the previous days: pass (N, history, P, P)")
        parts = [raw]
        if self.encoder is None or self.keeps_days:
            parts.append(history)
        if self.encoder is not None:
            parts.append(self.encoder(history) if features is None else features)
        return torch.cat(parts, dim=1)

    def pixel_loss(self, net: nn.Module, raw: torch.Tensor, history: torch.Tensor, target: torch.Tensor,
                   generator: torch.Generator | None) -> torch.Tensor:
        """(N, 1, P, P) training loss per pixel for the residual ``target`` (N, 1, P, P).

        net: what the forward pass goes through (this model, or its DistributedDataParallel wrapper).
        """
        raise NotImplementedError

    def residual(self, cond: torch.Tensor, tiling: Tiling, members: int, generator: torch.Generator | None,
                 sampler: str | None, steps: int | None) -> torch.Tensor:
        """(N*M, C, P, P) tile-major condition -> (M, 1, H, W) whole-region residual, scaled units."""
        raise NotImplementedError

    def reference_residual(self, raw: torch.Tensor, history: torch.Tensor, features: torch.Tensor | None,
                           tiling: Tiling, rows: int) -> torch.Tensor | None:
        """(rows, 1, H, W) reference - coarse field from (N*rows, .) tile-major inputs; None: the reference is the coarse field."""
        return None

    def provenance(self, sampler: str, steps: int) -> dict:
        """How members are drawn, for the sample files' attributes."""
        raise NotImplementedError

    @torch.no_grad()
    def sample_day(self, raw: torch.Tensor, history: torch.Tensor, members: int, sampler: str | None = None,
                   steps: int | None = None, generator: torch.Generator | None = None, tile: int | None = None,
                   stride: int | None = None) -> torch.Tensor:
        """(R, H, W) raw condition and (1 or M, history, H, W) history -> (M, H, W) scaled fine field.

        tile: side of the sampling tiles (default: the training patch; larger tiles are
        cheaper, the networks being convolutional); stride: between tile cores (default
        half the core). sampler and steps are the diffusion model's; the regressors ignore them.
        """
        members = 1 if self.deterministic else members
        dev = next(self.parameters()).device
        raw, history = raw.to(dev), history.to(dev)
        h, w = raw.shape[-2:]
        tile = tile or self.spec.patch
        if tile % self.factor:
            raise ValueError(f"sampling tile {tile} must be a multiple of {self.factor}")
        tiling = tiling_of(h, w, tile, self.spec.halo, stride)
        n = len(tiling.origins)
        # rows: 1 for a history every member shares (teacher forcing), M for each member's own
        # (autoregressive); the condition is built once per row and day, not per member or solver step.
        rows = min(history.shape[0], members)
        # The record_function labels name the parts in a profile (benchmarks/paper_cost.py --profile).
        with record_function("condition"):
            raw_t = tiling.cut(raw)[:, None].expand(n, rows, *raw.shape[:-2], tile, tile).reshape(n * rows, -1, tile, tile)
            hist_t = tiling.cut(history[:rows]).reshape(n * rows, -1, tile, tile)
            with record_function("features"):
                features = self.features(hist_t)
            cond = self.condition(raw_t, hist_t, features)
            cond = cond.reshape(n, rows, *cond.shape[1:]).expand(n, members, *cond.shape[1:]).reshape(n * members, *cond.shape[1:])
        with record_function("residual"):
            out = raw[0][None] + self.residual(cond, tiling, members, generator, sampler, steps)[:, 0]  # channel 0: the coarse field
        with record_function("reference"):
            reference = self.reference_residual(raw_t, hist_t, features, tiling, rows)
        if reference is not None:
            out = out + reference[:, 0]  # (rows, H, W) onto (M, H, W)
        return out.cpu()

    def saved_parts(self) -> dict:
        """What :meth:`build` needs besides the spec to rebuild the networks (saved with the weights)."""
        return {}

    @classmethod
    def build(cls, spec: ResidualSpec, saved: dict, path: str | os.PathLike) -> ResidualModel:
        """The untrained networks of a model file ``path`` holding ``saved`` (its spec and :meth:`saved_parts`)."""
        return cls(spec)

    def save(self, path: str | os.PathLike, extra: dict | None = None) -> None:
        with atomic_path(path) as tmp:
            torch.save({"model": self.spec.name, "spec": asdict(self.spec), "state": self.state_dict(),
                        **self.saved_parts(), **(extra or {})}, tmp)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> ResidualModel:
        """:func:`load_model`, checking that the file holds a ``cls``."""
        model = load_model(path, device)
        if not isinstance(model, cls):
            raise TypeError(f"{path} holds a {type(model).__name__}, not a {cls.__name__}")
        return model


def model_class(name: str) -> type[ResidualModel]:
    """The class the registry names for a trained model (``cls`` = "module:Class")."""
    entry = registry.entry(name)
    if not entry.trained:
        raise ValueError(f"model '{name}' is not trained (family {entry.family})")
    module, cls = entry.cls.split(":")
    return getattr(importlib.import_module(module), cls)


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> ResidualModel:
    """A saved model, built as the class its registry entry names, on ``device``, in eval mode.

    :meth:`ResidualModel.sample_day` then moves its inputs to that device and returns on the CPU.
    """
    state = torch.load(path, map_location="cpu", weights_only=False)
    model = model_class(state["model"]).build(ResidualSpec.from_dict(state["spec"]), state, path)
    model.load_state_dict(state["state"])
    model.path = str(path)
    return model.to(device).eval()


def with_halo(model: ResidualModel, halo: int) -> ResidualModel:
    """``model``, sampling from now on with ``halo`` pixels of context around each tile's core.

    The networks are convolutional and unchanged; what the halo changes is how much of the
    neighbouring field a tile sees (benchmarks/tiling_quality.py and paper_cost.py compare
    halos on one trained model). Training also pads the region by its halo before drawing
    crops, so a config's ``sampling.halo`` is both.
    """
    model.spec = replace(model.spec, halo=halo)
    return model
