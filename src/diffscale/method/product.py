"""The product the user wants: one continuous daily fine record over the whole coarse period.

``results/downscaled/{region}.nc`` holds, for every day of data.coarse_period:

* days inside the fine record: the fine record itself (it is the best estimate there),
  spread 0, every saved member equal to it;
* days outside it in a month of a configured season: that season's autoregressive
  ensemble (beyond.nc): the ensemble mean and standard deviation over members (in
  physical units) and the first ``members_saved`` members;
* days outside it in a month of no configured season: missing (NaN). No model was
  trained for them; borrowing a neighbouring season's model would extrapolate it out
  of the conditions it was trained on, so the product says "no data" instead.

A ``source`` flag per day (CF flag_values / flag_meanings) says which of the three a
day is. Provenance (config, model checkpoints, sampler, the static fields the models were
trained on) goes into global attributes.
Torch-free: rule assemble runs in the data environment.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import xarray as xr

from diffscale.core import cf, io, steps
from diffscale.core.chunks import chunk_sizes
from diffscale.data.split import static_fields

log = logging.getLogger("diffscale.method.product")

SOURCE_FLAGS = {"no_model": 0, "fine_record": 1, "diffusion_ensemble": 2}
MEMBER_DIMS = ("member", "time", "lat", "lon")


class _Beyond(NamedTuple):
    """A season's beyond.nc: its path, days and members, checked before a value is read."""

    path: str | os.PathLike
    days: pd.DatetimeIndex
    members: int


class _Sources(NamedTuple):
    """What the product is built from: the fine record, the seasons' ensembles, each day's source flag."""

    days: pd.DatetimeIndex
    fine: xr.DataArray
    beyond: list[_Beyond]
    source: np.ndarray


def _sources(fine_path: str | os.PathLike, beyond_paths: dict[str, str | os.PathLike], seasons: dict[str, list[int]],
             variable: str, coarse_period: tuple[str, str], members_saved: int, step: str,
             with_fine: bool) -> _Sources:
    """Read the fine record and check every beyond.nc from its coordinates and one day of it."""
    days = steps.in_period(*coarse_period, step)
    fine = io.read_field(fine_path, variable)
    lat, lon = fine.lat.values, fine.lon.values
    source = np.zeros(len(days), np.int8)
    where = days.get_indexer(pd.DatetimeIndex(fine.time.values))
    source[where[(where >= 0) & with_fine]] = SOURCE_FLAGS["fine_record"]
    beyond = []
    for season, path in beyond_paths.items():
        t = io.file_times(path)
        if not len(t):
            continue  # new coarse data without a day of this season
        da = io.validate_field(io.open_dataset(path, times=t[:1]), variable, path, dims=MEMBER_DIMS)
        if not (np.allclose(da.lat, lat) and np.allclose(da.lon, lon)):
            raise io.DataValidationError(path, "grid differs from the region's fine.nc")
        if members_saved > da.sizes["member"]:
            raise ValueError(f"sampling.members_saved = {members_saved} exceeds the {da.sizes['member']} members of {path}")
        bad = t[~np.isin(t.month, seasons[season])]
        if len(bad):
            raise io.DataValidationError(path, f"holds day {bad[0].date()} outside the months {seasons[season]} of season '{season}'")
        idx = days.get_indexer(t)
        if (idx < 0).any() or (source[idx] != 0).any():
            raise io.DataValidationError(path, "holds days outside the coarse period, inside the fine record, or of another season")
        source[idx] = SOURCE_FLAGS["diffusion_ensemble"]
        beyond.append(_Beyond(path, t, da.sizes["member"]))
    return _Sources(days, fine, beyond, source)


