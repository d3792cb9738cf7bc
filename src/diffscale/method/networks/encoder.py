"""The transfer encoder: the frozen down path + middle of the pretrained temporal U-Net.

Its features of the previous ``history`` fine days condition the diffusion model. Every
level's output (full resolution first, the 4x4-ish middle last) is upsampled
bilinearly to the patch and concatenated, so both the fine detail of recent days
(shallow levels) and the encoder's large-scale temporal summary (deep levels) reach
the denoiser. Its pretraining task is :class:`diffscale.method.tasks.NextDayTask`.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from diffscale.method.networks.unet import UNet


def encoder_unet(history: int, channels: tuple[int, ...], attention: bool = True) -> UNet:
    """The temporal U-Net that is pretrained (next day from ``history`` days) and whose encoder is transferred."""
    return UNet(history, 1, tuple(channels), attention=attention)


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
