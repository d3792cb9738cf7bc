"""The method assembled: frozen transfer encoder + EDM denoiser, its training task and tiled sampling.

Training crops are drawn from the region padded by the sampling halo (reflection), with
a mask so padding never counts in the loss: the denoiser learns what edge tiles look
like at sampling time. Sampling denoises whole-region images: at every solver step the
current image is cut into halo tiles, each tile is denoised with its own condition, and
the tiles are blended with Hann weights (:mod:`diffscale.method.tiling`) before the solver
moves on, so neighbouring tiles agree on one realisation and no seams appear.

Shapes: raw condition (R, H, W); history (M or 1, history, H, W); samples (M, H, W), scaled.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from diffscale.method import conditioning as cond_mod
from diffscale.method.conditioning import RAW_CHANNELS, SeasonData
from diffscale.method.edm import Denoiser, edm_loss, sample
from diffscale.core.io import atomic_path
from diffscale.method.networks.encoder import TransferEncoder
from diffscale.method.networks.unet import UNet
from diffscale.method.tiling import Tiling
from diffscale.method.loop import validation_loss


@dataclass(frozen=True)
class ModelSpec:
    history: int
    patch: int
    halo: int
    encoder_channels: tuple[int, ...]
    encoder_attention: bool
    channels: tuple[int, ...]
    blocks: int
    attention: bool
    use_encoder: bool
    sigma_data: float = 0.5


def encoder_unet(history: int, channels: tuple[int, ...], attention: bool = True) -> UNet:
    """The temporal U-Net that is pretrained and whose encoder is transferred."""
    return UNet(history, 1, tuple(channels), attention=attention)


class Downscaler(nn.Module):
    deterministic = False  # an ensemble of members (the baselines in diffscale.method.regressors may be deterministic)

    def __init__(self, spec: ModelSpec, encoder: UNet | None = None):
        super().__init__()
        self.spec = spec
        # The denoiser sees the history days themselves and, with use_encoder, the frozen
        # encoder's features of them (use_encoder=False is the ablation without the transfer).
        if spec.use_encoder:
            if encoder is None:
                encoder = encoder_unet(spec.history, spec.encoder_channels, spec.encoder_attention)
            self.encoder: TransferEncoder | None = TransferEncoder(encoder)
            features = self.encoder.feature_channels
        else:
            self.encoder, features = None, 0
        net = UNet(1 + RAW_CHANNELS + spec.history + features, 1, tuple(spec.channels), spec.blocks, spec.attention,
                   noise_embedding=True, stem_kernel=1)
        self.denoiser = Denoiser(net, spec.sigma_data)

    def condition(self, raw: torch.Tensor, history: torch.Tensor) -> torch.Tensor:
        """(N, R, P, P) raw condition + (N, history, P, P) history -> (N, C, P, P)."""
        parts = [raw, history] if self.encoder is None else [raw, history, self.encoder(history)]
        return torch.cat(parts, dim=1)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.denoiser(x, sigma, cond)

    def save(self, path: str | os.PathLike, extra: dict | None = None) -> None:
        with atomic_path(path) as tmp:
            torch.save({"spec": asdict(self.spec), "state": self.state_dict(), **(extra or {})}, tmp)

    @staticmethod
    def load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> "Downscaler":
        state = torch.load(path, map_location=map_location, weights_only=False)
        spec = state["spec"]
        spec = ModelSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec.items()})
        model = Downscaler(spec)
        model.load_state_dict(state["state"])
        return model.eval()

    @torch.no_grad()
    def sample_day(self, raw: torch.Tensor, history: torch.Tensor, members: int, sampler: str, steps: int,
                   generator: torch.Generator, tile: int | None = None, stride: int | None = None) -> torch.Tensor:
        """(R, H, W) raw condition and (1 or M, history, H, W) history -> (M, H, W) scaled fine field.

        tile: side of the sampling tiles (default: the training patch; larger tiles are
        cheaper, the network being convolutional); stride: between tile cores (default half the core).
        """
        dev = next(self.denoiser.parameters()).device
        raw, history = raw.to(dev), history.to(dev)
        h, w = raw.shape[-2:]
        tile = tile or self.spec.patch
        if tile % self.denoiser.net.factor:
            raise ValueError(f"sampling tile {tile} must be a multiple of {self.denoiser.net.factor}")
        tiling = Tiling(h, w, tile, self.spec.halo, stride)
        n = len(tiling.origins)
        raw_t = tiling.cut(raw)[:, None].expand(n, members, *raw.shape[:-2], tile, tile)
        hist_t = tiling.cut(history)  # (N, 1 or M, history, P, P)
        hist_t = hist_t.expand(n, members, *hist_t.shape[2:])
        hist_t = hist_t.reshape(n * members, *hist_t.shape[2:])
        cond = self.condition(raw_t.reshape(n * members, *raw_t.shape[2:]), hist_t)  # (N*M, C, P, P), tile-major

        def denoise(x: torch.Tensor, sigma: torch.Tensor, _cond: torch.Tensor) -> torch.Tensor:
            tiles = tiling.cut(x)  # (N, M, 1, P, P)
            out = self.denoiser(tiles.reshape(n * members, *tiles.shape[2:]), sigma.repeat(n), cond)
            return tiling.stitch(out.reshape(tiles.shape))

        residual = sample(sampler, denoise, cond, steps, generator, float(self.spec.sigma_data), shape=(members, 1, h, w))
        return (raw[0][None] + residual[:, 0]).cpu()  # channel 0 of the raw condition is the coarse field


class DiffusionTask:
    """Training batches of (raw condition, history, residual target, mask) crops; EDM loss."""

    def __init__(self, spec: ModelSpec, data: SeasonData, batch_size: int, val_crops: int = 64, seed: int = 0):
        self.spec, self.batch_size, self.patch = spec, batch_size, spec.patch
        h, w = data.shape
        self.tiling = Tiling(h, w, spec.patch, spec.halo)
        self.static = cond_mod.static_channels(data.lat, data.lon, data.elevation)
        self.train = self._stack(data, cond_mod.training_days(data, "train", spec.history))
        if self.train[0].shape[0] == 0:
            raise ValueError("no training day has a full history inside the fine record (check split.buffer_days and encoder.history)")
        val_days = cond_mod.training_days(data, "val", spec.history)
        self.val = self._stack(data, val_days) if len(val_days) else None
        g = torch.Generator().manual_seed(seed)
        self.val_batch = self._draw(self.val, val_crops, g) if self.val is not None else None

    def _stack(self, data: SeasonData, days: pd.DatetimeIndex) -> tuple[torch.Tensor, ...]:
        raws, hists, targets = [], [], []
        for day in days:
            coarse = data.coarse_on(day)
            raws.append(cond_mod.raw_condition(coarse, self.static, day))
            hists.append(cond_mod.true_history(data, day, self.spec.history))
            targets.append((data.fine_on(day) - coarse)[None])
        h, w = data.shape
        if not raws:
            return torch.empty(0, RAW_CHANNELS, h, w), torch.empty(0, self.spec.history, h, w), torch.empty(0, 1, h, w), torch.empty(0, 1, h, w)
        pad = self.tiling.pad
        raw = pad(torch.from_numpy(np.stack(raws)))
        hist = pad(torch.from_numpy(np.stack(hists)))
        target = pad(torch.from_numpy(np.stack(targets)))
        left, _, top, _ = self.tiling.padding
        mask = torch.zeros(1, 1, *raw.shape[-2:])
        mask[..., top:top + h, left:left + w] = 1
        return raw, hist, target, mask.expand(len(days), 1, *mask.shape[-2:])

    def target_std(self) -> float:
        """sigma_data for EDM: the standard deviation of the residual targets on real pixels."""
        target, mask = self.train[2], self.train[3]
        return float(target[mask > 0].std())

    def _draw(self, arrays: tuple[torch.Tensor, ...], n: int, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
        ph, pw = arrays[0].shape[-2:]
        t = torch.randint(arrays[0].shape[0], (n,), generator=gen)
        y = torch.randint(ph - self.patch + 1, (n,), generator=gen)
        x = torch.randint(pw - self.patch + 1, (n,), generator=gen)
        p = torch.arange(self.patch)
        iy, ix = (y[:, None] + p)[:, None, :, None], (x[:, None] + p)[:, None, None, :]
        return tuple(a[t[:, None, None, None], torch.arange(a.shape[1])[None, :, None, None], iy, ix] for a in arrays)

    def batch(self, step: int, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
        return self._draw(self.train, self.batch_size, gen)

    def loss(self, net: nn.Module, batch: tuple[torch.Tensor, ...], gen: torch.Generator | None) -> torch.Tensor:
        raw, hist, target, mask = batch
        inner = net.module if isinstance(net, nn.parallel.DistributedDataParallel) else net
        cond = inner.condition(raw, hist)
        return edm_loss(net, target, cond, float(inner.spec.sigma_data), gen, mask)

    def validate(self, model: nn.Module) -> float:
        return validation_loss(self.loss, model, self.val_batch)
