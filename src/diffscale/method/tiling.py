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
from functools import cached_property, lru_cache

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

    @property
    def padded_shape(self) -> tuple[int, int]:
        left, right, top, bottom = self.padding
        return self.height + top + bottom, self.width + left + right

    @cached_property
    def _tile_pixels(self) -> torch.Tensor:
        """(N * tile * tile,) int64: each tile's pixels as flat indices of the padded field, tile by tile."""
        pw = self.padded_shape[1]
        inner = (torch.arange(self.tile)[:, None] * pw + torch.arange(self.tile)[None, :]).flatten()
        corners = torch.tensor([y * pw + x for y, x in self.origins])
        return (corners[:, None] + inner[None, :]).flatten()

    @cached_property
    def _contributions(self) -> torch.Tensor:
        """(K, H * W) int64: for each region pixel, the flat indices into the tiles (N * tile * tile) that cover it.

        In tile order, as a loop over the tiles would add them, so that stitching sums in
        that order and gives the loop's values to the bit; a pixel covered by fewer than K
        tiles points its spare slots at index N * tile * tile (a zero appended by stitch).
        """
        left, _, top, _ = self.padding
        ph, pw = self.padded_shape
        p2 = self.tile * self.tile
        covered = torch.zeros(ph, pw, dtype=torch.int64)
        for y, x in self.origins:
            covered[y:y + self.tile, x:x + self.tile] += 1
        k = int(covered.max())
        index = torch.full((k, ph, pw), len(self.origins) * p2, dtype=torch.int64)
        inner = torch.arange(p2).reshape(self.tile, self.tile)
        slot = torch.zeros(ph, pw, dtype=torch.int64)
        for n, (y, x) in enumerate(self.origins):  # once per tiling: (tile x tile) scatters, not per solver step
            rows, cols = slice(y, y + self.tile), slice(x, x + self.tile)
            s = slot[rows, cols]
            index[s, torch.arange(y, y + self.tile)[:, None], torch.arange(x, x + self.tile)[None, :]] = n * p2 + inner
            slot[rows, cols] += 1
        return index[:, top:top + self.height, left:left + self.width].reshape(k, -1)

    @cached_property
    def _weight_sum(self) -> torch.Tensor:
        """(H, W) float64: sum of the tiles' windows over each region pixel, in tile order."""
        w = torch.cat([self.window.flatten().repeat(len(self.origins)), torch.zeros(1, dtype=torch.float64)])
        den = torch.zeros(self.height * self.width, dtype=torch.float64)
        for index in self._contributions:
            den += w[index]
        return den.reshape(self.height, self.width)

    @cached_property
    def _device_copies(self) -> dict:
        return {}

    def _on(self, name: str, device: torch.device) -> torch.Tensor:
        """A cached index or weight tensor on ``device``, copied there once per tiling, not once per solver step."""
        key = (name, device)
        if key not in self._device_copies:
            self._device_copies[key] = getattr(self, name).to(device)
        return self._device_copies[key]

    def cut(self, field: torch.Tensor) -> torch.Tensor:
        """(..., H, W) -> (N, ..., tile, tile)."""
        padded = self.pad(field)
        if padded.is_cuda:
            return self.cut_gathered(padded)
        return torch.stack([padded[..., y:y + self.tile, x:x + self.tile] for y, x in self.origins])

    def cut_gathered(self, padded: torch.Tensor) -> torch.Tensor:
        """:meth:`cut` of a padded field by one gather, the same tiles.

        On a GPU each of the loop's slices is a kernel launch (2,430 a field at area1's size
        with 16-pixel tiles); on a CPU the loop's slices are cheaper than the gather.
        """
        lead = padded.shape[:-2]
        tiles = padded.reshape(*lead, -1).index_select(-1, self._on("_tile_pixels", padded.device))
        return tiles.reshape(*lead, len(self.origins), self.tile, self.tile).movedim(-3, 0).contiguous()

    def stitch(self, tiles: torch.Tensor) -> torch.Tensor:
        """(N, ..., tile, tile) -> (..., H, W) as sum(w * x) / sum(w) over the tiles' cores."""
        if tiles.shape[0] != len(self.origins) or tiles.shape[-2:] != (self.tile, self.tile):
            raise ValueError(f"expected ({len(self.origins)}, ..., {self.tile}, {self.tile}) tiles, got {tuple(tiles.shape)}")
        if tiles.is_cuda:
            return self.stitch_gathered(tiles)
        left, right, top, bottom = self.padding
        ph, pw = self.padded_shape
        w = self.window.to(device=tiles.device)
        num = torch.zeros(*tiles.shape[1:-2], ph, pw, dtype=torch.float64, device=tiles.device)
        den = torch.zeros(ph, pw, dtype=torch.float64, device=tiles.device)
        for t, (y, x) in zip(tiles, self.origins):
            num[..., y:y + self.tile, x:x + self.tile] += w * t.double()
            den[y:y + self.tile, x:x + self.tile] += w
        out = num[..., top:top + self.height, left:left + self.width] / den[top:top + self.height, left:left + self.width]
        return out.to(tiles.dtype)

    def stitch_gathered(self, tiles: torch.Tensor) -> torch.Tensor:
        """:meth:`stitch` by K gathers (K: the most tiles over one pixel) instead of a loop over N tiles.

        Each pixel's contributions are summed slot by slot in tile order, the order of the
        loop's sums, so the result equals the loop's to the bit (tests/test_patches.py).
        """
        lead = tiles.shape[1:-2]
        n, rows, p2 = len(self.origins), tiles[0].numel() // (self.tile * self.tile), self.tile * self.tile
        # (rows, N * tile * tile + 1): each leading index's weighted tiles side by side, then the zero
        weighted = torch.zeros(rows, n * p2 + 1, dtype=torch.float64, device=tiles.device)
        weighted[:, :-1].view(rows, n, self.tile, self.tile).copy_((self.window.to(tiles.device) * tiles.double())
                                                                   .reshape(n, rows, self.tile, self.tile).transpose(0, 1))
        num = torch.zeros(rows, self.height * self.width, dtype=torch.float64, device=tiles.device)
        for index in self._on("_contributions", tiles.device):
            num += weighted.index_select(1, index)
        out = num.reshape(*lead, self.height, self.width) / self._on("_weight_sum", tiles.device)
        return out.to(tiles.dtype)


