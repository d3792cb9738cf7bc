"""MERRA-2 and G5NR from NASA servers over OPeNDAP (DAP2), one monthly file per job.

Only what the workflow needs crosses the network: the server cuts the variable to an
index box (the union of the region boxes plus a margin) and to the day's time steps;
the hourly (MERRA-2) or 30-minute (G5NR) steps are averaged to daily means here.
MERRA-2 has one granule per day; G5NR on NCCS is one aggregated dataset per
collection, so its time axis picks the day's steps. The protocol, the login and the
retries are :mod:`diffscale.data.sources.opendap`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from diffscale.core import cf, io
from diffscale.core.grids import Box, Grid, g5nr_grid, merra2_grid
from diffscale.data.sources.opendap import (DownloadError, EarthdataSession, Fetcher, RemoteVariable, daily_mean, day_steps,
                                            decode_times, earthdata_credentials, index_range)

log = logging.getLogger("diffscale.nasa")

GRAVITY = 9.80665  # m s-2, standard gravity: PHIS / g = surface height


# ---------------------------------------------------------------------------- collections


@dataclass(frozen=True)
class Collection:
    """One configured source: URL template, variable and time stepping (data.nasa.<name>)."""

    url: str
    variable: str
    steps_per_day: int = 1
    fields: Mapping[str, str] = field(default_factory=dict)
    streams: tuple[tuple[str, int], ...] = ()
    stream_overrides: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def from_config(cls, cfg: Mapping) -> Collection:
        fields = {k: str(v) for k, v in cfg.items() if isinstance(v, (str, int, float))
                  and k not in ("url", "variable", "steps_per_day")}
        return cls(cfg["url"], cfg["variable"], int(cfg.get("steps_per_day", 1)), fields,
                   tuple((str(s["from"]), int(s["stream"])) for s in cfg.get("streams", [])),
                   {str(k): int(v) for k, v in cfg.get("stream_overrides", {}).items()})

    def stream(self, day: pd.Timestamp) -> int | None:
        """MERRA-2 production stream of a date (100/200/300/400, or a re-processing override)."""
        if f"{day:%Y-%m}" in self.stream_overrides:
            return self.stream_overrides[f"{day:%Y-%m}"]
        chosen = None
        for start, number in sorted(self.streams):
            if day >= pd.Timestamp(start):
                chosen = number
        if self.streams and chosen is None:
            raise ValueError(f"{day.date()} is before the first configured stream ({sorted(self.streams)[0][0]})")
        return chosen

    def url_for(self, day: pd.Timestamp) -> str:
        return self.url.format(date=day, stream=self.stream(day), **self.fields)


def coarse_box(boxes: list[Box], margin: float) -> Box:
    """The MERRA-2 download box: the union of the regions plus the margin."""
    return Box.union(boxes).padded(margin)


def fine_box(boxes: list[Box], margin: float) -> Box:
    """The G5NR download box: the edges of the MERRA-2 cells, so fine covers coarse (as in the twin)."""
    g = merra2_grid(coarse_box(boxes, margin))
    lb, ob = g.lat_bounds, g.lon_bounds
    return Box((max(-90.0, lb[0]), min(90.0, lb[-1])), (max(-180.0, ob[0]), min(180.0, ob[-1])))


@dataclass
class _Opened:
    var: RemoteVariable
    lat: np.ndarray
    lon: np.ndarray
    times: pd.DatetimeIndex | None


class _Reader:
    """Per-URL metadata cache, so an aggregated dataset is described once per job."""

    def __init__(self, fetcher: Fetcher, collection: Collection):
        self.fetcher, self.collection, self._open = fetcher, collection, {}

    def open(self, url: str) -> _Opened:
        if url not in self._open:
            var = RemoteVariable.open(self.fetcher, url, self.collection.variable)
            if len(var.dims) < 2:
                raise DownloadError(url, "unexpected layout", f"'{var.name}' has dims {var.dims}, expected (..., lat, lon)")
            coords = var.coordinates(self.fetcher)
            lat, lon = (np.asarray(coords[d], dtype=np.float64) for d in var.dims[-2:])
            times = None
            if len(var.dims) > 2 and var.dims[0] in coords and var.shape[0] > 1:
                times = decode_times(coords[var.dims[0]], var.coord_attrs.get(var.dims[0], {}))
            self._open[url] = _Opened(var, lat, lon, times)
        return self._open[url]


def _box_ranges(o: _Opened, box: Box) -> tuple[tuple[int, int], tuple[int, int]]:
    try:
        return index_range(o.lat, *box.lat), index_range(o.lon, *box.lon)
    except ValueError as exc:
        raise DownloadError(o.var.url, "box outside the data", f"lat {list(box.lat)} lon {list(box.lon)}: {exc}") from None


def _ascending(data: np.ndarray, lat: np.ndarray, lon: np.ndarray):
    """Flip (..., lat, lon) data so both coordinates increase."""
    if lat[0] > lat[-1]:
        data, lat = data[..., ::-1, :], lat[::-1]
    if lon[0] > lon[-1]:
        data, lon = data[..., ::-1], lon[::-1]
    return data, lat, lon


def fetch_day(reader: _Reader, day: pd.Timestamp, box: Box) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Daily mean over ``box`` for one day: (lat, lon) data, lat, lon."""
    o = reader.open(reader.collection.url_for(day))
    (i0, i1), (j0, j1) = _box_ranges(o, box)
    leading = [(0, 0)] * (len(o.var.dims) - 2)
    if o.times is not None:
        try:
            leading[0] = day_steps(o.times, day, reader.collection.steps_per_day)
        except ValueError as exc:
            raise DownloadError(o.var.url, "time steps", str(exc)) from None
    data = o.var.read(reader.fetcher, leading + [(i0, i1), (j0, j1)])
    data = data.reshape((-1,) + data.shape[-2:])  # (steps, lat, lon)
    return _ascending(daily_mean(data), o.lat[i0:i1 + 1], o.lon[j0:j1 + 1])