def _slabs(src: _Sources, variable: str, members_saved: int) -> Iterator[tuple[slice, np.ndarray, np.ndarray, np.ndarray]]:
    """(days' slice, mean, spread, members) a calendar year of the product at a time: the beyond
    files are read on that year's days alone, so memory holds a year, not the coarse period."""
    shape = src.fine.shape[1:]
    fine_days = pd.DatetimeIndex(src.fine.time.values)
    for year in np.unique(src.days.year):
        sl = slice(*np.flatnonzero(src.days.year == year)[[0, -1]] + [0, 1])
        days, flags = src.days[sl], src.source[sl]
        mean = np.full((len(days), *shape), np.nan, np.float32)
        spread = np.full((len(days), *shape), np.nan, np.float32)
        members = np.full((members_saved, len(days), *shape), np.nan, np.float32)
        from_fine = flags == SOURCE_FLAGS["fine_record"]
        if from_fine.any():
            values = src.fine.values[fine_days.get_indexer(days[from_fine])]
            mean[from_fine], spread[from_fine] = values, 0.0
            members[:, from_fine] = values[None]
        for b in src.beyond:
            t = b.days[(b.days >= days[0]) & (b.days <= days[-1])]
            if not len(t):
                continue
            idx = days.get_indexer(t)
            v = io.validate_field(io.open_dataset(b.path, times=t), variable, b.path,
                                  dims=MEMBER_DIMS).values.astype(np.float64)  # (M, T, H, W)
            mean[idx] = v.mean(axis=0)
            spread[idx] = v.std(axis=0, ddof=1) if v.shape[0] > 1 else 0.0
            members[:, idx] = v[:members_saved]
        yield sl, mean, spread, members


def _product_dataset(src: _Sources, sl: slice, mean: np.ndarray, spread: np.ndarray, members: np.ndarray,
                     variable: str, provenance: dict) -> xr.Dataset:
    """The product's dataset (module doc) over the days ``sl`` of the coarse period."""
    fine, days = src.fine, src.days[sl]
    lat, lon = fine.lat.values, fine.lon.values
    attrs = {k: fine.attrs[k] for k in ("units", "long_name", "standard_name") if k in fine.attrs}
    long = attrs.get("long_name", variable)
    coords = io.field_dataset(mean, days, lat, lon, variable, attrs | {"long_name": f"{long}, ensemble mean"}).coords
    ds = xr.Dataset(
        {
            variable: (("time", "lat", "lon"), mean, attrs | {"long_name": f"{long}, ensemble mean"}),
            f"{variable}_spread": (("time", "lat", "lon"), spread, attrs | {"long_name": f"{long}, ensemble standard deviation"}),
            f"{variable}_members": (("member", "time", "lat", "lon"), members, attrs | {"long_name": f"{long}, ensemble members"}),
            "source": ("time", src.source[sl], {"long_name": "origin of the day's values",
                                                "flag_values": np.array(list(SOURCE_FLAGS.values()), np.int8),
                                                "flag_meanings": " ".join(SOURCE_FLAGS)}),
        },
        coords=dict(coords) | {"member": ("member", np.arange(members.shape[0], dtype=np.int32),
                                          {"long_name": "ensemble member"})},
    )
    ds.attrs.update({"Conventions": "CF-1.8", "title": f"diffscale downscaled daily {variable}",
                     **{k: v if isinstance(v, (str, int, float)) else json.dumps(v, default=str) for k, v in provenance.items()}})
    # CF 7.3: the mean and spread are statistics over the members, a dimension they do not have:
    # the beyond files' members (the last season's), or the saved ones where no season has days.
    ensemble = src.beyond[-1].members if src.beyond else members.shape[0]
    return cf.ensemble_statistics(ds, {variable: "mean", f"{variable}_spread": "standard_deviation"}, max(ensemble, 1))


def assemble(fine_path: str | os.PathLike, beyond_paths: dict[str, str | os.PathLike], seasons: dict[str, list[int]],
             variable: str, coarse_period: tuple[str, str], members_saved: int, provenance: dict,
             step: str = "day", with_fine: bool = True) -> xr.Dataset:
    """The product dataset (see module doc) from the split's fine.nc and each season's beyond.nc,
    in memory; one value per ``step`` (the records' step) of the coarse period. Rule assemble
    writes the same a year at a time (:func:`assemble_files`).

    with_fine: False for new coarse data (config ``apply``): fine.nc gives the grid and
    attributes only, and every step of ``coarse_period`` comes from the ensembles.
    """
    src = _sources(fine_path, beyond_paths, seasons, variable, coarse_period, members_saved, step, with_fine)
    _, means, spreads, members = zip(*_slabs(src, variable, members_saved))
    return _product_dataset(src, slice(0, len(src.days)), np.concatenate(means), np.concatenate(spreads),
                            np.concatenate(members, axis=1), variable, provenance)


