"""New coarse data for the trained models (config ``apply``): read, checked against the training record, written.

An ``apply`` entry's coarse data (the user's files, or MERRA-2 months fetched for a
period) become one file ``apply/{name}/coarse.nc`` laid out like a raw coarse month of
the training record: the variable named ``data.variable``, lat/lon ascending, cut to the
regions plus ``data.margin_deg``, at the records' step (``data.step``). The models learned the training coarse
record's variable on its grid, so the new data must be that variable, in the same units,
on the same grid: anything else is refused with an error that names the file and what
differs (variable, units, grid spacing or extent). The regrid stage then maps the file
onto each region's fine grid exactly as it maps the training record.

Nothing is written unless every check passes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from diffscale.core import cf, io, steps
from diffscale.core.grids import Box
from diffscale.data.sources.local import crop, expand, read_local

log = logging.getLogger("diffscale.data.apply")


def _units(path: str | os.PathLike, variable: str) -> str | None:
    """The ``units`` attribute of ``variable`` in a file (None when it has none)."""
    with xr.open_dataset(path, decode_times=False) as ds:
        if variable not in ds.data_vars:
            return None
        units = ds[variable].attrs.get("units")
    return None if units is None else str(units).strip()


def _spacing(values: np.ndarray) -> float:
    return float(np.median(np.diff(values))) if values.size > 1 else float("nan")


def match_grid(new: xr.DataArray, training: xr.DataArray, path: str | os.PathLike,
               training_path: str | os.PathLike) -> xr.DataArray:
    """The new data on exactly the training coarse cells: same spacing, and every training cell centre present."""
    spacing = (_spacing(new.lat.values), _spacing(new.lon.values))
    want = (_spacing(training.lat.values), _spacing(training.lon.values))
    if not np.allclose(spacing, want, atol=1e-6, equal_nan=True):
        raise io.DataValidationError(path, f"grid spacing {spacing[0]:.6g} x {spacing[1]:.6g} deg (lat x lon) differs "
                                           f"from the training coarse grid's {want[0]:.6g} x {want[1]:.6g} deg "
                                           f"({training_path}): regrid the data onto that grid first")
    try:
        return new.sel(lat=training.lat.values, lon=training.lon.values, method="nearest", tolerance=1e-6)
    except KeyError:
        pass

    def extent(da: xr.DataArray) -> str:
        return (f"lat {da.lat.values[0]:.6g}..{da.lat.values[-1]:.6g}, "
                f"lon {da.lon.values[0]:.6g}..{da.lon.values[-1]:.6g}")
    raise io.DataValidationError(path, f"cell centres around the regions are {extent(new)}; the training coarse "
                                       f"record's are {extent(training)} ({training_path}): the data must hold those "
                                       "cell centres")


def check_units(units: str | None, want: str | None, path: str | os.PathLike, variable: str, reference: str) -> None:
    if units is not None and want is not None and units != want:
        raise io.DataValidationError(path, f"variable '{variable}' has units '{units}', the training coarse record "
                                           f"'{want}' ({reference}): convert the data first")


def read_new_coarse(training_path: str | os.PathLike, variable: str, boxes: Sequence[Box], margin: float,
                    pattern: str | None = None, source_variable: str | None = None,
                    raw_paths: Sequence[str | os.PathLike] = (), training_pattern: str | None = None,
                    training_variable: str | None = None, step: str = "day",
                    subdaily: str = "refuse") -> tuple[xr.DataArray, str]:
    """(time, lat, lon) of the new coarse data, checked against the training record; and a description of its source.

    ``step``, ``subdaily``: as for data.local's files (the records' step, data.local.subdaily).

    The user's files (``pattern``, variable ``source_variable``) are read as data.local's
    are; ``raw_paths`` are monthly files already in the workflow's layout (the nasa
    source's). ``training_path``: a raw month of the training coarse record;
    ``training_pattern``/``training_variable``: the user's training coarse files (source
    local), whose units the new files must share.
    """
    box = Box.union(list(boxes))
    # Both cut alike (the cells that touch the regions plus the margin): the twin's raw files reach further.
    training = crop(io.read_field(training_path, variable), box, margin, training_path)
    if pattern is not None:
        if source_variable is None:
            raise ValueError("source_variable is required with pattern")
        da = read_local(pattern, source_variable, box, margin, step=step, subdaily=subdaily)
        where: str | os.PathLike = pattern
        if training_pattern is not None and training_variable is not None:
            want, reference = _units(expand(training_pattern)[0], training_variable), training_pattern
        else:
            want, reference = training.attrs.get("units"), str(training_path)
        check_units(_units(expand(pattern)[0], source_variable), want, expand(pattern)[0], source_variable, reference)
        source = f"{pattern} (variable {source_variable})"
    else:
        if not raw_paths:
            raise ValueError("give the user's files (pattern) or raw monthly files (raw_paths)")
        da = crop(io.read_record(raw_paths, variable), box, margin, raw_paths[0])
        where, source = raw_paths[0], ", ".join(Path(p).name for p in raw_paths)
        check_units(da.attrs.get("units"), training.attrs.get("units"), where, variable, str(training_path))
    da = match_grid(da, training, where if pattern is None else expand(pattern)[0], training_path)
    if da.sizes["time"] == 0:
        raise io.DataValidationError(where, "holds no day")
    # The autoregressive runs need every step between the first and the last (each step's history).
    times = pd.DatetimeIndex(da.time.values)
    missing = steps.in_period(times[0], times[-1], step).difference(times)
    if len(missing):
        raise io.DataValidationError(where, f"the {step}s {times[0].date()}..{times[-1].date()} lack {len(missing)} {step}(s), "
                                            f"first {missing[0].date()}: give one continuous record per apply entry "
                                            "(separate entries for separate periods)")
    return da, source


def write_new_coarse(out: str | os.PathLike, training_path: str | os.PathLike, variable: str, attrs: dict,
                     boxes: Sequence[Box], margin: float, pattern: str | None = None, source_variable: str | None = None,
                     raw_paths: Sequence[str | os.PathLike] = (), training_pattern: str | None = None,
                     training_variable: str | None = None, metadata: cf.Metadata | None = None,
                     subdaily: str = "refuse") -> Path:
    """Rule apply_coarse: :func:`read_new_coarse` written as ``out`` (one file, every day)."""
    da, source = read_new_coarse(training_path, variable, boxes, margin, pattern, source_variable, raw_paths,
                                 training_pattern, training_variable, (metadata or cf.Metadata()).step, subdaily)
    times = pd.DatetimeIndex(da.time.values)
    ds = io.field_dataset(np.asarray(da.values, dtype=np.float32), times, da.lat.values, da.lon.values, variable, attrs,
                          {"source": f"new coarse data: {source}"})
    io.validate_field(ds, variable, out)
    log.info("%s: %d days (%s..%s) on %d x %d cells, checked against %s", source, times.size, times[0].date(),
             times[-1].date(), ds.sizes["lat"], ds.sizes["lon"], training_path)
    return io.write_netcdf(ds, out, metadata=metadata, history="new coarse data read by diffscale.data.apply")
