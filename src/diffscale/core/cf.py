"""CF-1.8 and ACDD-1.3 metadata of every file the workflow writes, built in one place.

Writers build their dataset as before and hand it to :func:`diffscale.core.io.write_netcdf`
or :func:`diffscale.core.io.write_product`, which pass it through :func:`finalize`: cell
bounds, coordinate attributes, ``cell_methods``, ``coverage_content_type`` and the global
attributes (the config's ``metadata`` section, history, creation date, software version
and commit, geospatial and time coverage) are set there and nowhere else.

Every record of the workflow is means over its step (``data.step``: a day, a month or a
year), stamped 00:00 at the step's start. Every reader matches steps by that stamp, so it
stays; ``time_bnds`` [start, next start) and ``cell_methods: "time: mean"`` say what the
stamp stands for (CF 7.1, 7.3).
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from diffscale.core import steps
from diffscale.core.grids import centres_to_bounds

CONVENTIONS = "CF-1.8, ACDD-1.3"
# The global attributes the config's `metadata` section may set (ACDD names).
GLOBAL_KEYS = ("title", "summary", "keywords", "creator_name", "creator_email", "creator_url", "institution",
               "license", "references")
ELEVATION_ATTRS = {"standard_name": "surface_altitude", "coverage_content_type": "auxiliaryInformation"}
COORDINATE_ATTRS = {
    "lat": {"standard_name": "latitude", "long_name": "latitude", "units": "degrees_north", "axis": "Y"},
    "lon": {"standard_name": "longitude", "long_name": "longitude", "units": "degrees_east", "axis": "X"},
    "time": {"standard_name": "time", "long_name": "time", "axis": "T"},
}
# The ensemble axis keeps the name `member`, the design's sample contract that every reader
# (evaluation, product, plots) and every sample file already use; CF names the axis by its
# standard name, not its variable name, so `realization` goes there (CF/CMIP), with units.
MEMBER_ATTRS = {"standard_name": "realization", "units": "1", "long_name": "ensemble member"}
BOUNDS_DIM = "bnds"
ROOT = Path(__file__).resolve().parents[3]  # the checkout, when the library runs from one


@dataclass(frozen=True)
class Metadata:
    """What the config says about the data: ACDD global attributes and per-variable attributes."""

    attrs: Mapping[str, str] = field(default_factory=dict)
    variables: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    step: str = "day"  # the records' time step, which their time bounds span
    # How data variables are compressed (config netcdf; diffscale.core.io.codec_encoding): a
    # property of the files like their attributes, so editing it reruns nothing either.
    compression: str = "zlib"
    complevel: int = 4

    @classmethod
    def from_config(cls, config: Mapping) -> Metadata:
        """From a validated config: the ``metadata`` section and ``data.standard_name`` /
        ``data.coverage_content_type`` for ``data.variable``; elevation's are fixed."""
        section = config.get("metadata") or {}
        attrs = {}
        for key in GLOBAL_KEYS:
            value = section.get(key)
            if isinstance(value, (list, tuple)):
                value = ", ".join(map(str, value))
            if value not in (None, ""):
                attrs[key] = str(value)
        data = config.get("data") or {}
        variable = {k: str(data[k]) for k in ("standard_name", "coverage_content_type") if data.get(k)}
        variables = {"elevation": dict(ELEVATION_ATTRS)}
        if "variable" in data:
            variables[data["variable"]] = variable
        files = config.get("netcdf") or {}
        return cls(attrs, variables, data.get("step", "day"), files.get("compression", "zlib"), files.get("complevel", 4))


def finalize(ds: xr.Dataset, metadata: Metadata | None = None, history: str | None = None) -> xr.Dataset:
    """``ds`` with bounds and CF/ACDD attributes; values and data variables' dtypes unchanged.

    ``history`` says what made the file (default: the running script); it is prepended,
    dated, to the history the dataset already carries (from the files it was made from).
    Idempotent: a dataset read back from a finalized file finalizes to the same metadata.
    """
    metadata = metadata or Metadata()
    ds = add_bounds(ds.copy(), metadata.step)
    for name in ds.variables:
        ds[name].attrs = dict(ds[name].attrs)  # never write into the caller's attribute dicts
    _coordinate_attrs(ds)
    bounds = bounds_variables(ds)
    for name in ds.data_vars:
        if name not in bounds:
            _variable_attrs(ds[name], metadata.variables.get(str(name), {}))
        if "coordinates" not in ds[name].attrs:
            # xarray would tie every scalar coordinate to every variable; it belongs only to
            # the variables that name it (ensemble_statistics)
            ds[name].encoding = dict(ds[name].encoding) | {"coordinates": None}
    ds.attrs = global_attributes(ds, metadata, history)
    return ds