# The sampling settings that shaped the beyond ensembles, recorded in the product.
SAMPLER_KEYS = ("sampler", "steps", "beyond_members", "halo", "tile", "overlap", "spinup_days", "seed")


def assemble_files(fine_path: str | os.PathLike, beyond_paths: list[str | os.PathLike], model_paths: list[str | os.PathLike],
                   region: str, seasons: dict[str, list[int]], variable: str, coarse_period: tuple[str, str],
                   members_saved: int, sampling: dict, config: dict, output: str | os.PathLike,
                   format: str = "netcdf", metadata: cf.Metadata | None = None, with_fine: bool = True,
                   inputs: dict | None = None) -> Path:
    """Rule assemble: the product of one region from each season's beyond.nc (in the order of
    ``seasons``), :func:`assemble`'s dataset written a calendar year at a time, so the job holds
    a year of the product (and the fine record), not the coarse period's 25 years.

    format: ``netcdf`` (a file) or ``zarr`` (a directory), :func:`diffscale.core.io.write_product_slabs`.
    with_fine, inputs: rule apply_assemble's product of new coarse data (:func:`assemble`),
    and global attributes naming its inputs.
    """
    names = list(seasons)
    provenance = {"source": "diffscale: frozen transfer encoder + conditional diffusion (Xiang et al. 2025)",
                  "region": region,
                  "model_checkpoints": json.dumps(dict(zip(names, map(str, model_paths)))),
                  # what the models were trained on (sampling refuses any other set)
                  "static_fields": " ".join(static_fields(fine_path)),
                  "sampler": json.dumps({k: sampling[k] for k in SAMPLER_KEYS}),
                  "config": json.dumps(config, default=str)} | (inputs or {})
    src = _sources(fine_path, dict(zip(names, beyond_paths)), seasons, variable, tuple(coarse_period), members_saved,
                   (metadata or cf.Metadata()).step, with_fine)
    h, w = src.fine.shape[1:]
    # the chunks of the whole product, as write_product gives them
    chunks = chunk_sizes({"member": members_saved, "time": len(src.days), "lat": h, "lon": w})
    slabs = (_product_dataset(src, sl, mean, spread, members, variable, provenance)
             for sl, mean, spread, members in _slabs(src, variable, members_saved))
    path = io.write_product_slabs(slabs, output, format, metadata=metadata, chunks=chunks)
    log.info("wrote %s: %d days, source counts %s", output, len(src.days),
             {int(k): int((src.source == k).sum()) for k in SOURCE_FLAGS.values()})
    return path


def assemble_new_files(fine_path: str | os.PathLike, sample_paths: list[str | os.PathLike],
                       model_paths: list[str | os.PathLike], coarse_path: str | os.PathLike, coarse_input: str,
                       region: str, name: str, seasons: dict[str, list[int]], variable: str, members_saved: int,
                       sampling: dict, config: dict, output: str | os.PathLike, format: str = "netcdf",
                       metadata: cf.Metadata | None = None) -> Path:
    """Rule apply_assemble: the product of new coarse data (config ``apply``) over the days of its record.

    sample_paths: each season's samples of the new days; coarse_path: the new record on the
    region's fine grid (its days are the product's); coarse_input: the data the entry names.
    """
    with xr.open_dataset(coarse_path, engine="netcdf4") as ds:
        days = pd.DatetimeIndex(ds["time"].values)
    period = (days[0].strftime("%Y-%m-%d"), days[-1].strftime("%Y-%m-%d"))
    inputs = {"apply": name, "coarse_input": coarse_input}
    return assemble_files(fine_path, sample_paths, model_paths, region, seasons, variable, period, members_saved,
                          sampling, config, output, format, metadata, with_fine=False, inputs=inputs)
