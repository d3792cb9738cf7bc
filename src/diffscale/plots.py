"""Figures of the workflow (matplotlib, no display needed)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from diffscale import io  # noqa: E402


def _boxes(ax, regions: dict) -> None:
    for name, box in regions.items():
        (s, n), (w, e) = box["lat"], box["lon"]
        ax.plot([w, e, e, w, w], [s, s, n, n, s], color="k", lw=1)
        ax.text(w, n, f" {name}", va="bottom", fontsize=8)


def twin_overview(coarse_path: str | Path, fine_path: str | Path, elevation_path: str | Path,
                  reference_path: str | Path, variable: str, regions: dict, out: str | Path) -> Path:
    """Coarse and fine fields of the twin's first day, the elevation, and its reference R2."""
    coarse = io.read_field(coarse_path, variable).isel(time=0)
    fine = io.read_field(fine_path, variable).isel(time=0)
    elevation = io.read_field(elevation_path, "elevation", dims=("lat", "lon"))
    scores = json.loads(Path(reference_path).read_text())["scores"]
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
    fig.suptitle(f"Synthetic twin: bicubic R2 = {scores['bicubic_r2']:.3f}, oracle R2 = {scores['oracle_r2']:.3f} "
                 f"(log10 space, {scores['days']} days)")
    out = Path(out)
    with io.atomic_path(out.with_suffix(".png")) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return out
