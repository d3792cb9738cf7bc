"""Figures of the data stages: the synthetic twin's overview and the domain-shift analysis."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from diffscale.core import io
from diffscale.core.grids import region_boxes
from diffscale.plots.style import PathLike, plt, save


def _boxes(ax: plt.Axes, regions: dict) -> None:
    for name, box in region_boxes(regions).items():
        (s, n), (w, e) = box.lat, box.lon
        ax.plot([w, e, e, w, w], [s, s, n, n, s], color="k", lw=1)
        ax.text(w, n, f" {name}", va="bottom", fontsize=8)


def twin_overview(coarse_path: PathLike, fine_path: PathLike, elevation_path: PathLike, reference_path: PathLike,
                  variable: str, regions: dict, out: PathLike) -> Path:
    """Coarse and fine fields of the twin's first day, the elevation, and its reference R2."""
    coarse = io.read_field(coarse_path, variable).isel(time=0)
    fine = io.read_field(fine_path, variable).isel(time=0)
    elevation = io.read_field(elevation_path, "elevation", dims=("lat", "lon"))
    reference = io.read_json(reference_path)
    scores = reference["scores"]
    # The twin is positive everywhere (10 ** a Gaussian field): log10 needs no floor here.
    vmin, vmax = np.log10(float(fine.min())), np.log10(float(fine.max()))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), constrained_layout=True)
    for ax, da, title in ((axes[0], coarse, "coarse (MERRA-2 grid)"), (axes[1], fine, "fine (G5NR grid)")):
        m = np.log10(da).plot.pcolormesh(ax=ax, vmin=vmin, vmax=vmax, cmap="YlOrBr", add_colorbar=False)
        ax.set_title(f"{title}, {str(da.time.values)[:10]}")
        _boxes(ax, regions)
    fig.colorbar(m, ax=axes[:2], label=f"log10 {variable}", shrink=0.9)
    elevation.plot.pcolormesh(ax=axes[2], cmap="terrain", cbar_kwargs={"label": "elevation (m)"})
    axes[2].set_title("fine elevation")
    _boxes(axes[2], regions)
    fig.suptitle(f"Synthetic twin ({reference['parameters']['kind']}): bicubic R2 = {scores['bicubic_r2']:.3f}, "
                 f"ceiling R2 = {scores['ceiling_r2']:.3f}, oracle R2 = {scores['oracle_r2']:.3f} "
                 f"(log10 space, {scores['days']} days)")
    return save(fig, Path(out).with_suffix(".png"), dpi=110)


def domain_per_day(region: str, results: list, paper: dict, out: PathLike) -> Path:
    """Per-day W1 of coarse-on-fine vs fine: the series over the fine period and its spread per season.

    ``results``: diffscale.data.domain.SeasonDistances, the last one for all days; ``paper``:
    the paper's figures per area (mean/median/p10/p90/pooled), drawn as references.
    """
    every = results[-1]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(13, 4.2), gridspec_kw={"width_ratios": [2, 1]}, constrained_layout=True)
    ax.plot(every.days, every.per_day, lw=0.8, color="0.3", label="per day (ours)")
    ax.axhline(np.median(every.per_day), color="C0", lw=1.5, label=f"our median {np.median(every.per_day):.4f}")
    ax.axhline(every.pooled, color="C0", ls=":", lw=1.5, label=f"our pooled {every.pooled:.4f}")
    for (area, vals), colour in zip(paper.items(), ("C3", "C2")):
        ax.axhline(vals["median"], color=colour, ls="--", lw=1, label=f"paper {area} median {vals['median']}")
        ax.axhline(vals["pooled"], color=colour, ls="-.", lw=1, label=f"paper {area} pooled {vals['pooled']}")
    ax.set_ylabel("W1 (jointly min-max scaled log10)")
    ax.set_title(f"{region}: per-day Wasserstein distance, coarse on fine grid vs fine")
    ax.legend(fontsize=7, ncol=2)
    bx.boxplot([r.per_day for r in results], whis=(10, 90), showfliers=False)
    bx.set_xticks(range(1, len(results) + 1), [f"{r.season}\n({r.per_day.size} d)" for r in results])
    for area, vals in paper.items():
        bx.axhline(vals["median"], color="C3" if area == "area0" else "C2", ls="--", lw=1)
    bx.set_title("per season (box: quartiles, whiskers: p10-p90)")
    return save(fig, out)


def domain_pixel_map(region: str, results: list, lat: np.ndarray, lon: np.ndarray, out: PathLike) -> Path:
    """Per-pixel W1 over the days of each season (and all days), one shared colour scale."""
    vmax = max(float(np.nanmax(r.pixel_map)) for r in results)
    fig, axes = plt.subplots(1, len(results), figsize=(3.6 * len(results) + 1, 3.4), constrained_layout=True,
                             squeeze=False)
    for ax, r in zip(axes[0], results):
        m = ax.pcolormesh(lon, lat, r.pixel_map, vmin=0, vmax=vmax, cmap="magma_r", shading="nearest")
        ax.set_title(f"{r.season}: mean {np.mean(r.pixel_map):.4f}")
        ax.set_xlabel("lon")
        ax.set_aspect("equal")
    axes[0, 0].set_ylabel("lat")
    fig.colorbar(m, ax=axes[0].tolist(), label="W1 over time (scaled log10)")
    fig.suptitle(f"{region}: where the coarse record's distribution differs from the fine one")
    return save(fig, out)
