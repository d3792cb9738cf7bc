"""Baselines that need no training: bicubic interpolation of the native coarse field.

The coarse record on the fine grid that the split stage writes is *bilinear*
(regrid.coarse_to_fine); the bicubic baseline must interpolate the coarse cells
themselves, so it reads the raw coarse record on its own grid.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from diffscale.core import cf, io, registry
from diffscale.core.days import DaySplit
from diffscale.core.grids import bicubic
from diffscale.core.samples import GrowingMemberFile, member_dataset
from diffscale.core.transform import from_metric_space, to_metric_space

log = logging.getLogger(__name__)


def bicubic_record(coarse_files: Sequence[str | os.PathLike], variable: str, days: Sequence[str] | pd.DatetimeIndex,
                   fine_lat: np.ndarray, fine_lon: np.ndarray, log10: bool, floor: float,
                   margin_cells: int = 2) -> xr.Dataset:
    """The bicubic baseline's samples (one member) for ``days`` on the fine centres.

    Interpolates in the modelling space (log10 when ``log10``), the space the other
    models predict in, and returns physical values. The coarse record is cut to the fine
    grid's extent plus ``margin_cells`` coarse cells, so every fine point is interpolated.
    """
    times = pd.DatetimeIndex(pd.to_datetime(list(days)))
    if len(times) == 0:  # e.g. no day outside the fine record: an empty file keeps the contract
        attrs = {k: v for k, v in io.read_field(coarse_files[0], variable).attrs.items() if k in ("units", "long_name")}
        empty = np.empty((1, 0, len(fine_lat), len(fine_lon)), dtype=np.float32)
        return member_dataset(empty, times, fine_lat, fine_lon, variable, attrs, {"model": "bicubic"})
    months = sorted({(t.year, t.month) for t in times})
    wanted = {str(io.month_file(".", y, m).name) for y, m in months}
    files = [f for f in coarse_files if os.path.basename(str(f)) in wanted]
    record = io.read_record(files, variable)
    have = pd.DatetimeIndex(record.time.values).normalize()
    missing = times.difference(have)
    if len(missing):
        raise io.DataValidationError(None, f"coarse record of '{variable}' lacks {len(missing)} requested day(s), first {missing[0].date()}")
    record = record.sel(time=times)
    lat, lon = record.lat.values, record.lon.values
    dlat, dlon = np.diff(lat).max(), np.diff(lon).max()
    iy = (lat >= fine_lat.min() - margin_cells * dlat) & (lat <= fine_lat.max() + margin_cells * dlat)
    ix = (lon >= fine_lon.min() - margin_cells * dlon) & (lon <= fine_lon.max() + margin_cells * dlon)
    values = to_metric_space(record.values[:, iy][:, :, ix], log10, floor)  # (T, cy, cx)
    fine = from_metric_space(bicubic(values, lat[iy], lon[ix], fine_lat, fine_lon), log10)
    attrs = {k: v for k, v in record.attrs.items() if k in ("units", "long_name", "standard_name")}
    return member_dataset(fine[None].astype(np.float32), times, fine_lat, fine_lon, variable, attrs,
                          {"model": "bicubic", "method": registry.entry("bicubic").description
                           + (" in log10 space" if log10 else "")})


def bicubic_samples(coarse_files: Sequence[str | os.PathLike], fine_path: str | os.PathLike,
                    days_path: str | os.PathLike, variable: str, log10: bool, floor: float,
                    outs: Mapping[str, str | os.PathLike], metadata: cf.Metadata | None = None) -> None:
    """Rule sample_bicubic: the bicubic samples on the fine grid of ``fine_path`` for each period of ``outs``.

    ``outs``: {"test": path, "beyond": path}; each period's days are those of ``days_path``;
    ``metadata``: the config's CF/ACDD attributes. Each file is written a month of days at
    a time (the beyond days of a 25-year record would be GBs held at once).
    """
    days = DaySplit.from_json(days_path)
    with xr.open_dataset(fine_path, engine="netcdf4") as ds:  # the grid alone
        lat, lon = ds["lat"].values, ds["lon"].values
    for period, out in outs.items():
        times = pd.DatetimeIndex(getattr(days, period))
        history = f"bicubic baseline, {period} days (diffscale.evaluation.bicubic)"
        with io.atomic_path(out) as tmp:
            if not len(times):
                io.write_netcdf(bicubic_record(coarse_files, variable, times, lat, lon, log10, floor), tmp,
                                metadata=metadata, history=history)
            file = None
            for _, month in pd.Series(times, index=times).groupby([times.year, times.month]):
                part = bicubic_record(coarse_files, variable, pd.DatetimeIndex(month.values), lat, lon, log10, floor)
                da = part[variable]
                if file is None:
                    file = GrowingMemberFile(tmp, lat, lon, variable, dict(da.attrs),
                                             {k: v for k, v in part.attrs.items() if k in ("model", "method")},
                                             metadata, history)
                file.add(pd.DatetimeIndex(part.time.values), da.values)
        log.info("%s: %d days interpolated onto %d x %d fine pixels", period, len(times), len(lat), len(lon))