def download_month(collection: Collection, fetcher: Fetcher, year: int, month: int, period: tuple[str, str],
                   box: Box, out_path: str | Path, variable: str, attrs: dict, expected: Grid | None = None,
                   metadata: cf.Metadata | None = None) -> Path:
    """Fetch, average, validate and atomically write one month (the days inside ``period``).

    ``expected``: the grid the month must come on (the product's cells inside ``box``);
    ``metadata``: the config's CF/ACDD attributes.
    """
    start, end = (pd.Timestamp(p) for p in period)
    month_days = pd.date_range(f"{year:04d}-{month:02d}-01", periods=pd.Timestamp(year, month, 1).days_in_month)
    days = month_days[(month_days >= start) & (month_days <= end)]
    if days.empty:
        raise ValueError(f"{year:04d}-{month:02d} has no day inside {period[0]}..{period[1]}")
    reader = _Reader(fetcher, collection)
    fields, lat, lon = [], None, None
    for day in days:
        field_, dlat, dlon = fetch_day(reader, day, box)
        if lat is not None and not (np.array_equal(dlat, lat) and np.array_equal(dlon, lon)):
            raise DownloadError(collection.url_for(day), "grid changed", "the grid differs from the month's first day")
        lat, lon = dlat, dlon
        fields.append(field_)
        log.info("%s: %s daily mean of %s over %d x %d cells", day.date(), collection.variable,
                 collection.steps_per_day, lat.size, lon.size)
    ds = io.field_dataset(np.stack(fields).astype(np.float32), days, lat, lon, variable, attrs,
                          {"source": collection.url.split("{")[0]})
    return write_validated(ds, out_path, variable, days, box, expected, metadata,
                           history="daily means of server-side subsets (diffscale.data.sources.nasa)")


def download_elevation(collection: Collection, fetcher: Fetcher, box: Box, out_path: str | Path,
                       day: str, expected: Grid | None = None, metadata: cf.Metadata | None = None) -> Path:
    """Surface geopotential / g over ``box`` -> ``elevation`` (lat, lon) in metres."""
    reader = _Reader(fetcher, collection)
    phis, lat, lon = fetch_day(reader, pd.Timestamp(day), box)
    ds = io.field_dataset((phis / GRAVITY).astype(np.float32), None, lat, lon, "elevation",
                          {"units": "m", "long_name": "surface height above sea level (PHIS / g)", "standard_name": "surface_altitude"},
                          {"source": collection.url.split("{")[0]})
    return write_validated(ds, out_path, "elevation", None, box, expected, metadata,
                           history="PHIS / g of a server-side subset (diffscale.data.sources.nasa)")


