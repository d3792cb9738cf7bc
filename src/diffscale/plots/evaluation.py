"""Figures of the evaluation (report category "4. Evaluation"): metric bars and maps of test days.

The paper's diagnostics (spectra, variograms, ...) are :mod:`diffscale.plots.diagnostics`.
Models appear in registry order and colour (:mod:`diffscale.core.registry`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.collections import QuadMesh

from diffscale.core import io, registry
from diffscale.core.days import DaySplit
from diffscale.core.samples import read_members
from diffscale.core.transform import to_metric_space
from diffscale.plots.diagnostics import diagnostics_figures
from diffscale.plots.style import METRIC_LABELS, PathLike, placeholder, plt, save

METRICS = ["r2", "r2_pearson", "rmse", "mae", "crps", "crps_fair", "crpss_bicubic", "rmse_ss_bicubic", "spread_skill",
           "ssim", "spectral_ratio", "kge", "nse", "coarse_rmse", "ssim_member"]
PERIOD_TITLES = {"test": "held-out test days in the fine record",
                 "beyond": "days outside the fine record (autoregressive run)"}


def metric_bars(summary_path: PathLike, period: str, out: PathLike, reference_path: PathLike | None = None) -> Path:
    """Bars of every metric per model, grouped by region and season, for one period.

    ``reference_path``: the twin's twin.json, whose whole-record bicubic, ceiling and oracle R2 are drawn as lines.
    """
    df = pd.read_csv(summary_path)
    df = df[df["period"] == period]
    title = PERIOD_TITLES[period]
    if df.empty:
        return placeholder(out, f"Scores on {title}", "No scores for this period: no model's samples were scored "
                           "here (for 'beyond', fine truth outside the fine record exists only for the twin or local "
                           "files that extend past it).")
    groups = list(dict.fromkeys(zip(df["region"], df["season"])))
    models = registry.order(list(dict.fromkeys(df["model"])))
    rows = -(-len(METRICS) // 4)
    fig, axes = plt.subplots(rows, 4, figsize=(18, 3.7 * rows), constrained_layout=True)
    for ax in axes.ravel()[len(METRICS):]:
        ax.axis("off")
    width = 0.8 / max(len(models), 1)
    reference = io.read_json(reference_path)["scores"] if reference_path else None
    for ax, metric in zip(axes.ravel(), METRICS):
        for i, model in enumerate(models):
            sub = df[df["model"] == model].set_index(["region", "season"])
            values = [float(sub[metric].get(g, np.nan)) if metric in sub else np.nan for g in groups]
            ax.bar(np.arange(len(groups)) + (i - (len(models) - 1) / 2) * width, values, width,
                   color=registry.colour(model), label=model)
        if metric in ("spread_skill", "spectral_ratio"):
            ax.axhline(1.0, color="k", lw=0.8, ls="--")
        if metric.endswith("_bicubic"):
            ax.axhline(0.0, color="tab:gray", lw=0.8)
        if metric == "r2" and reference:
            ax.axhline(reference["oracle_r2"], color="k", ls=":", lw=1.2, label="twin oracle (whole record)")
            ax.axhline(reference["ceiling_r2"], color=registry.colour("ceiling"), ls=":", lw=1.2,
                       label="twin ceiling (whole record)")
            ax.axhline(reference["bicubic_r2"], color="tab:gray", ls=":", lw=1.2, label="twin bicubic (whole record)")
        ax.set_xticks(np.arange(len(groups)), [f"{r}\n{s}" for r, s in groups], fontsize=8)
        ax.set_title(METRIC_LABELS.get(metric, metric), fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    handles, labels = axes.ravel()[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels))
    fig.suptitle(f"Scores on {title}, log10 space where the variable is modelled in log10")
    return save(fig, out)


def metric_figures(summary_path: PathLike, outs: Mapping[str, PathLike],
                   reference_path: PathLike | None = None) -> dict[str, Path]:
    """Rule plot_metrics: :func:`metric_bars` of each period in ``outs`` ({period: path})."""
    return {period: metric_bars(summary_path, period, out, reference_path) for period, out in outs.items()}


def _pick_days(days: list[str], n: int) -> list[str]:
    """At most ``n`` days spread evenly over ``days``, first and last included."""
    if not days:
        return []
    idx = np.unique(np.linspace(0, len(days) - 1, min(n, len(days))).round().astype(int))
    return [days[i] for i in idx]


@dataclass(frozen=True)
class _MapStyle:
    """One region's maps: the fine grid's extent, the metric space and its label."""

    lat: np.ndarray
    lon: np.ndarray
    log10: bool
    floor: float
    label: str

    def space(self, x: np.ndarray) -> np.ndarray:
        return to_metric_space(x, self.log10, self.floor)

    def draw(self, ax: plt.Axes, field: np.ndarray, vmin: float, vmax: float, title: str, cmap: str = "YlOrBr",
             lat: np.ndarray | None = None, lon: np.ndarray | None = None) -> QuadMesh:
        """``field`` on the fine grid (or on ``lat``/``lon``), cut to the fine grid's extent."""
        m = ax.pcolormesh(self.lon if lon is None else lon, self.lat if lat is None else lat, field, vmin=vmin,
                          vmax=vmax, cmap=cmap, shading="nearest")
        ax.set(title=title, xlim=(self.lon.min(), self.lon.max()), ylim=(self.lat.min(), self.lat.max()))
        return m


