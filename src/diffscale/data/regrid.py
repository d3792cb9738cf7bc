"""Regridding between rectilinear lat/lon grids, in the spirit of xESMF.

A :class:`Regridder` holds one sparse weight matrix ``W`` (n_target x n_source) over
the grids' cells flattened in C order (lat outer, lon inner), which is also the order
ESMF/xESMF use for 2-D grids built from 1-D lat/lon. Applying it is a sparse product;
built-in weights are kept as their two 1-D factors and applied as ``Wy @ X @ Wx.T``.

Two backends make the weights:

* ``builtin``: exact for rectilinear grids. Every method is separable on such grids,
  ``W = kron(Wy, Wx)``: conservative uses the overlap of cell bounds in sin(latitude)
  and in longitude (area on the sphere), bilinear the linear weights of the two
  bracketing centres along each axis, nearest the closest centre along each axis.
* ``xesmf``: ESMF's weights, used when xesmf (and esmpy, conda-forge only) imports.

Both read and write the ESMF offline weight-file format (netCDF with ``row``, ``col``
(1-based), ``S`` and the sizes ``n_a``, ``n_b``), which xESMF reads and writes too,
so a file made by one backend applies with the other.

One module on purpose (about 400 lines): the weight construction, the weight-file
format and the regridder check each other's grids and methods; split, each half would
need the other's private layout (flattening order, 1-based indices, factor form).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import xarray as xr

from diffscale.core import cf
from diffscale.core.grids import Box, Grid, conservative_matrices, grid_of
from diffscale.core.io import DataValidationError, atomic_path, read_field, write_netcdf

log = logging.getLogger(__name__)

METHODS = ("conservative", "bilinear", "nearest")
BACKENDS = ("auto", "builtin", "xesmf")
MISSING = ("renormalise", "propagate")
_XESMF_METHOD = {"conservative": "conservative", "bilinear": "bilinear", "nearest": "nearest_s2d"}
# Coordinates closer than this (degrees) are the same centre: netCDF round trips and
# lattice arithmetic differ in the last bits.
COORD_TOL = 1e-6


def xesmf_available() -> bool:
    return importlib.util.find_spec("xesmf") is not None and importlib.util.find_spec("esmpy") is not None


def resolve_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"regrid backend '{backend}' is not one of {', '.join(BACKENDS)}")
    if backend == "auto":
        return "xesmf" if xesmf_available() else "builtin"
    if backend == "xesmf" and not xesmf_available():
        raise ImportError("regrid backend 'xesmf' requested but xesmf/esmpy are not importable "
                          "(install them from conda-forge, see envs/regrid.yaml, or use backend 'builtin')")
    return backend


# --------------------------------------------------------------------------- 1-D weights

def linear_weights_1d(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(n_dst, n_src) linear-interpolation weights; targets outside the source centres get a zero row."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    w = np.zeros((dst.size, src.size))
    eps = COORD_TOL
    inside = (dst >= src[0] - eps) & (dst <= src[-1] + eps)
    x = np.clip(dst[inside], src[0], src[-1])
    i = np.clip(np.searchsorted(src, x, side="right") - 1, 0, src.size - 2)
    t = (x - src[i]) / (src[i + 1] - src[i])
    rows = np.flatnonzero(inside)
    w[rows, i] = 1.0 - t
    w[rows, i + 1] += t
    return w


def nearest_weights_1d(src: np.ndarray, dst: np.ndarray, src_bounds: np.ndarray) -> np.ndarray:
    """(n_dst, n_src) one-hot weights of the closest source centre, for targets inside the source cells.

    Ties (a target exactly between two centres) go to the lower index, as argmin does.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    w = np.zeros((dst.size, src.size))
    inside = (dst >= src_bounds[0] - COORD_TOL) & (dst <= src_bounds[-1] + COORD_TOL)
    nearest = np.argmin(np.abs(dst[:, None] - src[None, :]), axis=1)
    rows = np.flatnonzero(inside)
    w[rows, nearest[inside]] = 1.0
    return w


def builtin_weights(source: Grid, target: Grid, method: str) -> sp.csr_matrix:
    """Exact weights (n_target, n_source) for rectilinear grids, as kron(Wy, Wx)."""
    wy, wx = builtin_factors(source, target, method)
    w = sp.kron(sp.csr_matrix(wy), sp.csr_matrix(wx), format="csr")  # C order of both grids
    w.eliminate_zeros()
    return w


