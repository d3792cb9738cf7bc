"""The sample contract: predictions of a model as an ensemble on a ``member`` dimension.

``results/samples/{region}/{season}/{model}/{test,beyond}.nc`` hold the variable as
(member, time, lat, lon) in physical units; deterministic models have one member.

The dimension stays ``member`` (the design's contract, what every reader selects on);
its coordinate carries the CF standard name ``realization`` with units "1"
(:data:`diffscale.core.cf.MEMBER_ATTRS`), which is how CF tools recognise an ensemble axis.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
import pandas as pd
import xarray as xr

from diffscale.core import cf, io

DIMS = ("member", "time", "lat", "lon")


def member_dataset(members: np.ndarray, times: pd.DatetimeIndex, lat: np.ndarray, lon: np.ndarray,
                   variable: str, attrs: dict, global_attrs: dict | None = None) -> xr.Dataset:
    """A CF dataset of an ensemble (M, T, Y, X) in physical units."""
    members = np.asarray(members)
    if members.ndim != 4:
        raise ValueError(f"members must be (member, time, lat, lon), got shape {members.shape}")
    base = io.field_dataset(members[0], times, lat, lon, variable, attrs, global_attrs)
    ds = base.drop_vars(variable)
    ds[variable] = (DIMS, members, attrs)
    ds = ds.assign_coords(member=("member", np.arange(members.shape[0], dtype=np.int32), dict(cf.MEMBER_ATTRS)))
    return ds


def read_members(path: str | os.PathLike, variable: str, days: list[str] | None = None) -> xr.DataArray:
    """Read and validate a sample file; with ``days`` (ISO dates), check it holds exactly those days."""
    da = io.read_field(path, variable, dims=DIMS)
    if da.sizes["member"] < 1:
        raise io.DataValidationError(path, "no ensemble member")
    if days is not None:
        have = pd.DatetimeIndex(da.time.values).normalize()
        want = pd.DatetimeIndex(pd.to_datetime(days))
        if len(have) != len(want) or not (have == want).all():
            missing = want.difference(have)
            extra = have.difference(want)
            raise io.DataValidationError(path, f"holds {len(have)} days, expected the {len(want)} days of the day list "
                                               f"({len(missing)} missing, first {missing[0].date() if len(missing) else '-'}; "
                                               f"{len(extra)} unexpected, first {extra[0].date() if len(extra) else '-'})")
    return da


class GrowingMemberFile:
    """A sample file written a slab of days at a time: (M, T, H, W) physical values appended
    along an unlimited time axis, so a writer of 25 years holds a month, not the record.

    ``path`` is where the slabs go (a temporary path: the caller renames it when complete,
    e.g. with :func:`diffscale.core.io.atomic_path`). Slabs must come in time order. With no
    slab, :meth:`close` writes the empty file the contract asks for.
    """

    def __init__(self, path: str | os.PathLike, lat: np.ndarray, lon: np.ndarray, variable: str, attrs: dict,
                 global_attrs: dict | None = None, metadata: cf.Metadata | None = None, history: str | None = None,
                 members: int = 1, chunks: Mapping[str, int] | None = None):
        self.path, self.lat, self.lon, self.variable = path, lat, lon, variable
        self.attrs, self.global_attrs, self.metadata, self.history = attrs, global_attrs, metadata, history
        self.members, self.days = members, 0
        # chunks of the whole file (chunk_sizes of its final shape) where its length is known; else a day
        self.chunks = chunks if chunks is not None else {"member": 1, "time": 1}

    def add(self, days: pd.DatetimeIndex, values: np.ndarray) -> None:
        """Append (M, T, H, W) values of ``days`` (after every day added so far)."""
        if not len(days):
            return
        if self.days:
            io.append_days(self.path, self.variable, pd.DatetimeIndex(days), values, (self.metadata or cf.Metadata()).step)
        else:
            io.write_netcdf(member_dataset(values, pd.DatetimeIndex(days), self.lat, self.lon, self.variable, self.attrs,
                                           self.global_attrs), self.path, metadata=self.metadata, history=self.history,
                            chunks=self.chunks, unlimited_dims=("time",))
        self.days += len(days)

    def close(self) -> int:
        """Write the empty file where no day came; returns the days written."""
        if not self.days:
            empty = np.empty((self.members, 0, len(self.lat), len(self.lon)), np.float32)
            io.write_netcdf(member_dataset(empty, pd.DatetimeIndex([]), self.lat, self.lon, self.variable, self.attrs,
                                           self.global_attrs), self.path, metadata=self.metadata, history=self.history)
        return self.days