def write_validated(ds: xr.Dataset, out_path: str | Path, variable: str, days: pd.DatetimeIndex | None, box: Box,
                    expected: Grid | None = None, metadata: cf.Metadata | None = None,
                    history: str | None = None) -> Path:
    """Check variable, grid and days, then write atomically (nothing is left on failure)."""
    dims = ("time", "lat", "lon") if days is not None else ("lat", "lon")
    da = io.validate_field(ds, variable, out_path, dims)
    if days is not None and not pd.DatetimeIndex(da.time.values).equals(days):
        raise io.DataValidationError(out_path, f"days {list(da.time.values)} differ from the expected {len(days)} days")
    lat, lon = da.lat.values, da.lon.values
    if lat[0] < box.lat[0] - 1e-6 or lat[-1] > box.lat[1] + 1e-6 or lon[0] < box.lon[0] - 1e-6 or lon[-1] > box.lon[1] + 1e-6:
        raise io.DataValidationError(out_path, f"grid {lat[0]}..{lat[-1]} x {lon[0]}..{lon[-1]} is not inside the box {box}")
    if expected is not None and not (lat.shape == expected.lat.shape and lon.shape == expected.lon.shape
                                     and np.allclose(lat, expected.lat, atol=1e-6) and np.allclose(lon, expected.lon, atol=1e-6)):
        raise io.DataValidationError(out_path, f"grid {lat.size} x {lon.size} ({lat[0]}..{lat[-1]}, {lon[0]}..{lon[-1]}) is not "
                                               f"the expected {expected.lat.size} x {expected.lon.size} ({expected.lat[0]}.."
                                               f"{expected.lat[-1]}, {expected.lon[0]}..{expected.lon[-1]})")
    if not np.all(np.isfinite(da.values) | np.isnan(da.values)):
        raise io.DataValidationError(out_path, "values are neither finite nor masked")
    return io.write_netcdf(ds, out_path, metadata=metadata, history=history)


def open_fetcher(nasa: Mapping) -> Fetcher:
    """A logged-in fetcher from the data.nasa config section."""
    creds = earthdata_credentials(nasa["auth_host"])
    session = EarthdataSession(creds, nasa["auth_host"])
    return Fetcher(session, retries=int(nasa["retries"]), backoff_s=float(nasa["backoff_s"]), timeout_s=float(nasa["timeout_s"]))


def run_download(nasa: Mapping, field: str, boxes: list[Box], margin: float, out_path: str | Path,
                 variable: str, attrs: dict, period: tuple[str, str], year: int | None = None,
                 month: int | None = None, metadata: cf.Metadata | None = None) -> int:
    """One workflow job: field 'coarse' (MERRA-2), 'fine' (G5NR) or 'elevation'.

    Returns the number of HTTP requests made (for the log). ``metadata``: the config's
    CF/ACDD attributes.
    """
    fetcher = open_fetcher(nasa)
    if field == "elevation":
        box = fine_box(boxes, margin)
        download_elevation(Collection.from_config(nasa["elevation"]), fetcher, box, out_path, period[0], g5nr_grid(box),
                           metadata)
    elif field in ("coarse", "fine"):
        collection = Collection.from_config(nasa["merra2" if field == "coarse" else "g5nr"])
        box = coarse_box(boxes, margin) if field == "coarse" else fine_box(boxes, margin)
        grid = merra2_grid(box) if field == "coarse" else g5nr_grid(box)
        download_month(collection, fetcher, int(year), int(month), period, box, out_path, variable, attrs, grid, metadata)
    else:
        raise ValueError(f"unknown field {field!r}: expected coarse, fine or elevation")
    log.info("%d HTTP requests, %.1f kB received", fetcher.requests_made, fetcher.bytes_received / 1e3)
    return fetcher.requests_made