def builtin_factors(source: Grid, target: Grid, method: str) -> tuple[np.ndarray, np.ndarray]:
    """The separable factors Wy (ny_dst, ny_src) and Wx (nx_dst, nx_src) of the exact weights."""
    if method == "conservative":
        wy, wx = conservative_matrices(source, target)
    elif method == "bilinear":
        wy, wx = linear_weights_1d(source.lat, target.lat), linear_weights_1d(source.lon, target.lon)
    elif method == "nearest":
        wy = nearest_weights_1d(source.lat, target.lat, source.lat_bounds)
        wx = nearest_weights_1d(source.lon, target.lon, source.lon_bounds)
    else:
        raise ValueError(f"regrid method '{method}' is not one of {', '.join(METHODS)}")
    return wy, wx


def _grid_dataset(grid: Grid, with_bounds: bool) -> xr.Dataset:
    coords = {"lat": ("lat", grid.lat), "lon": ("lon", grid.lon)}
    if with_bounds:
        coords |= {"lat_b": ("lat_b", grid.lat_bounds), "lon_b": ("lon_b", grid.lon_bounds)}
    return xr.Dataset(coords=coords)


def xesmf_weights(source: Grid, target: Grid, method: str) -> sp.csr_matrix:  # pragma: no cover - needs esmpy
    """ESMF's weights through xESMF (only where xesmf and esmpy are installed)."""
    import xesmf

    bounds = method == "conservative"
    regridder = xesmf.Regridder(_grid_dataset(source, bounds), _grid_dataset(target, bounds),
                                _XESMF_METHOD[method], periodic=False)
    weights = regridder.weights.data  # sparse.COO (n_target, n_source) in xesmf >= 0.6
    weights = weights.tocsr() if hasattr(weights, "tocsr") else sp.csr_matrix(weights)
    return sp.csr_matrix(weights, shape=(target.lat.size * target.lon.size, source.lat.size * source.lon.size))


# ---------------------------------------------------------------------- weight files

def weights_file_name(source: Grid, target: Grid, method: str) -> str:
    """A name that changes whenever either grid or the method does."""
    digest = hashlib.sha1()
    for arr in (source.lat, source.lon, target.lat, target.lon):
        digest.update(np.round(np.asarray(arr, dtype=np.float64), 6).tobytes())
    return (f"{method}_{source.lat.size}x{source.lon.size}_to_{target.lat.size}x{target.lon.size}"
            f"_{digest.hexdigest()[:12]}.nc")


def _flat_centres(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    lon2, lat2 = np.meshgrid(grid.lon, grid.lat)  # (ny, nx) each, C order = ESMF order
    return lat2.ravel(), lon2.ravel()


def write_weights(path: str | os.PathLike, weights: sp.spmatrix, source: Grid, target: Grid,
                  method: str, backend: str) -> Path:
    """Write ESMF offline-format weights: row/col 1-based, S, dims n_s, n_a (source), n_b (target)."""
    coo = sp.coo_matrix(weights)
    yc_a, xc_a = _flat_centres(source)
    yc_b, xc_b = _flat_centres(target)
    ds = xr.Dataset(
        {
            "row": ("n_s", (coo.row + 1).astype(np.int32), {"long_name": "destination cell (1-based)"}),
            "col": ("n_s", (coo.col + 1).astype(np.int32), {"long_name": "source cell (1-based)"}),
            "S": ("n_s", coo.data.astype(np.float64), {"long_name": "weight"}),
            "yc_a": ("n_a", yc_a, {"units": "degrees_north"}),
            "xc_a": ("n_a", xc_a, {"units": "degrees_east"}),
            "yc_b": ("n_b", yc_b, {"units": "degrees_north"}),
            "xc_b": ("n_b", xc_b, {"units": "degrees_east"}),
            "src_grid_dims": ("src_grid_rank", np.array([source.lon.size, source.lat.size], dtype=np.int32)),
            "dst_grid_dims": ("dst_grid_rank", np.array([target.lon.size, target.lat.size], dtype=np.int32)),
        },
        attrs={"title": f"diffscale {method} regridding weights", "map_method": method,
               "created_by": backend, "normalization": "destarea"},
    )
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="netcdf4")
    return Path(path)


