"""The transfer encoder: the frozen down path + middle of the pretrained temporal U-Net.

Its features of the previous ``history`` fine days condition the diffusion model. Every
level's output (full resolution first, the 4x4-ish middle last) is upsampled
bilinearly to the patch and concatenated, so both the fine detail of recent days
(shallow levels) and the encoder's large-scale temporal summary (deep levels) reach
the denoiser (``encoder.features: levels``, the default); ``bottleneck`` hands on the
middle's output alone, since the shallow levels largely repeat the history days the models
also receive (README, "Why transfer does not help here"). Its pretraining task is
:class:`diffscale.method.tasks.NextDayTask`.

The pretrained network (:class:`TemporalUNet`) standardises its input days with the mean
and standard deviation of the pretraining's training days (buffers saved with its weights,
so transfer and sampling standardise the same way; the scaled field sits in a narrow band,
about 0.5 +- 0.07, that a plain stem would hand on nearly constant) and predicts the next
day as the last day plus a learned change: its starting point is persistence, so what
pretraining adds is what persistence misses, and its features must carry what changes.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from diffscale.method.networks.unet import UNet


class TemporalUNet(UNet):
    """(B, history, H, W) days, oldest first -> (B, 1, H, W) next day, all in the split's scaled units.

    ``in_mean`` / ``in_std``: the training days' statistics (:meth:`set_normalisation`),
    one pair for every channel since every channel is a day of the same field.
    """

    def __init__(self, history: int, channels: tuple[int, ...], attention: bool = True):
        super().__init__(history, 1, tuple(channels), attention=attention)
        self.register_buffer("in_mean", torch.zeros(()))
        self.register_buffer("in_std", torch.ones(()))

    def set_normalisation(self, mean: float, std: float) -> None:
        if not std > 0:
            raise ValueError(f"the encoder's input standard deviation must be positive, got {std} (a constant record?)")
        self.in_mean.fill_(float(mean))
        self.in_std.fill_(float(std))

    def _standardise(self, x: torch.Tensor) -> torch.Tensor:
        return x.sub(self.in_mean).div_(self.in_std)  # in place: a day's history tiles are 30 MB at area1's size

    def encode(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> list[torch.Tensor]:
        return super().encode(self._standardise(x), noise)

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        return x[:, -1:] + self.in_std * super().forward(self._standardise(x), noise)


def encoder_unet(history: int, channels: tuple[int, ...], attention: bool = True) -> TemporalUNet:
    """The temporal U-Net that is pretrained (next day from ``history`` days) and whose encoder is transferred."""
    return TemporalUNet(history, tuple(channels), attention=attention)


FEATURES = ("levels", "bottleneck")


class TransferEncoder(nn.Module):
    """(B, history, P, P) scaled fine history -> (B, feature_channels, P, P); frozen, no grad.

    features: ``levels``, every level's output (full resolution first, the middle last);
    ``bottleneck``, the middle's output alone (config ``encoder.features``).
    """

    def __init__(self, unet: TemporalUNet, features: str = "levels"):
        super().__init__()
        if features not in FEATURES:
            raise ValueError(f"encoder.features '{features}' is not one of {', '.join(FEATURES)}")
        self.features = features
        self.unet = unet
        self.unet.requires_grad_(False)
        self.unet.eval()

    @property
    def history(self) -> int:
        return self.unet.in_channels

    @property
    def feature_channels(self) -> int:
        deepest = self.unet.channels[-1]
        return deepest if self.features == "bottleneck" else sum(self.unet.channels) + deepest

    def train(self, mode: bool = True) -> "TransferEncoder":
        # Frozen: GroupNorm has no running stats, but keep dropout etc. off whatever the caller does.
        return super().train(False)

    @torch.no_grad()
    def forward(self, history: torch.Tensor) -> torch.Tensor:
        size = history.shape[-2:]
        feats = self.unet.encode(history)
        if self.features == "bottleneck":
            feats = feats[-1:]
        return torch.cat([_upsampled(f, size) for f in feats], dim=1)


def _upsampled(f: torch.Tensor, size: torch.Size) -> torch.Tensor:
    """(B, C, h, w) -> (B, C, *size), bilinear."""
    if f.shape[-2:] == size:
        return f
    if f.is_cuda:
        # CUDA's channels-first bilinear kernel runs a thread per output pixel, each looping over
        # batch x channels: 1.5 s a call for area1's 19,440 tiles of 16 pixels on an H200
        # (profiled, benchmarks/paper_cost.py --profile). The channels-last kernel spreads them.
        f = f.contiguous(memory_format=torch.channels_last)
    return F.interpolate(f, size=size, mode="bilinear", align_corners=False).contiguous()
