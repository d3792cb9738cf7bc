"""Monthly and annual aggregates of the product, for every member, with the ensemble kept.

What exposure and impact studies take from a daily record: the mean over a month or a
year and the number of days above a threshold. Both are computed per member (a member
is one possible daily history, so its monthly mean and its exceedance count belong
together), then summarised over the members: their mean and quantiles.

``results/downscaled/{region}.{monthly,annual}.nc`` hold, per period (``time`` is the
period's first day, ``time_bnds`` the period):

* ``{var}_members`` (member, time, lat, lon): each member's mean over the days with data;
* ``{var}`` (time, lat, lon): the ensemble mean of those (``cell_methods`` time: mean
  realization: mean);
* ``{var}_quantiles`` (quantile, time, lat, lon): their quantiles over members;
* ``{var}_days_above`` (threshold, member, time, lat, lon): per member, the days whose value
  exceeds each of ``product.thresholds`` (absent without thresholds), and its ensemble
  mean ``{var}_days_above_mean``. CF has no standard name for such counts of most
  variables, so they carry none (the ACDD check's one finding on these files);
* ``days_with_data`` (time): how many days of the period the product has values for.

For a monthly record (``data.step: month``) "days" are its steps: the monthly aggregate
is the record itself, the annual one the mean of its months and the count of months above
a threshold. An annual record has the annual aggregate only (its members, unchanged).
  Months of no configured season have none (their aggregates are missing), and an annual
  aggregate of a record with seasons covers only their days: the count says so.

Read a year at a time, so memory follows the region and the members, not the record's
length.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from diffscale.core import cf, io

log = logging.getLogger("diffscale.method.aggregates")

PERIODS = ("monthly", "annual")
QUANTILES = (0.05, 0.5, 0.95)


def periods_for(step: str) -> tuple[str, ...]:
    """The aggregates a record of ``step`` has: both, but no monthly means of annual steps."""
    return PERIODS[1:] if step == "year" else PERIODS


def _period_starts(times: pd.DatetimeIndex, period: str) -> pd.DatetimeIndex:
    return times.to_period("M" if period == "monthly" else "Y").to_timestamp()


def aggregate_members(members: xr.DataArray, period: str, thresholds: Sequence[float]) -> xr.Dataset:
    """Per-member means and exceedance counts of ``members`` (member, time, lat, lon) per period.

    A period's mean is over the days with values (NaN days, where no model ran, are left
    out); a pixel with no value in the period is NaN, and its exceedance count 0.
    """
    if period not in PERIODS:
        raise ValueError(f"unknown aggregation period {period!r}: expected one of {sorted(PERIODS)}")
    starts = _period_starts(pd.DatetimeIndex(members.time.values), period)
    grouped = members.assign_coords(time=starts).groupby("time")
    valid = members.notnull().any(dim=("member", "lat", "lon")).assign_coords(time=starts)
    out = xr.Dataset({"mean": grouped.mean(skipna=True), "days_with_data": valid.groupby("time").sum().astype(np.int32)})
    if len(thresholds):
        above = [(members > t).assign_coords(time=starts).groupby("time").sum().astype(np.int16) for t in thresholds]
        out["days_above"] = xr.concat(above, dim=pd.Index(np.asarray(thresholds, np.float64), name="threshold"))
    return out


def _quantiles(per_member: xr.DataArray, quantiles: Sequence[float]) -> xr.DataArray:
    """(quantile, time, lat, lon) over members; NaN where no member has a value (no season).

    np.quantile where every member or none has a value (the product's case), nanquantile
    only where some have: the same values as ``DataArray.quantile``, whose NaN path goes
    pixel by pixel (62 s for 24 monthly fields of area1's size, against 0.8 s).
    """
    values = per_member.transpose("member", "time", "lat", "lon").values
    q = np.quantile(values, list(quantiles), axis=0).astype(values.dtype)  # what nanquantile returns
    missing = np.isnan(values)
    partial = missing.any(axis=0) & ~missing.all(axis=0)
    if partial.any():
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)
            q[:, partial] = np.nanquantile(values[:, partial], list(quantiles), axis=0)
    coords = {"quantile": np.asarray(quantiles, np.float64)} | {d: per_member[d].values for d in ("time", "lat", "lon")
                                                                  if d in per_member.coords}
    return xr.DataArray(q, dims=("quantile", "time", "lat", "lon"), coords=coords)


def aggregate_product(product: xr.Dataset, variable: str, period: str, thresholds: Sequence[float] = (),
                      quantiles: Sequence[float] = QUANTILES, path: str | os.PathLike | None = None) -> xr.Dataset:
    """The aggregate dataset (module doc) of a product dataset (read from ``path``), a year of days at a time."""
    name = f"{variable}_members"
    if name not in product.data_vars or product[name].dims != ("member", "time", "lat", "lon"):
        raise io.DataValidationError(path, f"not a diffscale product: no variable '{name}' with dimensions "
                                           "(member, time, lat, lon)")
    members = product[name]
    times = pd.DatetimeIndex(members.time.values)
    parts = [aggregate_members(members.isel(time=np.flatnonzero(times.year == year)).load(), period, thresholds)
             for year in np.unique(times.year)]
    agg = xr.concat(parts, dim="time")
    attrs = {k: members.attrs[k] for k in ("units", "standard_name") if k in members.attrs}
    long = str(product[variable].attrs.get("long_name", variable)).removesuffix(", ensemble mean")
    label = "monthly" if period == "monthly" else "annual"
    data = {
        f"{variable}_members": (agg["mean"].transpose("member", "time", "lat", "lon"),
                                attrs | {"long_name": f"{long}, {label} mean over the days with data, per member",
                                         "cell_methods": "time: mean"}),
        variable: (agg["mean"].mean("member"), attrs | {"long_name": f"{long}, {label} mean, ensemble mean",
                                                         "cell_methods": "time: mean"}),
        f"{variable}_quantiles": (_quantiles(agg["mean"], quantiles),
                                  attrs | {"long_name": f"{long}, {label} mean, quantiles over the ensemble members",
                                           "cell_methods": "time: mean"}),
        # CF's modifier for "how many values a value was derived from"
        "days_with_data": (agg["days_with_data"], {"long_name": "days of the period with values in the product",
                                                   "units": "1"} | ({"standard_name": f"{attrs['standard_name']} number_of_observations"}
                                                                    if "standard_name" in attrs else {})),
    }
    if "days_above" in agg:
        counts = agg["days_above"].transpose("threshold", "member", "time", "lat", "lon")
        units = attrs.get("units", "1")
        data[f"{variable}_days_above"] = (counts, {"long_name": f"days with {long} above the threshold, per member",
                                                   "units": "1", "cell_methods": "time: sum"})
        data[f"{variable}_days_above_mean"] = (counts.mean("member").astype(np.float32),
                                               {"long_name": f"days with {long} above the threshold, ensemble mean",
                                                "units": "1", "cell_methods": "time: sum"})
    ds = xr.Dataset({name: (da.dims, da.values.astype(np.float32) if da.dtype.kind == "f" else da.values, a)
                     for name, (da, a) in data.items()},
                    coords={"time": agg.time.values, "lat": product.lat.values, "lon": product.lon.values,
                            "member": product.member.values,
                            "quantile": ("quantile", np.asarray(quantiles, np.float64),
                                         {"long_name": "quantile over the ensemble members", "units": "1"})})
    if "days_above" in agg:
        ds = ds.assign_coords(threshold=("threshold", agg.threshold.values,
                                         {"long_name": f"threshold on daily {long}", "units": units}))
    ends = (pd.DatetimeIndex(ds.time.values) + pd.offsets.MonthBegin(1) if period == "monthly"
            else pd.DatetimeIndex(ds.time.values) + pd.offsets.YearBegin(1))
    for name in (f"{variable}_members", variable):
        ds[name].attrs["ancillary_variables"] = "days_with_data"
    ds["time_bnds"] = (("time", cf.BOUNDS_DIM), np.stack([ds.time.values, ends.values], axis=1))
    ds["time"].attrs["bounds"] = "time_bnds"
    stats = {variable: "mean"}
    if f"{variable}_days_above_mean" in ds:
        stats[f"{variable}_days_above_mean"] = "mean"
    return cf.ensemble_statistics(ds, stats, ds.sizes["member"])


def aggregate_file(product_path: str | os.PathLike, variable: str, period: str, thresholds: Sequence[float],
                   output: str | os.PathLike, metadata: cf.Metadata | None = None) -> Path:
    """Rule aggregate: ``{region}.{period}.nc`` from the product (netCDF file or zarr directory)."""
    product = io.open_product(product_path)
    ds = aggregate_product(product, variable, period, thresholds, path=product_path)
    out = io.write_netcdf(ds, output, metadata=metadata,
                          history=f"{period} aggregates of {Path(product_path).name} (diffscale.method.aggregates)")
    log.info("%s: %d %s periods, %d members, thresholds %s", out, ds.sizes["time"], period, ds.sizes["member"],
             list(thresholds))
    return out