def read_weights(path: str | os.PathLike, source: Grid, target: Grid) -> tuple[sp.csr_matrix, str]:
    """Read an ESMF/xESMF weight file for these grids; returns (W, creator).

    xESMF's own files hold only row/col/S; ESMF's also n_a/n_b and the centres, which
    are checked against the grids when present so a stale file cannot be applied.
    """
    n_a, n_b = source.lat.size * source.lon.size, target.lat.size * target.lon.size
    path = Path(path)
    if not path.exists():
        raise DataValidationError(path, "weight file does not exist")
    try:
        with xr.open_dataset(path, engine="netcdf4") as ds:
            ds = ds.load()
    except Exception as exc:
        raise DataValidationError(path, f"cannot be read as a netCDF weight file ({exc})") from exc
    for name in ("row", "col", "S"):
        if name not in ds:
            raise DataValidationError(path, f"weight file lacks variable '{name}' (ESMF format: row, col, S)")
    for dim, want, what in (("n_a", n_a, "source"), ("n_b", n_b, "target")):
        if dim in ds.sizes and ds.sizes[dim] != want:
            raise DataValidationError(path, f"weights are for a {what} grid of {ds.sizes[dim]} cells, this one has {want}")
    for key, grid in (("a", source), ("b", target)):
        if f"yc_{key}" in ds and f"xc_{key}" in ds:
            lat, lon = _flat_centres(grid)
            if not (np.allclose(ds[f"yc_{key}"].values, lat, atol=COORD_TOL)
                    and np.allclose(ds[f"xc_{key}"].values, lon, atol=COORD_TOL)):
                raise DataValidationError(path, f"weights were made for other {'source' if key == 'a' else 'target'} grid centres")
    row = ds["row"].values.astype(np.int64) - 1
    col = ds["col"].values.astype(np.int64) - 1
    if row.size and (row.min() < 0 or row.max() >= n_b or col.min() < 0 or col.max() >= n_a):
        raise DataValidationError(path, f"row/col indices outside the grids ({n_b} target, {n_a} source cells)")
    w = sp.csr_matrix((ds["S"].values.astype(np.float64), (row, col)), shape=(n_b, n_a))
    return w, str(ds.attrs.get("created_by", "xesmf"))


# ------------------------------------------------------------------------ the regridder