def bounds_variables(ds: xr.Dataset) -> set[str]:
    """Names of the variables some variable's ``bounds`` attribute points at."""
    return {str(v.attrs["bounds"]) for v in ds.variables.values() if "bounds" in v.attrs} & set(map(str, ds.variables))


def add_bounds(ds: xr.Dataset, step: str = "day") -> xr.Dataset:
    """``lat_bnds``/``lon_bnds`` halfway between centres, ``time_bnds`` one ``step`` from each time.

    A ``time_bnds`` the dataset brings is kept where each row starts at its time (periods
    longer than a day: the product's aggregates); any other is replaced.
    """
    own = ds["time_bnds"].values.astype("datetime64[ns]") if "time_bnds" in ds.variables else None
    stale = [f"{axis}_bnds" for axis in ("lat", "lon", "time") if f"{axis}_bnds" in ds.variables]
    ds = ds.drop_vars(stale)
    for axis, limit in (("lat", 90.0), ("lon", None)):
        if axis not in ds.coords or ds.sizes.get(axis, 0) < 2:
            continue  # one centre gives no spacing to infer edges from
        edges = centres_to_bounds(ds[axis].values)
        if limit is not None:
            edges = np.clip(edges, -limit, limit)
        ds[f"{axis}_bnds"] = ((axis, BOUNDS_DIM), np.stack([edges[:-1], edges[1:]], axis=1))
        ds[axis].attrs = dict(ds[axis].attrs) | {"bounds": f"{axis}_bnds"}
    if "time" in ds.coords and ds["time"].dims == ("time",):
        start = ds["time"].values.astype("datetime64[ns]")
        kept = own is not None and own.shape == (len(start), 2) and bool(np.all(own[:, 0] == start))
        ds["time_bnds"] = (("time", BOUNDS_DIM), own if kept else steps.bounds(start, step))
        ds["time"].attrs = dict(ds["time"].attrs) | {"bounds": "time_bnds"}
    return ds


def _coordinate_attrs(ds: xr.Dataset) -> None:
    for name, attrs in COORDINATE_ATTRS.items():
        if name in ds.coords:
            ds[name].attrs.update(attrs | {"coverage_content_type": "coordinate"})
            ds[name].attrs.pop("_FillValue", None)
    if "member" in ds.dims:
        if "member" not in ds.coords:
            ds.coords["member"] = ("member", np.arange(ds.sizes["member"], dtype=np.int32))
        ds["member"].attrs.update({k: v for k, v in MEMBER_ATTRS.items() if k != "long_name"}
                                  | {"long_name": ds["member"].attrs.get("long_name", MEMBER_ATTRS["long_name"]),
                                     "coverage_content_type": "coordinate"})


def _variable_attrs(var: xr.DataArray, configured: Mapping[str, str]) -> None:
    """standard_name etc. from the config, ``time: mean`` on daily values, an ACDD content type."""
    var.attrs.update(configured)
    floating = np.issubdtype(var.dtype, np.floating)
    if floating and "time" in var.dims:
        methods = str(var.attrs.get("cell_methods", ""))
        if not re.search(r"(^|\s)time\s*:", methods):
            var.attrs["cell_methods"] = f"time: mean {methods}".strip()
    # Every float the workflow writes is a model's output (reanalysis, nature run, twin,
    # samples); the local source states its own in data.coverage_content_type.
    var.attrs.setdefault("coverage_content_type", "modelResult" if floating else "auxiliaryInformation")


def ensemble_statistics(ds: xr.Dataset, methods: Mapping[str, str], members: int) -> xr.Dataset:
    """Mark variables as statistics over an ensemble of ``members`` members (CF 7.3).

    ``methods``: {variable: CF method, e.g. "mean", "standard_deviation"}. The variables
    have no ensemble dimension, so ``cell_methods`` cannot name ``member``: as CF asks for
    a reduced axis, a scalar coordinate ``realization`` (the centre of members 0..M-1,
    bounds [0, M-1]) documents the collapsed axis, and ``cell_methods`` names it (what
    Iris writes when it collapses an ensemble). compliance-checker 6.1 warns, at medium
    priority, that these bounds "should have at least two dimensions"; CF 7.1 asks for
    one dimension more than the coordinate's, which for a scalar is one.
    """
    if members < 1:
        raise ValueError(f"an ensemble statistic needs at least one member, got {members}")
    ds = ds.copy()
    ds["realization_bnds"] = ((BOUNDS_DIM,), np.array([0.0, members - 1.0]))
    ds = ds.assign_coords(realization=((), np.float64((members - 1) / 2),
                                       {**MEMBER_ATTRS, "bounds": "realization_bnds",
                                        "long_name": f"the {members} ensemble members the statistics are taken over"}))
    for name, method in methods.items():
        attrs = dict(ds[name].attrs)
        kept = re.sub(r"(^|\s)(member|realization)\s*:\s*\S+", " ", str(attrs.get("cell_methods", ""))).strip()
        attrs["cell_methods"] = f"{kept} realization: {method}".strip()
        attrs["coordinates"] = "realization"
        ds[name].attrs = attrs
    return ds


