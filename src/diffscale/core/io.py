"""CF-style netCDF files: the one on-disk format every stage reads and writes.

A *record* is a field ``(time, lat, lon)`` at one regular step (daily, monthly or annual:
:mod:`diffscale.core.steps`) split into one file per month that holds a step,
``<dir>/<YYYY>-<MM>.nc``; elevation is a single ``(lat, lon)`` file. Every file is
written under a temporary name and renamed only once complete, so a killed job
never leaves a file that looks finished.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from diffscale.core import cf, steps
from diffscale.core.chunks import chunk_sizes


class DataValidationError(ValueError):
    """An input file is unreadable or does not hold what the workflow needs."""

    def __init__(self, path: str | os.PathLike | None, problem: str):
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


MONTH_FORMAT = "{year:04d}-{month:02d}.nc"


def month_file(directory: str | os.PathLike, year: int, month: int) -> Path:
    return Path(directory) / MONTH_FORMAT.format(year=year, month=month)


def months_in(start: str, end: str) -> list[tuple[int, int]]:
    """(year, month) pairs touched by the inclusive date range [start, end]."""
    periods = pd.period_range(pd.Timestamp(start), pd.Timestamp(end), freq="M")
    return [(p.year, p.month) for p in periods]


def month_files(directory: str | os.PathLike, start: str, end: str) -> list[Path]:
    return [month_file(directory, y, m) for y, m in months_in(start, end)]


def days_in(start: str, end: str) -> pd.DatetimeIndex:
    return pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq="D")


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; rename onto it only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


TIME_ENCODING = {"units": "days since 1980-01-01", "calendar": "proleptic_gregorian", "dtype": "float64"}


# The codecs a data variable can be written with: zlib (with HDF5's shuffle) is read by every
# netCDF-4 reader; zstd is an HDF5 filter plugin (netCDF-C 4.9+, which the netCDF4 wheels
# bundle), several times faster to write and read at a slightly larger size
# (benchmarks/netcdf_compression.py). Not blosc: its HDF5 filter fails the write of a chunk it
# cannot shrink ("Buffer is uncompressible"), which noisy members can be.
CODECS = ("zlib", "zstd", "none")


def codec_encoding(compression: str = "zlib", complevel: int = 4) -> dict:
    """The netCDF4 encoding keys of a data variable written with ``compression`` at ``complevel``.

    ``none`` or level 0: uncompressed. A codec this netCDF4 build cannot write is refused,
    naming the config key that chose it.
    """
    if compression not in CODECS:
        raise ValueError(f"netcdf.compression '{compression}' is not one of {', '.join(CODECS)}")
    if compression == "none" or complevel == 0:
        return {}
    if compression == "zlib":
        return {"zlib": True, "complevel": complevel, "shuffle": True}
    import netCDF4

    if not getattr(netCDF4, "__has_zstandard_support__", False):
        raise ValueError(f"netcdf.compression: zstd needs a netCDF4 built with its HDF5 filter plugin "
                         f"(netCDF4 {netCDF4.__version__} here has none); use zlib")
    return {"compression": "zstd", "complevel": complevel, "shuffle": True}


def encodings(ds: xr.Dataset, complevel: int = 4, chunks: Mapping[str, int] | None = None,
              zarr: bool = False, growing: Sequence[str] = (), compression: str = "zlib") -> dict[str, dict]:
    """Per-variable encodings: data variables compressed with ``compression`` at ``complevel``
    (:func:`codec_encoding`; 0: uncompressed) with NaN fill, no fill on coordinates and bounds
    (CF 2.5.1, 7.1), and chunks: :func:`chunk_sizes` for every (member,) time, lat, lon variable,
    or ``chunks`` per dimension (the rest whole); along the ``growing`` dimensions (a file
    appended to) the chunks may exceed what is there yet. zarr: the store's own compressor."""
    bounds = cf.bounds_variables(ds)
    codec = {} if zarr else codec_encoding(compression, complevel)
    encoding: dict[str, dict] = {}
    for name, var in ds.variables.items():
        enc: dict = {}
        if name in ds.data_vars and name not in bounds:
            enc |= codec
            if np.issubdtype(var.dtype, np.floating):
                enc["_FillValue"] = var.dtype.type(np.nan)
            if "lat" in var.dims and "lon" in var.dims and var.size:
                want = chunk_sizes(var.sizes, var.dtype.itemsize) if chunks is None else chunks
                enc["chunks" if zarr else "chunksizes"] = tuple(
                    max(1, want.get(d, n) if d in growing else min(want.get(d, n), n)) for d, n in var.sizes.items())
        elif np.issubdtype(var.dtype, np.floating) or np.issubdtype(var.dtype, np.datetime64):
            enc["_FillValue"] = None
        if np.issubdtype(var.dtype, np.datetime64):
            enc |= TIME_ENCODING
        encoding[str(name)] = enc
    return encoding