@lru_cache(maxsize=32)
def tiling_of(height: int, width: int, tile: int, halo: int, stride: int | None = None) -> Tiling:
    """The same :class:`Tiling` for every day of a region: its index tensors (and their copies
    on a GPU) are built once, not once a day."""
    return Tiling(height, width, tile, halo, stride)


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


def stride_at(tile: int, halo: int, overlap: float) -> int:
    """Pixels between tile cores when the next core overlaps ``overlap`` of this one (config ``sampling.overlap``)."""
    return max(1, round((tile - 2 * halo) * (1 - overlap)))


@dataclass(frozen=True)
class TilingChoice:
    """A sampling tiling as the config and the benchmarks name it: tile side, overlap, halo (None: the model's)."""

    tile: int
    overlap: float
    halo: int | None = None

    @classmethod
    def parse(cls, text: str) -> TilingChoice:
        """``TILE:OVERLAP`` or ``TILE:OVERLAP:HALO`` (e.g. ``16:0:2``)."""
        parts = text.split(":")
        try:
            if len(parts) not in (2, 3):
                raise ValueError
            return cls(int(parts[0]), float(parts[1]), int(parts[2]) if len(parts) == 3 else None)
        except ValueError:
            raise ValueError(f"tiling {text!r}: expected TILE:OVERLAP or TILE:OVERLAP:HALO, e.g. 16:0 or 16:0:2") from None

    def halo_or(self, default: int) -> int:
        return default if self.halo is None else self.halo

    def tiling(self, height: int, width: int, default_halo: int) -> Tiling:
        halo = self.halo_or(default_halo)
        return tiling_of(height, width, self.tile, halo, stride_at(self.tile, halo, self.overlap))

    def name(self, default_halo: int) -> str:
        return f"{self.tile}:{self.overlap:g}:{self.halo_or(default_halo)}"
