"""Rectilinear lat/lon grids: the MERRA-2 and G5NR conventions, cell bounds, boxes.

Both products put cell centres on exact multiples of their spacing:

* MERRA-2: 0.5 deg lat x 0.625 deg lon, centres at -90 + 0.5 i and -180 + 0.625 j.
* G5NR (Ganymed 7 km): 0.0625 deg in both, centres at -90 + 0.0625 i, -180 + 0.0625 j.

A sub-grid over a box is the set of centres inside the box, so grids cut from the
same product always align, whatever box asked for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import xarray as xr
from scipy.interpolate import RectBivariateSpline

MERRA2_DLAT = 0.5
MERRA2_DLON = 0.625
G5NR_DLAT = 0.0625
G5NR_DLON = 0.0625


@dataclass(frozen=True)
class Box:
    """A lat/lon bounding box in degrees.

    Longitudes are one continuous interval ``west < east <= west + 360``: a box across the
    antimeridian has an east edge above 180 (``(170, 190)``), so grids cut over it stay
    ascending. Given with ``west > east`` (``(170, -170)``), the east edge moves on by 360.
    :meth:`from_config` accepts -180..180 and 0..360 and puts the west edge in [-180, 180);
    :func:`region_boxes` puts several regions into one frame.
    """

    lat: tuple[float, float]
    lon: tuple[float, float]

    def __post_init__(self) -> None:
        if not (-90 <= self.lat[0] < self.lat[1] <= 90):
            raise ValueError(f"latitude range {list(self.lat)} must be increasing within [-90, 90]")
        west, east = (float(v) for v in self.lon)
        if east < west:
            east += 360.0
        if not (-540 <= west < east <= west + 360 <= 900):
            raise ValueError(f"longitude range {list(self.lon)} must be [west, east] in degrees east, spanning at most "
                             "360 degrees (west > east crosses the antimeridian)")
        object.__setattr__(self, "lon", (west, east))

    @property
    def crosses_antimeridian(self) -> bool:
        """Whether the box reaches past 180 (or -180): its longitudes are not within -180..180."""
        return self.lon[0] < -180.0 or self.lon[1] > 180.0

    @property
    def frame_west(self) -> float:
        """West edge of the 360-degree longitude frame centred on the box: data wrapped into
        [frame_west, frame_west + 360) are continuous over the box."""
        return 0.5 * (self.lon[0] + self.lon[1]) - 180.0

    def shifted(self, degrees: float) -> Box:
        return Box(self.lat, (self.lon[0] + degrees, self.lon[1] + degrees))

    def canonical(self) -> Box:
        """The same box with its west edge in [-180, 180)."""
        return self.shifted(-360.0 * np.floor((self.lon[0] + 180.0) / 360.0))

    def padded(self, margin: float) -> Box:
        west = self.lon[0] - margin
        return Box(
            (max(-90.0, self.lat[0] - margin), min(90.0, self.lat[1] + margin)),
            (west, min(self.lon[1] + margin, west + 360.0)),
        )

    @staticmethod
    def union(boxes: list[Box]) -> Box:
        """The smallest box holding every box, whichever frame each is given in; a box in the
        result's frame is ``b.shifted(360 k)`` for some integer k."""
        if not boxes:
            raise ValueError("the union of no boxes is undefined: configure at least one region")
        lat = (min(b.lat[0] for b in boxes), max(b.lat[1] for b in boxes))
        hulls = []
        for start in (b.lon[0] for b in boxes):  # the narrowest hull starts at some box's west edge
            shifted = [_shift_after(b, start).lon for b in boxes]
            hulls.append((min(w for w, _ in shifted), max(e for _, e in shifted)))
        west, east = min(hulls, key=lambda we: we[1] - we[0])
        return Box(lat, (west, min(east, west + 360.0)))

    @staticmethod
    def from_config(region: Mapping) -> Box:
        return Box(tuple(map(float, region["lat"])), tuple(map(float, region["lon"]))).canonical()


def _shift_after(box: Box, start: float) -> Box:
    """``box`` moved by a multiple of 360 degrees so that its west edge lies in [start, start + 360)."""
    return box.shifted(360.0 * np.ceil((start - box.lon[0]) / 360.0 - 1e-12))


def region_boxes(regions: Mapping[str, Mapping]) -> dict[str, Box]:
    """The config's regions as boxes in one longitude frame, that of their union.

    Two regions on either side of the antimeridian (say 175..180 and -180..-175) get
    longitudes 175..180 and 180..185, as the data cropped around them will have.
    """
    boxes = {name: Box.from_config(region) for name, region in regions.items()}
    union = Box.union(list(boxes.values()))
    return {name: _shift_after(b, union.lon[0]) for name, b in boxes.items()}


@dataclass(frozen=True)
class Grid:
    """Cell centres of a rectilinear grid (both ascending) and its nominal spacing."""

    lat: np.ndarray  # (ny,)
    lon: np.ndarray  # (nx,)
    dlat: float
    dlon: float

    @property
    def shape(self) -> tuple[int, int]:
        return (self.lat.size, self.lon.size)

    @property
    def lat_bounds(self) -> np.ndarray:  # (ny + 1,), clipped at the poles
        return np.clip(centres_to_bounds(self.lat), -90.0, 90.0)

    @property
    def lon_bounds(self) -> np.ndarray:  # (nx + 1,)
        return centres_to_bounds(self.lon)

    def cell_area(self) -> np.ndarray:
        """Cell areas on the unit sphere, (ny, nx): dlon * d(sin lat)."""
        dsin = np.diff(np.sin(np.deg2rad(self.lat_bounds)))
        dlon = np.deg2rad(np.diff(self.lon_bounds))
        return np.outer(dsin, dlon)

    def crop(self, box: Box) -> Grid:
        return Grid(
            self.lat[(self.lat >= box.lat[0]) & (self.lat <= box.lat[1])],
            self.lon[(self.lon >= box.lon[0]) & (self.lon <= box.lon[1])],
            self.dlat,
            self.dlon,
        )