def write_netcdf(ds: xr.Dataset, path: str | os.PathLike, complevel: int | None = None,
                 metadata: cf.Metadata | None = None, history: str | None = None,
                 chunks: Mapping[str, int] | None = None, unlimited_dims: Sequence[str] = ()) -> Path:
    """Write ``ds`` atomically as CF-1.8/ACDD-1.3 netCDF (:func:`cf.finalize`), every data
    variable compressed as ``metadata`` says (config ``netcdf``: zlib level 4 by default;
    ``complevel`` overrides the level, 0: none), chunked for maps and series alike (see
    :mod:`diffscale.core.chunks`)."""
    metadata = metadata or cf.Metadata()
    level = metadata.complevel if complevel is None else complevel
    ds = cf.finalize(ds, metadata, history)
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, format="NETCDF4", engine="netcdf4", unlimited_dims=list(unlimited_dims),
                     encoding=encodings(ds, level, chunks, growing=unlimited_dims, compression=metadata.compression))
    return Path(path)


PRODUCT_FORMATS = {"netcdf": ".nc", "zarr": ".zarr"}


def write_product(ds: xr.Dataset, path: str | os.PathLike, format: str = "netcdf",
                  metadata: cf.Metadata | None = None, history: str | None = None) -> Path:
    """Write the product as netCDF (a file) or zarr (a directory, format 2 with
    consolidated metadata, which zarr 2 and 3 readers and xarray all open); same metadata
    and chunks either way, written under a temporary name and renamed when complete."""
    if format == "netcdf":
        return write_netcdf(ds, path, metadata=metadata, history=history)
    if format != "zarr":
        raise ValueError(f"unknown product format {format!r}: expected one of {sorted(PRODUCT_FORMATS)}")
    ds = cf.finalize(ds, metadata, history)
    with atomic_dir(path) as tmp:
        ds.to_zarr(tmp, mode="w", zarr_format=2, consolidated=True, encoding=encodings(ds, zarr=True))
    return Path(path)