class Regridder:
    """Map fields from ``source_grid`` to ``target_grid``.

    ``missing``: ``renormalise`` leaves NaN source cells out and divides by the weight
    of the valid ones (a target is NaN only when no valid cell contributes);
    ``propagate`` makes any target that touches a NaN source cell NaN. In both cases a
    target covered only partly by the source is the mean over the covered part, and a
    target nothing maps to (outside the source) is NaN.
    """

    def __init__(self, source_grid: Grid, target_grid: Grid, method: str, backend: str = "auto",
                 missing: str = "renormalise", weights_path: str | os.PathLike | None = None):
        if method not in METHODS:
            raise ValueError(f"regrid method '{method}' is not one of {', '.join(METHODS)}")
        if missing not in MISSING:
            raise ValueError(f"regrid missing '{missing}' is not one of {', '.join(MISSING)}")
        self.source, self.target, self.method, self.missing = source_grid, target_grid, method, missing
        self.weights_path = Path(weights_path) if weights_path is not None else None
        # The built-in weights stay factored, W = kron(Wy, Wx): applying the two small
        # factors is as fast as the full matrix and building them is 10x cheaper. The
        # full matrix is made only to write or hand out weights.
        self._factors: tuple[sp.csr_matrix, sp.csr_matrix] | None = None
        self._weights: sp.csr_matrix | None = None
        if self.weights_path is not None and self.weights_path.exists():
            self._weights, self.backend = read_weights(self.weights_path, source_grid, target_grid)
            log.info("regrid %s: weights read from %s (made by %s)", method, self.weights_path, self.backend)
        else:
            self.backend = resolve_backend(backend)
            if self.backend == "xesmf":
                self._weights = xesmf_weights(source_grid, target_grid, method)
            else:
                wy, wx = builtin_factors(source_grid, target_grid, method)
                self._factors = (sp.csr_matrix(wy), sp.csr_matrix(wx))
            if self.weights_path is not None:
                write_weights(self.weights_path, self.weights, source_grid, target_grid, method, self.backend)
                log.info("regrid %s: weights written to %s", method, self.weights_path)
        if self._factors is not None:
            wy, wx = self._factors
            self._rowsum = np.outer(np.asarray(wy.sum(axis=1)).ravel(), np.asarray(wx.sum(axis=1)).ravel()).ravel()
        else:
            self._rowsum = np.asarray(self._weights.sum(axis=1)).ravel()  # (n_target,)

    @property
    def weights(self) -> sp.csr_matrix:
        """The full sparse matrix (n_target, n_source), C order of both grids (ESMF's order)."""
        if self._weights is None:
            wy, wx = self._factors
            self._weights = sp.kron(wy, wx, format="csr")
            self._weights.eliminate_zeros()
        return self._weights

    @property
    def unmapped(self) -> int:
        """Target cells no source cell maps to (NaN in every output)."""
        return int((self._rowsum <= 0).sum())

    @property
    def partial(self) -> int:
        """Target cells only partly covered by the source (conservative weights summing to < 1)."""
        return int(((self._rowsum > 0) & (self._rowsum < 1 - 1e-9)).sum())

    def _product(self, flat: np.ndarray) -> np.ndarray:
        """W @ each row of (m, n_src) -> (m, n_dst), in float64.

        A row at a time reads the C-ordered data in place; one sparse-dense product
        over the block would first transpose all of it, which costs 5x more.
        """
        out = np.empty((flat.shape[0], self._rowsum.size))
        if self._factors is None:
            for k in range(flat.shape[0]):
                out[k] = self._weights @ flat[k]
            return out
        wy, wx = self._factors
        fields = flat.reshape(-1, *self.source.shape)  # (m, ny_src, nx_src)
        for k in range(flat.shape[0]):
            # Wy @ X @ Wx.T, the second product on the small (ny_dst, nx_src) result.
            out[k] = (wx @ (wy @ fields[k]).T).T.ravel()
        return out

    def regrid_array(self, x: np.ndarray) -> np.ndarray:
        """(..., ny_src, nx_src) -> (..., ny_dst, nx_dst), NaN handled as configured."""
        ny, nx = self.source.shape
        if x.shape[-2:] != (ny, nx):
            raise ValueError(f"array ends in {x.shape[-2:]}, the source grid is {(ny, nx)}")
        lead = x.shape[:-2]
        flat = np.asarray(x)
        if not np.issubdtype(flat.dtype, np.floating):
            flat = flat.astype(np.float64)
        flat = flat.reshape(-1, ny * nx)  # (m, n_src)
        with np.errstate(invalid="ignore", divide="ignore"):
            # A NaN source cell that any weight touches shows up as NaN in the plain
            # product, so the masked products are only needed then (most fields have none).
            out = self._product(flat)
            if not np.isnan(out).any():
                out /= self._rowsum
            else:
                valid = ~np.isnan(flat)
                num = self._product(np.where(valid, flat, 0.0))  # (m, n_dst)
                if self.missing == "renormalise":
                    out = num / self._product(valid.astype(np.float64))
                else:
                    out = num / self._rowsum
                    out[self._product((~valid).astype(np.float64)) > 0] = np.nan
        out[:, self._rowsum <= 0] = np.nan
        out[~np.isfinite(out)] = np.nan
        dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64
        return out.reshape(*lead, *self.target.shape).astype(dtype, copy=False)

    def _check_grid(self, obj: xr.DataArray | xr.Dataset, name: str) -> None:
        for axis in ("lat", "lon"):
            if axis not in obj.coords:
                raise ValueError(f"{name} has no '{axis}' coordinate to regrid")
            have, want = np.asarray(obj[axis].values), getattr(self.source, axis)
            if have.shape != want.shape or not np.allclose(have, want, atol=COORD_TOL):
                raise ValueError(f"{name}: '{axis}' coordinate ({have.size} values from {have[0]:.4f}) "
                                 f"does not match the regridder's source grid ({want.size} values from {want[0]:.4f})")

    def _regrid_dataarray(self, da: xr.DataArray) -> xr.DataArray:
        dims = [d for d in da.dims if d not in ("lat", "lon")]
        values = self.regrid_array(da.transpose(*dims, "lat", "lon").values)  # (..., ny, nx)
        coords = {k: v for k, v in da.coords.items() if "lat" not in v.dims and "lon" not in v.dims}
        target = {axis: (axis, getattr(self.target, axis), da[axis].attrs) for axis in ("lat", "lon")}
        out = xr.DataArray(values, dims=[*dims, "lat", "lon"], coords=coords | target, name=da.name,
                           attrs=dict(da.attrs))
        out.attrs.update(self.provenance())
        return out.transpose(*da.dims)

    def provenance(self) -> dict[str, str]:
        return {"regrid_method": self.method, "regrid_backend": self.backend, "regrid_missing": self.missing}

    def __call__(self, obj: xr.DataArray | xr.Dataset) -> xr.DataArray | xr.Dataset:
        """Regrid every variable on (lat, lon); other dimensions, names and attributes are kept."""
        if isinstance(obj, xr.DataArray):
            self._check_grid(obj, f"DataArray '{obj.name}'")
            return self._regrid_dataarray(obj)
        if not isinstance(obj, xr.Dataset):
            raise TypeError(f"Regridder takes an xarray DataArray or Dataset, not {type(obj).__name__}")
        self._check_grid(obj, "Dataset")
        variables = {}
        for name, var in obj.data_vars.items():
            spatial = "lat" in var.dims and "lon" in var.dims
            if not spatial and ("lat" in var.dims or "lon" in var.dims):
                raise ValueError(f"variable '{name}' has only one of lat/lon and cannot be regridded")
            variables[name] = self._regrid_dataarray(var) if spatial else var
        out = xr.Dataset(variables, attrs=dict(obj.attrs))
        out.attrs.update(self.provenance())
        return out