def _inputs_row(fig: plt.Figure, ax: np.ndarray, day: str, fine: xr.DataArray, coarse: xr.DataArray,
                style: _MapStyle) -> tuple[float, float]:
    """The coarse input and the truth of ``day``; returns the day's colour range (the truth's 1-99 %)."""
    t = pd.Timestamp(day)
    truth = style.space(fine.sel(time=t).values)
    vmin, vmax = np.nanpercentile(truth, [1, 99])
    m = style.draw(ax[0], style.space(coarse.sel(time=t).values), vmin, vmax, f"{day}: coarse input (native grid)",
                   lat=coarse.lat, lon=coarse.lon)
    style.draw(ax[1], truth, vmin, vmax, f"{day}: fine truth")
    for a in ax[2:]:
        a.axis("off")
    fig.colorbar(m, ax=ax[:2], label=style.label, shrink=0.9)
    return vmin, vmax


def _model_rows(fig: plt.Figure, rows: np.ndarray, day: str, members: Mapping[str, xr.DataArray], n_members: int,
                vmin: float, vmax: float, style: _MapStyle) -> None:
    """Per model: ensemble mean, ``n_members`` members and the spread (one spread scale per day)."""
    t = pd.Timestamp(day)
    spreads = []
    for ax, (model, da) in zip(rows, members.items()):
        x = style.space(da.sel(time=t).values)  # (M, Y, X)
        n = x.shape[0]
        style.draw(ax[0], x.mean(axis=0), vmin, vmax, f"{model}: ensemble mean ({n} member{'s' if n > 1 else ''})")
        for j in range(n_members):
            if j < n and n > 1:
                style.draw(ax[1 + j], x[j], vmin, vmax, f"{model}: member {j + 1}")
            else:
                ax[1 + j].axis("off")
        if n > 1:
            spreads.append((ax[-1], x.std(axis=0, ddof=1), model))
        else:
            ax[-1].axis("off")
            ax[-1].text(0.5, 0.5, f"{model}: deterministic\n(no members, no spread)", ha="center", va="center",
                        transform=ax[-1].transAxes)
    if spreads:
        spread_max = max([0.0, *(float(np.nanmax(s)) for _, s, _ in spreads)])
        for a, s, model in spreads:
            m = style.draw(a, s, 0, spread_max, f"{model}: ensemble spread (std)", cmap="viridis")
        fig.colorbar(m, ax=[a for a, _, _ in spreads], label=f"spread of {style.label}", shrink=0.9)


def evaluation_maps(samples: Mapping[str, Mapping[str, PathLike]], fine_path: PathLike, days_path: PathLike,
                    coarse_files: Sequence[PathLike], variable: str, units: str, log10: bool, floor: float,
                    n_days: int, n_members: int, out: PathLike) -> Path:
    """For chosen test days: coarse input, truth, and per model ensemble mean, members and spread."""
    days = _pick_days(list(DaySplit.from_json(days_path).test.strftime("%Y-%m-%d")), n_days)
    if not days or not samples:
        return placeholder(out, "Maps", "No test days or no model samples to show.")
    fine = io.read_field(fine_path, variable)
    lat, lon = fine.lat.values, fine.lon.values
    coarse = io.read_record(coarse_files, variable)
    dlat, dlon = float(np.diff(coarse.lat).max()), float(np.diff(coarse.lon).max())
    coarse = coarse.sel(lat=slice(lat.min() - dlat, lat.max() + dlat), lon=slice(lon.min() - dlon, lon.max() + dlon))
    members = {m: read_members(samples[m]["test"], variable) for m in registry.order(list(samples))}
    # Columns: mean, members, spread when some model is an ensemble; else mean and a note.
    largest = max(da.sizes["member"] for da in members.values())
    n_members = min(n_members, largest) if largest > 1 else 0
    ncol, step = max(2, 2 + n_members), 1 + len(members)
    nrow = len(days) * step
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.3 * ncol + 1.2, 2.7 * nrow), squeeze=False, constrained_layout=True)
    style = _MapStyle(lat, lon, log10, floor, f"log10 {variable}" if log10 else f"{variable} ({units})")
    for d, day in enumerate(days):
        vmin, vmax = _inputs_row(fig, axes[d * step], day, fine, coarse, style)
        _model_rows(fig, axes[d * step + 1:(d + 1) * step], day, members, n_members, vmin, vmax, style)
    for a in axes.ravel():
        if a.axison:
            a.set_xlabel("longitude (deg E)", fontsize=8)
            a.set_ylabel("latitude (deg N)", fontsize=8)
            a.tick_params(labelsize=7)
    fig.suptitle(f"Test days: coarse input, truth and predictions ({style.label}; one colour scale per day)")
    return save(fig, out)


def evaluation_figures(samples: Mapping[str, Mapping[str, PathLike]], fine_path: PathLike, days_path: PathLike,
                       coarse_files: Sequence[PathLike], diagnostics_path: PathLike, variable: str, units: str,
                       log10: bool, floor: float, n_days: int, n_members: int,
                       outs: Mapping[str, PathLike]) -> dict[str, Path]:
    """Rule plot_evaluation: :func:`evaluation_maps` (``outs["maps"]``) and every diagnostics figure of ``outs``."""
    done = {"maps": evaluation_maps(samples, fine_path, days_path, coarse_files, variable, units, log10, floor,
                                    n_days, n_members, outs["maps"])}
    return done | diagnostics_figures(diagnostics_path, variable, {k: v for k, v in outs.items() if k != "maps"})
