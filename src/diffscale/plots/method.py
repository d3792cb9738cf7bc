"""Figures of the method's own outputs (report category "3. Method"): the training curves."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import matplotlib.ticker
import pandas as pd

from diffscale.core import io, registry
from diffscale.plots.style import PathLike, placeholder, plt, running_mean, save

log = logging.getLogger(__name__)

ENCODER_TITLE = "transfer encoder pretraining (L1, next coarse day)"


def curve_title(model: str) -> str:
    """Each panel names the loss (from the registry), since the losses' levels are not comparable across models."""
    if model == "encoder":
        return ENCODER_TITLE
    loss = registry.MODELS[model].loss if model in registry.MODELS else ""
    return f"{model} ({loss})" if loss else model


def _read_curve(path: PathLike) -> pd.DataFrame:
    df = pd.read_csv(path)
    missing = {"step", "loss", "val_loss"} - set(df.columns)
    if missing:
        raise io.DataValidationError(path, f"columns {sorted(missing)} missing (expected step,loss,val_loss)")
    return df


def _curve_panel(ax: plt.Axes, model: str, df: pd.DataFrame) -> None:
    step, loss = df["step"].to_numpy(), df["loss"].to_numpy(float)
    window = max(1, len(loss) // 20)
    ax.plot(step, loss, color="0.75" if window > 1 else "C0", lw=0.6 if window > 1 else 1.2, label="training (per step)")
    if window > 1:
        ax.plot(step, running_mean(loss, window), color="C0", lw=1.5, label=f"training (mean of {window} steps)")
    val = df.dropna(subset=["val_loss"])
    if len(val):
        ax.plot(val["step"], val["val_loss"], "o-", color="C3", ms=4, lw=1.5, label="validation")
        best = val.loc[val["val_loss"].idxmin()]
        ax.axvline(best["step"], color="C3", ls=":", lw=1, label=f"best validation (step {int(best['step'])})")
    else:
        ax.text(0.5, 0.97, "no validation loss (no validation days)", transform=ax.transAxes, ha="center", va="top",
                fontsize=8, color="C3")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_title(curve_title(model), fontsize=10)
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("loss (model's own units)")
    if (loss > 0).all() and loss.max() / max(loss.min(), 1e-12) > 20:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def training_curves(curves: Mapping[str, PathLike], region: str, season: str, out: PathLike) -> Path:
    """Rule plot_training: training and validation loss against step, one panel per model, in the given order.

    ``curves``: model name -> its ``{model}_loss.csv`` (columns step, loss, val_loss; val_loss
    empty on steps without validation). The training loss is drawn raw (faint) and as a running
    mean over ~1/20 of the run, so the trend is readable through the minibatch noise.
    """
    frames = {model: _read_curve(path) for model, path in curves.items()}
    n = len(frames)
    cols = min(n, 3)
    rows = -(-n // cols) if n else 1
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.6 * rows), constrained_layout=True, squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    for ax, (model, df) in zip(axes.ravel(), frames.items()):
        _curve_panel(ax, model, df)
    fig.suptitle(f"{region} / {season}: training curves (compare shapes across panels, not levels: the losses differ)")
    saved = save(fig, out)
    log.info("training curves of %s -> %s", ", ".join(curves), saved)
    return saved


def members_figure(paths: list[PathLike], out: PathLike) -> Path:
    """Rule plot_members: fair CRPS, issued CRPS and the mean's RMSE against the number of members, on validation days.

    paths: the per region and season tables of :func:`diffscale.method.sampling.members_curve_files`.
    """
    tables = {}
    for path in paths:
        tables[path] = pd.read_csv(path)
        missing = {"members", "crps_fair", "crps", "rmse_mean", "region", "season"} - set(tables[path].columns)
        if missing:
            raise io.DataValidationError(path, f"columns {sorted(missing)} missing (expected a members curve)")
    tables = [df for df in tables.values() if len(df)]
    if not tables:
        return placeholder(out, "Scores against the number of members", "No validation day to score: split.val_fraction "
                           "is 0, or every validation day has a test day among its history days.")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for i, df in enumerate(tables):
        label = f"{df['region'].iloc[0]} {df['season'].iloc[0]} ({df['days'].iloc[0]} days)"
        colour = f"C{i % 10}"
        axes[0].plot(df["members"], df["crps_fair"], "o-", color=colour, ms=3, label=f"{label}, fair")
        axes[0].plot(df["members"], df["crps"], "--", color=colour, lw=1, label=f"{label}, as issued")
        axes[1].plot(df["members"], df["rmse_mean"], "o-", color=colour, ms=3, label=label)
    for ax, title in zip(axes, ("CRPS against members", "RMSE of the ensemble mean against members")):
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%d"))
        ax.set_xlabel("members")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("The method's ensemble on validation days (teacher-forced), log10 space")
    return save(fig, out)