def centres_to_bounds(centres: np.ndarray) -> np.ndarray:
    """Cell edges halfway between centres, the outer edges extrapolated."""
    c = np.asarray(centres, dtype=np.float64)
    if c.size == 1:
        raise ValueError("a grid axis needs at least two cells to infer its bounds")
    mid = 0.5 * (c[1:] + c[:-1])
    return np.concatenate([[c[0] - (mid[0] - c[0])], mid, [c[-1] + (c[-1] - mid[-1])]])


def regular_grid(box: Box, dlat: float, dlon: float) -> Grid:
    """Centres k * d - origin that lie inside the box (inclusive), on an exact lattice."""
    i0 = int(np.ceil((box.lat[0] + 90.0) / dlat - 1e-9))
    i1 = int(np.floor((box.lat[1] + 90.0) / dlat + 1e-9))
    j0 = int(np.ceil((box.lon[0] + 180.0) / dlon - 1e-9))
    j1 = int(np.floor((box.lon[1] + 180.0) / dlon + 1e-9))
    if i1 - i0 < 1 or j1 - j0 < 1:
        raise ValueError(f"box lat={list(box.lat)} lon={list(box.lon)} holds fewer than 2x2 cells at {dlat} x {dlon} deg")
    lat = -90.0 + dlat * np.arange(i0, i1 + 1)
    lon = -180.0 + dlon * np.arange(j0, j1 + 1)
    return Grid(lat, lon, dlat, dlon)


def merra2_grid(box: Box) -> Grid:
    """The MERRA-2 cells whose centres fall inside the box."""
    return regular_grid(box, MERRA2_DLAT, MERRA2_DLON)


def g5nr_grid(box: Box) -> Grid:
    """The G5NR 0.0625 deg cells whose centres fall inside the box."""
    return regular_grid(box, G5NR_DLAT, G5NR_DLON)


def covering_fine_grid(coarse: Grid, dlat: float = G5NR_DLAT, dlon: float = G5NR_DLON) -> Grid:
    """The fine grid whose cells cover the coarse cells completely.

    Coarse edges can fall on fine centres (MERRA-2 edges at c +- 0.25 deg are G5NR
    centres), so the covering grid includes those half-overlapping cells too.
    """
    lb, ob = coarse.lat_bounds, coarse.lon_bounds
    return regular_grid(Box((lb[0], lb[-1]), (ob[0], ob[-1])), dlat, dlon)


def overlap_weights_1d(src_bounds: np.ndarray, dst_bounds: np.ndarray) -> np.ndarray:
    """Fraction of each destination interval covered by each source interval.

    Returns W with shape (n_dst, n_src), W[i, j] = |dst_i & src_j| / |dst_i|. Rows of
    destination cells fully inside the source extent sum to 1. For latitude, pass
    sin(lat) bounds so the weights are area weights on the sphere.
    """
    s0, s1 = src_bounds[:-1], src_bounds[1:]
    d0, d1 = dst_bounds[:-1], dst_bounds[1:]
    overlap = np.minimum(d1[:, None], s1[None, :]) - np.maximum(d0[:, None], s0[None, :])
    return np.clip(overlap, 0.0, None) / (d1 - d0)[:, None]


def conservative_matrices(src: Grid, dst: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Separable first-order conservative weights: dst = Wy @ src @ Wx.T.

    Wy is (ny_dst, ny_src), built on sin(latitude) so it weights by area on the
    sphere; Wx is (nx_dst, nx_src). Exact for rectilinear lat/lon grids, because the
    overlap area of two cells is the product of the overlaps along each axis.
    """
    wy = overlap_weights_1d(np.sin(np.deg2rad(src.lat_bounds)), np.sin(np.deg2rad(dst.lat_bounds)))
    wx = overlap_weights_1d(src.lon_bounds, dst.lon_bounds)
    return wy, wx


def grid_of(obj: xr.DataArray | xr.Dataset) -> Grid:
    """The rectilinear grid of an object's lat/lon coordinates (nominal spacing from the first step)."""
    lat, lon = np.asarray(obj["lat"].values, dtype=np.float64), np.asarray(obj["lon"].values, dtype=np.float64)
    return Grid(lat, lon, float(lat[1] - lat[0]), float(lon[1] - lon[0]))


def bicubic(coarse: np.ndarray, coarse_lat: np.ndarray, coarse_lon: np.ndarray,
            fine_lat: np.ndarray, fine_lon: np.ndarray) -> np.ndarray:
    """Bicubic spline interpolation of (T, cy, cx) fields onto fine centres -> (T, ny, nx).

    Needs at least 4 x 4 coarse cells; fine points outside the coarse centres are
    extrapolated by the edge polynomials, so give the coarse field a margin.
    """
    coarse = np.asarray(coarse, dtype=np.float64)
    if coarse.ndim == 2:
        return bicubic(coarse[None], coarse_lat, coarse_lon, fine_lat, fine_lon)[0]
    if min(coarse.shape[1:]) < 4:
        raise ValueError(f"bicubic interpolation needs at least 4 x 4 coarse cells, got {coarse.shape[1:]}")
    out = np.empty((coarse.shape[0], len(fine_lat), len(fine_lon)))
    for t in range(coarse.shape[0]):
        spline = RectBivariateSpline(coarse_lat, coarse_lon, coarse[t], kx=3, ky=3)
        out[t] = spline(fine_lat, fine_lon)
    return out
