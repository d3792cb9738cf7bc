"""Figures of the product: its monthly (or annual) aggregates, members and ensemble."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from diffscale.core import io
from diffscale.plots.style import PathLike, plt, save


def aggregate_overview(aggregate_path: PathLike, variable: str, region: str, out: PathLike) -> Path:
    """Region means of the aggregate per period (each member, the ensemble's 5-95 % band and
    mean), the map of its mean over all periods, and the days above each threshold."""
    ds = io.open_dataset(aggregate_path)
    weights = np.cos(np.deg2rad(ds.lat))
    members = ds[f"{variable}_members"].weighted(weights).mean(("lat", "lon"))  # (member, time)
    times = pd.DatetimeIndex(ds.time.values)
    counts = f"{variable}_days_above_mean"
    panels = 3 if counts in ds else 2
    fig, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 3.8), constrained_layout=True)
    low, high = np.nanpercentile(members.values, [5, 95], axis=0)
    axes[0].fill_between(times, low, high, color="tab:red", alpha=0.25, step="mid", label="members, 5-95 %")
    for m in members.values:
        axes[0].plot(times, m, color="tab:red", lw=0.5, alpha=0.4)
    axes[0].plot(times, members.mean("member"), color="tab:red", lw=1.5, marker=".", label="ensemble mean")
    axes[0].set_title(f"{region}: region mean per period")
    axes[0].set_ylabel(f"{variable} ({ds[variable].attrs.get('units', '')})")
    axes[0].legend(fontsize=8)
    with_data = ds[variable].where(ds.days_with_data > 0, drop=True)
    mean_map = with_data.mean("time") if with_data.sizes["time"] else ds[variable].isel(time=0)
    mean_map.plot.pcolormesh(ax=axes[1], cmap="YlOrBr", cbar_kwargs={"label": variable})
    axes[1].set_title(f"ensemble mean over the {with_data.sizes['time']} periods with data")
    if counts in ds:
        for t in ds.threshold.values:
            series = ds[counts].sel(threshold=t).weighted(weights).mean(("lat", "lon"))
            axes[2].plot(times, series, marker=".", label=f"> {t:g}")
        axes[2].set_title("days above the threshold (ensemble mean, region mean)")
        axes[2].set_ylabel("days")
        axes[2].legend(fontsize=8)
    for ax in axes[::2]:
        ax.tick_params(axis="x", labelrotation=30)
    return save(fig, out)
