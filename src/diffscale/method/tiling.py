"""Whole-region images from square tiles: halo padding and 2-D Hann-window stitching.

A region of any size (H, W) is padded by ``halo`` pixels (reflection) and cut into
``tile x tile`` tiles whose *cores* (the tile minus its halo) cover the region with a
stride of ``stride`` (default half the core, so every pixel is covered smoothly).
Stitching weights each tile's core by a 2-D Hann window (strictly positive inside the
core, zero in the halo) and returns sum(w * x) / sum(w): cutting a field and stitching
the tiles back gives the field itself, and overlapping predictions blend without seams.

Shapes: fields (..., H, W); tiles (N, ..., tile, tile) with N = len(tiling.origins).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch
from torch.nn import functional as F


def _starts(size: int, core: int, stride: int) -> list[int]:
    if size <= core:
        return [0]
    starts = list(range(0, size - core + 1, stride))
    if starts[-1] != size - core:
        starts.append(size - core)
    return starts


@dataclass(frozen=True)
class Tiling:
    height: int
    width: int
    tile: int
    halo: int
    stride: int | None = None  # None: half the core

    def __post_init__(self) -> None:
        if self.halo < 0 or self.core < 1:
            raise ValueError(f"tile {self.tile} with halo {self.halo} leaves no core (need tile > 2 * halo)")
        if self.step < 1 or self.step > self.core:
            raise ValueError(f"stride {self.stride} must be in 1..{self.core} (the core) so cores cover the region")

    @property
    def core(self) -> int:
        return self.tile - 2 * self.halo

    @property
    def step(self) -> int:
        return self.stride if self.stride is not None else max(1, self.core // 2)

    @cached_property
    def origins(self) -> list[tuple[int, int]]:
        """Top-left corner of every tile in padded coordinates (= core corner in region coordinates)."""
        return [(y, x) for y in _starts(self.height, self.core, self.step) for x in _starts(self.width, self.core, self.step)]

    @property
    def padding(self) -> tuple[int, int, int, int]:
        """(left, right, top, bottom) padding of the region (F.pad order)."""
        bottom = self.halo + max(0, self.core - self.height)
        right = self.halo + max(0, self.core - self.width)
        return (self.halo, right, self.halo, bottom)

    @cached_property
    def window(self) -> torch.Tensor:
        """(tile, tile) float64: Hann over the core, positive everywhere in it, zero in the halo."""
        hann = torch.hann_window(self.core + 2, periodic=False, dtype=torch.float64)[1:-1]
        w = torch.zeros(self.tile, self.tile, dtype=torch.float64)
        h = self.halo
        w[h:h + self.core, h:h + self.core] = hann[:, None] * hann[None, :]
        return w

    def pad(self, field: torch.Tensor) -> torch.Tensor:
        """(..., H, W) -> (..., H + pads, W + pads): reflection, then edge replication where reflection cannot reach."""
        if field.shape[-2:] != (self.height, self.width):
            raise ValueError(f"field of shape {tuple(field.shape[-2:])} does not match the tiling's {(self.height, self.width)}")
        lead = field.shape[:-2]
        x = field.reshape(-1, 1, self.height, self.width)
        left, right, top, bottom = self.padding
        reach = (min(left, self.width - 1), min(right, self.width - 1), min(top, self.height - 1), min(bottom, self.height - 1))
        x = F.pad(x, reach, mode="reflect")
        rest = (left - reach[0], right - reach[1], top - reach[2], bottom - reach[3])
        if any(rest):
            x = F.pad(x, rest, mode="replicate")
        return x.reshape(*lead, *x.shape[-2:])

    def cut(self, field: torch.Tensor) -> torch.Tensor:
        """(..., H, W) -> (N, ..., tile, tile)."""
        padded = self.pad(field)
        return torch.stack([padded[..., y:y + self.tile, x:x + self.tile] for y, x in self.origins])

    def stitch(self, tiles: torch.Tensor) -> torch.Tensor:
        """(N, ..., tile, tile) -> (..., H, W) as sum(w * x) / sum(w) over the tiles' cores."""
        if tiles.shape[0] != len(self.origins) or tiles.shape[-2:] != (self.tile, self.tile):
            raise ValueError(f"expected ({len(self.origins)}, ..., {self.tile}, {self.tile}) tiles, got {tuple(tiles.shape)}")
        left, right, top, bottom = self.padding
        ph, pw = self.height + top + bottom, self.width + left + right
        w = self.window.to(device=tiles.device)
        num = torch.zeros(*tiles.shape[1:-2], ph, pw, dtype=torch.float64, device=tiles.device)
        den = torch.zeros(ph, pw, dtype=torch.float64, device=tiles.device)
        for t, (y, x) in zip(tiles, self.origins):
            num[..., y:y + self.tile, x:x + self.tile] += w * t.double()
            den[y:y + self.tile, x:x + self.tile] += w
        out = num[..., top:top + self.height, left:left + self.width] / den[top:top + self.height, left:left + self.width]
        return out.to(tiles.dtype)


def seam_ratio(fields: torch.Tensor, tiling: Tiling) -> float:
    """Mean |gradient| across core boundaries over the mean |gradient| elsewhere, for (..., H, W) fields.

    About 1 when stitching leaves no seams; well above 1 when tiles disagree at their edges.
    """
    rows = torch.zeros(tiling.height - 1, dtype=torch.bool)
    cols = torch.zeros(tiling.width - 1, dtype=torch.bool)
    for y, x in tiling.origins:
        for edge, mask, size in ((y, rows, tiling.height), (x, cols, tiling.width)):
            for b in (edge - 1, edge + tiling.core - 1):  # difference between pixel b and b + 1
                if 0 <= b < size - 1:
                    mask[b] = True
    dy = (fields[..., 1:, :] - fields[..., :-1, :]).abs()
    dx = (fields[..., :, 1:] - fields[..., :, :-1]).abs()
    seam = torch.cat([dy[..., rows, :].flatten(), dx[..., cols].flatten()])
    rest = torch.cat([dy[..., ~rows, :].flatten(), dx[..., ~cols].flatten()])
    return float(seam.mean() / rest.mean())
