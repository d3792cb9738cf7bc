"""Figures of the method's own outputs (report category "3. Method"): the training curves, the encoder's probe."""

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
    # Reference columns (the encoder's persistence and climatology): constant validation scores.
    for i, name in enumerate(c for c in df.columns if c not in ("step", "loss", "val_loss")):
        level = float(df[name].iloc[0])
        ax.axhline(level, color=f"C{4 + i}", ls="--", lw=1.2, label=f"{name} (validation, {level:.4g})")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_title(curve_title(model), fontsize=10)
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("loss (model's own units)")
    if (loss > 0).all() and loss.max() / max(loss.min(), 1e-12) > 20:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def _probe_panel(ax: plt.Axes, path: PathLike) -> None:
    """Validation R2 of the ridge probe (:mod:`diffscale.method.probe`), one bar per predictor set."""
    df = pd.read_csv(path)
    missing = {"predictors", "val_rmse", "val_r2"} - set(df.columns)
    if missing:
        raise io.DataValidationError(path, f"columns {sorted(missing)} missing (expected the encoder probe's table)")
    labels = [name.replace(" + ", "\n+ ") for name in df["predictors"]]
    bars = ax.bar(labels, df["val_r2"], color=[f"C{i}" for i in range(len(df))])
    ax.tick_params(axis="x", labelsize=8)
    for bar, r2, rmse in zip(bars, df["val_r2"], df["val_rmse"]):
        ax.annotate(f"R2 {r2:.3f}\nRMSE {rmse:.4g}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom", fontsize=7)
    ax.set_title("encoder probe: ridge from features to the next fine day", fontsize=10)
    ax.set_ylabel("R2 on the validation days")
    ax.set_ylim(min(0.0, float(df["val_r2"].min())), 1.1 * max(1e-3, float(df["val_r2"].max())))
    ax.grid(alpha=0.3, axis="y")


def training_curves(curves: Mapping[str, PathLike], region: str, season: str, out: PathLike,
                    probe: PathLike | None = None) -> Path:
    """Rule plot_training: training and validation loss against step, one panel per model, in the given order.

    ``curves``: model name -> its ``{model}_loss.csv`` (columns step, loss, val_loss; val_loss
    empty on steps without validation; any further column is a reference's constant validation
    score, drawn as a dashed line). The training loss is drawn raw (faint) and as a running
    mean over ~1/20 of the run, so the trend is readable through the minibatch noise.
    ``probe``: the encoder's ``encoder_probe.csv``, drawn as one more panel.
    """
    frames = {model: _read_curve(path) for model, path in curves.items()}
    n = len(frames) + (probe is not None)
    cols = min(n, 3)
    rows = -(-n // cols) if n else 1
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.6 * rows), constrained_layout=True, squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    for ax, (model, df) in zip(axes.ravel(), frames.items()):
        _curve_panel(ax, model, df)
    if probe is not None:
        _probe_panel(axes.ravel()[n - 1], probe)
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


def tuning_figure(path: PathLike, out: PathLike) -> Path:
    """Rule plot_tuning: validation fair CRPS of every candidate of ``make tune``, the selected ones ringed.

    path: the pooled table of :func:`diffscale.evaluation.selection.selection_files`.
    """
    df = pd.read_csv(path)
    missing = {"kind", "batch_size", "lr", "steps", "nfe", "crps_fair", "rmse", "days", "selected"} - set(df.columns)
    if missing:
        raise io.DataValidationError(path, f"columns {sorted(missing)} missing (expected the tuning selection table)")
    fig, axes = plt.subplots(1, 3, figsize=(14, 4), constrained_layout=True)
    training, sampler = df[df["kind"] == "training"], df[df["kind"] == "sampler"]
    for i, ((batch, lr), g) in enumerate(training.groupby(["batch_size", "lr"])):
        g = g.sort_values("steps")
        for ax, score in zip(axes[:2], ("crps_fair", "rmse")):
            ax.plot(g["steps"], g[score], "o-", color=f"C{i % 10}", ms=4, label=f"batch {int(batch)}, lr {lr:g}")
    if len(sampler):
        s = sampler.sort_values("nfe")
        axes[2].plot(s["nfe"], s["crps_fair"], "o-", color="C0", ms=4, label=f"{s['sampler'].iloc[0]}, fair CRPS")
    for ax, part, x, score in ((axes[0], training, "steps", "crps_fair"), (axes[1], training, "steps", "rmse"),
                               (axes[2], sampler, "nfe", "crps_fair")):
        chosen = part[part["selected"].astype(bool)]
        if len(chosen):
            ax.plot(chosen[x], chosen[score], "o", ms=12, mfc="none", mec="k", mew=1.5, label="selected")
    days = int(df["days"].max()) if len(df) else 0
    titles = ("fair CRPS against training steps", "RMSE of the ensemble mean against training steps",
              "fair CRPS against sampler NFE")
    for ax, title, xlabel in zip(axes, titles, ("optimiser steps", "optimiser steps", "denoiser evaluations per sample")):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"Tuned choices of the method on validation days only ({days} days pooled over regions and seasons), "
                 "log10 space")
    return save(fig, out)
