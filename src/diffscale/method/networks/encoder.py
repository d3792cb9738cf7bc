"""The transfer encoder: the frozen down path + middle of the pretrained temporal U-Net.

Its features of the previous ``history`` fine days condition the diffusion model. Every
level's output (full resolution first, the 4x4-ish middle last) is upsampled
bilinearly to the patch and concatenated, so both the fine detail of recent days
(shallow levels) and the encoder's large-scale temporal summary (deep levels) reach
the denoiser.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from diffscale.method.networks.unet import UNet
from diffscale.method.tiling import Tiling
from diffscale.method.loop import validation_loss

log = logging.getLogger("diffscale.encoder")


class TransferEncoder(nn.Module):
    """(B, history, P, P) scaled fine history -> (B, feature_channels, P, P); frozen, no grad."""

    def __init__(self, unet: UNet):
        super().__init__()
        self.unet = unet
        self.unet.requires_grad_(False)
        self.unet.eval()

    @property
    def history(self) -> int:
        return self.unet.in_channels

    @property
    def feature_channels(self) -> int:
        return sum(self.unet.channels) + self.unet.channels[-1]

    def train(self, mode: bool = True) -> "TransferEncoder":
        # Frozen: GroupNorm has no running stats, but keep dropout etc. off whatever the caller does.
        return super().train(False)

    @torch.no_grad()
    def forward(self, history: torch.Tensor) -> torch.Tensor:
        size = history.shape[-2:]
        feats = self.unet.encode(history)
        return torch.cat([f if f.shape[-2:] == size else F.interpolate(f, size=size, mode="bilinear", align_corners=False)
                          for f in feats], dim=1)


class NextDayTask:
    """Pretraining of the temporal U-Net: ``history`` days -> the next day, on random patches.

    fields (T, H, W) float32: the scaled coarse-on-fine record (the grid, patch size and
    scaling the encoder meets again at transfer); train_index / val_index: positions t
    of target days whose ``history`` previous days are all in ``fields``.
    Validation is on a fixed set of patches (seeded), so its value is comparable across steps.
    """

    def __init__(self, fields: np.ndarray, train_index: np.ndarray, val_index: np.ndarray, history: int, patch: int,
                 batch_size: int, val_patches: int = 256, seed: int = 0):
        if len(train_index) == 0:
            raise ValueError("no training days for the encoder (check the coarse period and the season's months)")
        self.fields = torch.from_numpy(np.ascontiguousarray(fields, dtype=np.float32))
        ny, nx = fields.shape[-2:]
        if ny < patch or nx < patch:
            # A region smaller than a patch: pad it the way sampling tiles are padded (reflection).
            self.fields = Tiling(ny, nx, patch, 0).pad(self.fields)[..., :max(ny, patch), :max(nx, patch)]
        self.train_index, self.val_index = np.asarray(train_index), np.asarray(val_index)
        self.history, self.patch, self.batch_size = history, patch, batch_size
        g = torch.Generator().manual_seed(seed)
        self.val_batch = self._draw(self.val_index, min(val_patches, 8 * len(self.val_index)), g) if len(self.val_index) else None

    def _draw(self, index: np.ndarray, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        ny, nx = self.fields.shape[-2:]
        t = torch.from_numpy(index)[torch.randint(len(index), (n,), generator=gen)]
        y = torch.randint(ny - self.patch + 1, (n,), generator=gen)
        x = torch.randint(nx - self.patch + 1, (n,), generator=gen)
        offsets = torch.arange(-self.history, 1)
        p = torch.arange(self.patch)
        # (n, history + 1, patch, patch) gathered in one indexing operation
        crops = self.fields[(t[:, None] + offsets)[:, :, None, None], (y[:, None] + p)[:, None, :, None],
                            (x[:, None] + p)[:, None, None, :]]
        return crops[:, :-1], crops[:, -1:]

    def batch(self, step: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return self._draw(self.train_index, self.batch_size, gen)

    @staticmethod
    def loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor], gen: torch.Generator | None = None) -> torch.Tensor:
        history, target = batch
        return (model(history) - target).abs().mean()  # L1, as in the paper

    def validate(self, model: nn.Module) -> float:
        return validation_loss(self.loss, model, self.val_batch)


def pretraining_days(times: pd.DatetimeIndex, months: list[int], history: int, val_years: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the season's days with a full history in ``times``; the last ``val_years`` years validate."""
    t = np.arange(len(times))
    ok = np.isin(times.month, months) & (t >= history)
    years = sorted(set(times.year[ok]))
    if val_years >= len(years):
        log.warning("encoder.val_years = %d leaves no training year in a record of %d (%s): pretraining without "
                    "validation or early stopping", val_years, len(years), years)
        val_years = 0
    val_set = set(years[len(years) - val_years:]) if val_years else set()
    is_val = np.isin(times.year, list(val_set))
    return t[ok & ~is_val], t[ok & is_val]
