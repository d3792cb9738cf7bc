"""A small 2-D U-Net, the one backbone of every network in the project.

Used three ways, chosen by parameters rather than subclasses:

* the temporal encoder U-Net: ``UNet(history, 1, channels)`` maps the previous days
  (as channels) to the next day; its down path + middle is later frozen and reused
  (:meth:`UNet.encode`, :class:`diffscale.method.networks.encoder.TransferEncoder`);
* the diffusion denoiser backbone: ``UNet(1 + cond, 1, channels, noise_embedding=True)``
  receives the noise level through a sinusoidal embedding that modulates every block;
* a deterministic regressor (the ``unet`` baseline): ``noise_embedding=False``.

Levels halve the resolution; the deepest level has self-attention (optional), as in
the paper's encoder. Patch sides must be divisible by ``2 ** (len(channels) - 1)``.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def _norm(ch: int) -> nn.GroupNorm:
    groups = max(g for g in range(1, min(8, ch) + 1) if ch % g == 0)
    return nn.GroupNorm(groups, ch)


class NoiseEmbedding(nn.Module):
    """Sinusoidal features of a scalar per sample (EDM's c_noise), then a small MLP."""

    def __init__(self, dim: int, frequencies: int = 16):
        super().__init__()
        self.register_buffer("freqs", torch.exp(torch.linspace(0.0, math.log(1000.0), frequencies)), persistent=False)
        self.mlp = nn.Sequential(nn.Linear(2 * frequencies, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, c_noise: torch.Tensor) -> torch.Tensor:  # (B,) -> (B, dim)
        angles = c_noise[:, None].float() * self.freqs[None, :]
        return self.mlp(torch.cat([angles.sin(), angles.cos()], dim=1))


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, with an optional scale/shift from the noise embedding."""

    def __init__(self, cin: int, cout: int, emb_dim: int = 0, dropout: float = 0.0):
        super().__init__()
        self.norm1, self.conv1 = _norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2, self.conv2 = _norm(cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * cout) if emb_dim else None
        self.dropout = nn.Dropout(dropout)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.norm2(h)
        if self.emb is not None and emb is not None:
            scale, shift = self.emb(emb)[:, :, None, None].chunk(2, dim=1)
            h = h * (1 + scale) + shift
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class Attention(nn.Module):
    """Multi-head self-attention over the pixels of the deepest level."""

    def __init__(self, ch: int, heads: int = 4):
        super().__init__()
        self.heads = heads if ch % heads == 0 else 1
        self.norm = _norm(ch)
        self.qkv = nn.Conv2d(ch, 3 * ch, 1)
        self.proj = nn.Conv2d(ch, ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w).unbind(1)
        out = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        return x + self.proj(out.transpose(-1, -2).reshape(b, c, h, w))


class UNet(nn.Module):
    """(B, in_channels, H, W) -> (B, out_channels, H, W).

    channels: width of each level (the first at full resolution); blocks: residual
    blocks per level; attention: self-attention in the middle (deepest level);
    noise_embedding: condition every block on a per-sample scalar (diffusion);
    stem_kernel: kernel of the input convolution (1 for wide conditioning inputs).
    """

    def __init__(self, in_channels: int, out_channels: int, channels: tuple[int, ...] = (32, 64), blocks: int = 1,
                 attention: bool = True, noise_embedding: bool = False, dropout: float = 0.0, stem_kernel: int = 3):
        super().__init__()
        channels = tuple(int(c) for c in channels)
        self.in_channels, self.out_channels, self.channels = in_channels, out_channels, channels
        emb_dim = 4 * channels[0] if noise_embedding else 0
        self.embed = NoiseEmbedding(emb_dim) if noise_embedding else None
        # A 1x1 stem keeps many conditioning channels cheap (the blocks after it see space).
        self.inp = nn.Conv2d(in_channels, channels[0], stem_kernel, padding=stem_kernel // 2)
        self.down = nn.ModuleList()
        ch = channels[0]
        for level, width in enumerate(channels):
            blocks_here = nn.ModuleList()
            for _ in range(blocks):
                blocks_here.append(ResBlock(ch, width, emb_dim, dropout))
                ch = width
            self.down.append(blocks_here)
        self.mid1 = ResBlock(ch, ch, emb_dim, dropout)
        self.attn = Attention(ch) if attention else nn.Identity()
        self.mid2 = ResBlock(ch, ch, emb_dim, dropout)
        self.up = nn.ModuleList()
        for width in reversed(channels):
            self.up.append(ResBlock(ch + width, width, emb_dim, dropout))
            ch = width
        self.out_norm = _norm(ch)
        self.out = nn.Conv2d(ch, out_channels, 3, padding=1)

    @property
    def factor(self) -> int:
        """Patch sides must be multiples of this."""
        return 2 ** (len(self.channels) - 1)

    def _embed(self, noise: torch.Tensor | None) -> torch.Tensor | None:
        if self.embed is None:
            return None
        if noise is None:
            raise ValueError("this UNet was built with noise_embedding=True: pass the noise level")
        return self.embed(noise)

    def input_response(self, x: torch.Tensor, first: int = 0, bias: bool = True) -> torch.Tensor:
        """(B, c, H, W) -> (B, channels[0], H, W): the input convolution of input channels first..first + c alone.

        The convolution is linear in its input channels, so the responses of a split input
        (plus the bias once) sum to :attr:`inp` of the whole: a condition shared by many
        calls (a sampler's solver steps) is convolved once (``stem`` of :meth:`forward`).
        """
        weight = self.inp.weight[:, first:first + x.shape[1]]
        return F.conv2d(x, weight, self.inp.bias if bias else None, padding=self.inp.padding)

    def _check_shape(self, x: torch.Tensor) -> None:
        if x.shape[-1] % self.factor or x.shape[-2] % self.factor:
            raise ValueError(f"input {tuple(x.shape[-2:])} is not divisible by {self.factor} (levels {self.channels})")

    def encode(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Down path + middle: the skip of every level (full res first) and the middle output last."""
        self._check_shape(x)
        return self._encode(self.inp(x), self._embed(noise))

    def _encode(self, h: torch.Tensor, emb: torch.Tensor | None) -> list[torch.Tensor]:
        """The levels after the input convolution (h: its output)."""
        skips = []
        for level, blocks in enumerate(self.down):
            for block in blocks:
                h = block(h, emb)
            skips.append(h)
            if level < len(self.down) - 1:
                h = F.avg_pool2d(h, 2)
        h = self.mid2(self.attn(self.mid1(h, emb)), emb)
        return skips + [h]

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None, stem: torch.Tensor | None = None) -> torch.Tensor:
        """stem: :meth:`input_response` (bias included) of the input channels after x's, when x
        holds only the leading ones; None: x is the whole input."""
        self._check_shape(x)
        emb = self._embed(noise)
        h = self.inp(x) if stem is None else self.input_response(x, bias=False) + stem
        *skips, h = self._encode(h, emb)
        for block, skip in zip(self.up, reversed(skips)):
            if h.shape[-1] != skip.shape[-1]:
                h = F.interpolate(h, size=skip.shape[-2:], mode="nearest")
            h = block(torch.cat([h, skip], dim=1), emb)
        return self.out(F.silu(self.out_norm(h)))


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