def regrid_record(regridder: Regridder, in_paths: list[str | os.PathLike], out_paths: list[str | os.PathLike],
                  variable: str, metadata: cf.Metadata | None = None) -> list[Path]:
    """Regrid monthly files one by one (file i -> out_paths[i]); each output is written atomically."""
    if len(in_paths) != len(out_paths):
        raise ValueError(f"{len(in_paths)} input files but {len(out_paths)} outputs")
    if regridder.unmapped:
        raise ValueError(f"{regridder.unmapped} target cells lie outside the source grid for method "
                         f"'{regridder.method}' (source lat {regridder.source.lat[0]:.3f}..{regridder.source.lat[-1]:.3f}, "
                         f"lon {regridder.source.lon[0]:.3f}..{regridder.source.lon[-1]:.3f}); raise data.margin_deg "
                         "so the source covers the regions")
    if regridder.partial:
        log.warning("%d target cells are only partly covered by the source grid: their values are the mean "
                    "over the covered part", regridder.partial)
    written = []
    for src, dst in zip(in_paths, out_paths):
        da = read_field(src, variable)
        with xr.open_dataset(src, engine="netcdf4") as ds:
            global_attrs = dict(ds.attrs)
        out = regridder(da).astype(da.dtype).to_dataset()
        out.attrs.update(global_attrs | regridder.provenance())
        written.append(write_netcdf(out, dst, metadata=metadata,
                                    history=f"{regridder.method} regridding of {Path(src).name} ({regridder.backend})"))
    return written


def regrid_region(source_paths: list[str | os.PathLike], target_grid_path: str | os.PathLike, box: Box, variable: str,
                  method: str, backend: str, missing: str, weights_dir: str | os.PathLike,
                  out_paths: list[str | os.PathLike], metadata: cf.Metadata | None = None) -> list[Path]:
    """One record's monthly files onto one region's cut of another record's grid.

    The target grid is the cells of ``target_grid_path`` whose centres lie in ``box``,
    exactly as the split stage crops them; weights are cached in ``weights_dir`` under
    a name that identifies both grids and the method. ``metadata``: the config's CF/ACDD
    attributes.
    """
    source = grid_of(read_field(source_paths[0], variable))
    target = grid_of(read_field(target_grid_path, variable)).crop(box)
    weights = Path(weights_dir) / weights_file_name(source, target, method)
    regridder = Regridder(source, target, method, backend=backend, missing=missing, weights_path=weights)
    log.info("%s x %s -> %s x %s, %s, backend %s, weights %s", *source.shape, *target.shape, method, regridder.backend,
             weights)
    written = regrid_record(regridder, list(source_paths), list(out_paths), variable, metadata)
    log.info("wrote %d monthly files", len(written))
    return written
