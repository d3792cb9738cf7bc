"""What every figure shares: the Agg backend, saving, labels, a placeholder and a running mean.

The models' colours and order are not here: they come from :mod:`diffscale.core.registry`
(``registry.colour``, ``registry.order``), like everything else about a model.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

# Workflow jobs run without a display (cluster nodes, CI): select the file-only backend
# before pyplot is imported anywhere.
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from diffscale.core import io  # noqa: E402

PathLike = str | os.PathLike

METRIC_LABELS = {
    "r2": "R2 = 1 - SSE/SST (higher is better)", "r2_pearson": "R2 Pearson (squared correlation)",
    "rmse": "RMSE (lower is better)", "mae": "MAE (lower is better)", "crps": "CRPS of the ensemble as issued (lower is better)",
    "crps_fair": "CRPS, fair: any ensemble size (lower is better)", "crpss_bicubic": "CRPS skill vs bicubic (fair; 0 = bicubic)",
    "rmse_ss_bicubic": "RMSE skill vs bicubic (0 = bicubic)",
    "spread_skill": "spread / skill (1 = calibrated)", "ssim": "SSIM of the ensemble mean",
    "spectral_ratio": "high-frequency power ratio (1 = realistic)", "kge": "KGE (1 = perfect)",
    "nse": "NSE per pixel (1 = perfect)", "coarse_rmse": "RMSE against the coarse input", "ssim_member": "SSIM of a member",
}


def save(fig: plt.Figure, out: PathLike, dpi: int = 100) -> Path:
    """Write ``fig`` as PNG to ``out`` (atomically: a failed run leaves no partial figure) and close it."""
    out = Path(out)
    with io.atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)
    return out


def placeholder(out: PathLike, title: str, message: str) -> Path:
    """A figure that says why there is nothing to show (the report keeps one entry per figure)."""
    fig, ax = plt.subplots(figsize=(8, 2.5))
    ax.axis("off")
    ax.set_title(title)
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, fontsize=11)
    return save(fig, out)


def running_mean(x: np.ndarray, n: int) -> np.ndarray:
    """Centred running mean over ``n`` values, shorter windows at the ends."""
    return pd.Series(x).rolling(n, center=True, min_periods=1).mean().to_numpy()