def global_attributes(ds: xr.Dataset, metadata: Metadata, history: str | None = None) -> dict:
    """The dataset's global attributes with the config's, the dated history line and the extents."""
    attrs = {k: v for k, v in ds.attrs.items() if not k.startswith(("geospatial_", "time_coverage_"))}
    attrs.update(metadata.attrs)
    now = _now()
    soft = software()
    made_by = f"diffscale {soft['diffscale_version']}" + (f", git {soft['diffscale_git_commit']}"
                                                            if "diffscale_git_commit" in soft else "")
    line = f"{now}: {history or program()} ({made_by})"
    attrs["history"] = "\n".join([line] + ([str(attrs["history"])] if attrs.get("history") else []))
    attrs["date_created"] = now
    attrs.setdefault("source", f"diffscale {soft['diffscale_version']}")
    attrs.update(soft)
    attrs.update(extents(ds))
    attrs["Conventions"] = CONVENTIONS
    return attrs


def extents(ds: xr.Dataset) -> dict:
    """ACDD geospatial and time coverage of ``ds``.

    The first and last cell centres and time stamps, not the cells' outer edges: that is
    what ACDD checkers compare them with; the bounds variables hold the edges.
    """
    out: dict = {}
    for axis, prefix in (("lat", "geospatial_lat"), ("lon", "geospatial_lon")):
        if axis not in ds.coords or ds.sizes.get(axis, 0) == 0:
            continue
        values = ds[axis].values
        out |= {f"{prefix}_min": float(np.min(values)), f"{prefix}_max": float(np.max(values)),
                f"{prefix}_units": COORDINATE_ATTRS[axis]["units"]}
    if "time" in ds.coords and ds.sizes.get("time", 0) > 0:
        times = pd.DatetimeIndex(ds["time"].values)
        out |= {"time_coverage_start": _iso(times.min()), "time_coverage_end": _iso(times.max()),
                "time_coverage_resolution": "P1D"}
    return out


def _iso(t: pd.Timestamp | dt.datetime) -> str:
    return pd.Timestamp(t).strftime("%Y-%m-%dT%H:%M:%SZ")


def _now() -> str:
    """UTC now, or SOURCE_DATE_EPOCH when set (reproducible files: the same inputs, the same bytes)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch and epoch.isdigit():
        return _iso(dt.datetime.fromtimestamp(int(epoch), dt.timezone.utc).replace(tzinfo=None))
    return _iso(dt.datetime.now(dt.timezone.utc).replace(tzinfo=None))


def program() -> str:
    """The running script's name; Snakemake runs a rule's script as a copy named tmpXXXX.<script>.py."""
    path = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path("python")
    name = path.parent.name if path.name == "__main__.py" else path.name  # python -m <package>
    return re.sub(r"^tmp[A-Za-z0-9_-]+\.(?=\w+\.py$)", "", name)


@functools.lru_cache(maxsize=1)
def software() -> dict[str, str]:
    """diffscale's version and, from a git checkout, its commit (suffix -dirty with local edits).

    Read once per process, without torch; any failure leaves the commit out rather than
    stopping a write.
    """
    out = {"diffscale_version": _version()}
    commit = _git_commit()
    if commit:
        out["diffscale_git_commit"] = commit
    return out


def _version() -> str:
    # This checkout's pyproject first: an editable install of another clone may be on the path.
    try:
        with open(ROOT / "pyproject.toml", "rb") as fh:
            project = tomllib.load(fh).get("project", {})
        if project.get("name") == "diffscale" and project.get("version"):
            return str(project["version"])
    except (OSError, tomllib.TOMLDecodeError):
        pass
    try:
        return importlib_metadata.version("diffscale")
    except importlib_metadata.PackageNotFoundError:
        return "unknown"


def _git_commit() -> str | None:
    if not (ROOT / ".git").exists():
        return None
    try:
        run = functools.partial(subprocess.run, cwd=ROOT, capture_output=True, text=True, timeout=10, check=True)
        sha = run(["git", "rev-parse", "HEAD"]).stdout.strip()
        dirty = run(["git", "status", "--porcelain", "--untracked-files=no"]).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{sha}-dirty" if sha and dirty else sha or None