@contextmanager
def atomic_dir(path: str | os.PathLike):
    """Yield a temporary directory beside ``path``; it replaces ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def append_days(path: str | os.PathLike, variable: str, times: pd.DatetimeIndex, values: np.ndarray,
                step: str = "day") -> None:
    """Append steps of one variable to a file :func:`write_netcdf` made with an unlimited time
    dimension (:func:`append_steps`)."""
    append_steps(path, times, {variable: values}, step)


def append_steps(path: str | os.PathLike, times: pd.DatetimeIndex, values: Mapping[str, np.ndarray],
                 step: str = "day") -> None:
    """Append steps to a file :func:`write_netcdf` made with an unlimited time dimension: each
    variable's ``values`` along its time axis, the time bounds (one ``step`` each), and the
    time coverage moved on."""
    import netCDF4

    times = pd.DatetimeIndex(times)
    with netCDF4.Dataset(path, "a") as nc:
        n, t = nc.dimensions["time"].size, nc.variables["time"]
        t[n:n + times.size] = netCDF4.date2num(times.to_pydatetime(), t.units, t.calendar)
        if "time_bnds" in nc.variables:
            edges = [netCDF4.date2num(pd.DatetimeIndex(steps.shift(times, k, step)).to_pydatetime(), t.units, t.calendar)
                     for k in (0, 1)]
            nc.variables["time_bnds"][n:n + times.size] = np.stack(edges, axis=1)
        for name, array in values.items():
            var = nc.variables[name]
            where = [slice(None)] * var.ndim  # time need not come first: (member, time, lat, lon) files too
            where[var.dimensions.index("time")] = slice(n, n + times.size)
            var[tuple(where)] = array
        if times.size:
            nc.setncattr("time_coverage_end", cf.extents(xr.Dataset(coords={"time": times[-1:]}))["time_coverage_end"])


def write_product_slabs(slabs: Iterable[xr.Dataset], path: str | os.PathLike, format: str = "netcdf",
                        metadata: cf.Metadata | None = None, history: str | None = None,
                        chunks: Mapping[str, int] | None = None) -> Path:
    """:func:`write_product` of a product given as consecutive slabs of steps (each a dataset
    with every variable), written one at a time so memory holds a slab, not the period.

    chunks: per dimension, for the whole product (the first slab's sizes would give shorter
    ones); the file is renamed onto ``path`` only when every slab is in.
    """
    if format not in PRODUCT_FORMATS:
        raise ValueError(f"unknown product format {format!r}: expected one of {sorted(PRODUCT_FORMATS)}")
    step = (metadata or cf.Metadata()).step
    path = Path(path)
    if format == "netcdf":
        with atomic_path(path) as tmp:
            for i, ds in enumerate(slabs):
                if i == 0:
                    write_netcdf(ds, tmp, metadata=metadata, history=history, chunks=chunks, unlimited_dims=("time",))
                else:
                    append_steps(tmp, pd.DatetimeIndex(ds.time.values),
                                 {name: da.values for name, da in ds.data_vars.items() if "time" in da.dims}, step)
        return path
    with atomic_dir(path) as tmp:
        attrs: dict = {}
        for i, ds in enumerate(slabs):
            ds = cf.finalize(ds, metadata, history)
            if i == 0:
                attrs = dict(ds.attrs)
                ds.to_zarr(tmp, mode="w", zarr_format=2, consolidated=True,
                           encoding=encodings(ds, chunks=chunks, zarr=True, growing=("time",)))
            else:
                # an append writes its slab's global attributes: the first slab's, the coverage's end moved on
                ds.attrs = attrs | {k: ds.attrs[k] for k in ("time_coverage_end",) if k in ds.attrs}
                ds.drop_vars([v for v in ds.variables if "time" not in ds[v].dims]).to_zarr(
                    tmp, append_dim="time", zarr_format=2, consolidated=True)
    return path


def file_times(path: str | os.PathLike) -> pd.DatetimeIndex:
    """The steps a netCDF file holds, from its time coordinate alone (none without one)."""
    path = Path(path)
    if not path.exists():
        raise DataValidationError(path, "file does not exist")
    try:
        with xr.open_dataset(path, engine="netcdf4") as ds:
            return pd.DatetimeIndex(ds["time"].values if "time" in ds.variables else [])
    except Exception as exc:  # the reader raises several types
        raise DataValidationError(path, f"cannot read its time coordinate ({type(exc).__name__}: {exc})") from exc


def open_dataset(path: str | os.PathLike, times: pd.DatetimeIndex | None = None) -> xr.Dataset:
    """Open and load a netCDF file, turning any reader failure into a named error.

    times: the steps to read (those of them the file holds); the others are never read from
    disk, so a job that needs a few years of a 25-year record holds those years alone.
    """
    path = Path(path)
    if not path.exists():
        raise DataValidationError(path, "file does not exist")
    try:
        with xr.open_dataset(path, engine="netcdf4") as ds:
            if times is not None and "time" in ds.dims:
                ds = ds.isel(time=np.flatnonzero(pd.DatetimeIndex(ds["time"].values).isin(times)))
            return ds.load()
    except Exception as exc:  # netCDF4 raises OSError/RuntimeError/ValueError variously
        raise DataValidationError(path, f"cannot be read as netCDF ({type(exc).__name__}: {exc})") from exc


def open_product(path: str | os.PathLike) -> xr.Dataset:
    """Open the product (netCDF file or zarr directory) lazily: values are read when sliced."""
    path = Path(path)
    if not path.exists():
        raise DataValidationError(path, "file does not exist")
    try:
        return xr.open_zarr(path, chunks=None) if path.suffix == PRODUCT_FORMATS["zarr"] else xr.open_dataset(path, engine="netcdf4")
    except Exception as exc:  # the backends raise several types
        raise DataValidationError(path, f"cannot be read as a product ({type(exc).__name__}: {exc})") from exc


def validate_field(ds: xr.Dataset, variable: str, path: str | os.PathLike | None = None,
                   dims: Sequence[str] = ("time", "lat", "lon")) -> xr.DataArray:
    """Check a dataset holds ``variable`` on ascending lat/lon (and time) and return it."""
    if variable not in ds.data_vars:
        have = ", ".join(str(v) for v in ds.data_vars if v not in cf.bounds_variables(ds)) or "none"
        raise DataValidationError(path, f"variable '{variable}' not found (variables present: {have})")
    da = ds[variable]
    if tuple(da.dims) != tuple(dims):
        raise DataValidationError(path, f"variable '{variable}' has dimensions {tuple(da.dims)}, expected {tuple(dims)}")
    for axis in ("lat", "lon"):
        values = np.asarray(da[axis].values)
        if values.size < 2 or not np.all(np.diff(values) > 0):
            raise DataValidationError(path, f"coordinate '{axis}' must be strictly increasing with at least 2 values")
    if "time" in dims:
        if not np.issubdtype(da["time"].dtype, np.datetime64):
            raise DataValidationError(path, "coordinate 'time' is not decoded as datetimes (check its units attribute)")
        if da.sizes["time"] > 1 and not np.all(np.diff(da["time"].values) > np.timedelta64(0)):
            raise DataValidationError(path, "coordinate 'time' is not strictly increasing")
    values = np.asarray(da.values)
    if np.isinf(values).any():
        raise DataValidationError(path, f"variable '{variable}' holds infinite values")
    if values.size and np.isnan(values).all():  # a period with no steps is empty, not missing
        raise DataValidationError(path, f"variable '{variable}' is entirely missing (all NaN)")
    return da


def read_field(path: str | os.PathLike, variable: str, dims: Sequence[str] = ("time", "lat", "lon"),
               times: pd.DatetimeIndex | None = None) -> xr.DataArray:
    """``variable`` of a netCDF file, validated; ``times``: the steps read, as in :func:`open_dataset`."""
    return validate_field(open_dataset(path, times), variable, path, dims)


def read_record(paths: Iterable[str | os.PathLike], variable: str,
                start: str | None = None, end: str | None = None) -> xr.DataArray:
    """Concatenate monthly files of one record, validated, optionally cut to [start, end]."""
    paths = [Path(p) for p in paths]
    if not paths:
        raise DataValidationError(None, f"no files given for variable '{variable}'")
    parts = [read_field(p, variable) for p in sorted(paths)]
    for p, part in zip(sorted(paths)[1:], parts[1:]):
        if not (np.array_equal(part.lat, parts[0].lat) and np.array_equal(part.lon, parts[0].lon)):
            raise DataValidationError(p, f"grid differs from {sorted(paths)[0]}")
    da = xr.concat(parts, dim="time")
    if start is not None or end is not None:
        da = da.sel(time=slice(start, end))
        want = days_in(start or str(da.time.values[0]), end or str(da.time.values[-1]))
        missing = want.difference(pd.DatetimeIndex(da.time.values))
        if len(missing):
            raise DataValidationError(None, f"record of '{variable}' lacks {len(missing)} day(s) of {start}..{end}, first {missing[0].date()}")
    return da


def field_dataset(data: np.ndarray, times: pd.DatetimeIndex | None, lat: np.ndarray, lon: np.ndarray,
                  variable: str, attrs: dict, global_attrs: dict | None = None) -> xr.Dataset:
    """Build a CF dataset for one field, ``(time, lat, lon)`` or ``(lat, lon)``; writing it
    adds the bounds and the rest of the CF/ACDD metadata (:func:`cf.finalize`)."""
    coords = {
        "lat": ("lat", np.asarray(lat, dtype=np.float64), dict(cf.COORDINATE_ATTRS["lat"])),
        "lon": ("lon", np.asarray(lon, dtype=np.float64), dict(cf.COORDINATE_ATTRS["lon"])),
    }
    dims: tuple[str, ...] = ("lat", "lon")
    if times is not None:
        coords["time"] = ("time", pd.DatetimeIndex(times).values, dict(cf.COORDINATE_ATTRS["time"]))
        dims = ("time", "lat", "lon")
    ds = xr.Dataset({variable: (dims, data, attrs)}, coords=coords)
    ds.attrs.update({"Conventions": cf.CONVENTIONS} | (global_attrs or {}))
    return ds


def write_monthly(ds: xr.Dataset, directory: str | os.PathLike, metadata: cf.Metadata | None = None,
                  history: str | None = None) -> list[Path]:
    """Split a daily dataset into ``<directory>/<YYYY>-<MM>.nc`` files."""
    written = []
    times = pd.DatetimeIndex(ds.time.values)
    for (year, month) in sorted(set(zip(times.year, times.month))):
        sel = (times.year == year) & (times.month == month)
        written.append(write_netcdf(ds.isel(time=np.flatnonzero(sel)), month_file(directory, year, month),
                                    metadata=metadata, history=history))
    return written


def write_json(path: str | os.PathLike, data: dict) -> Path:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(data, indent=1) + "\n")
    return Path(path)


def read_json(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.exists():
        raise DataValidationError(path, "file does not exist")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataValidationError(path, f"not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise DataValidationError(path, "expected a JSON object")
    return data
