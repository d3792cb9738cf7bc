"""The paper's diagnostics of one region and season, one figure each, from its ``diagnostics.json``.

Curves appear in the file's order (the evaluation writes the models in registry order)
and in the registry's colours; the truth is black, the fine record's own curve gold.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import matplotlib.ticker
import numpy as np

from diffscale.core import io, registry
from diffscale.evaluation.diagnostics import spherical
from diffscale.plots.style import PathLike, placeholder, plt, running_mean, save

FIGURES = ("spectra", "variogram", "acf", "lags", "drift", "rank_histogram")
PERIODS = ("test", "beyond")


def _line(name: str) -> dict:
    """Line style of a curve named "record truth", "{period} truth" or "{period} {model}"."""
    if name.endswith("record truth"):
        return {"color": "goldenrod", "lw": 2.5, "alpha": 0.8, "label": "truth, fine record (all core days)"}
    period, model = name.split(" ", 1)
    if model == "truth":
        return {"color": "k", "lw": 2, "label": f"truth, {period} days"}
    return {"color": registry.colour(model), "lw": 1.5, "ls": "-" if period == "test" else "--",
            "label": f"{model}, {period}"}


def _two_panels(height: float) -> tuple[plt.Figure, np.ndarray]:
    fig, axes = plt.subplots(1, 2, figsize=(13, height), constrained_layout=True)
    return fig, axes


def _finish(fig: plt.Figure, where: str, title: str, out: PathLike) -> Path:
    fig.suptitle(f"{where}: {title}")
    return save(fig, out)


def _spectrum_panel(ax: plt.Axes, period: str, diag: dict, space: str) -> None:
    spec = diag["spectra"].get(period)
    if not spec:
        ax.axis("off")
        ax.text(0.5, 0.5, f"no fine truth on {period} days", ha="center", transform=ax.transAxes)
        return
    for name, values in spec.items():
        if name not in ("k", "cutoff"):
            ax.loglog(spec["k"], values, **_line(f"{period} {name}"))
    ax.axvline(spec["cutoff"], color="k", ls=":", lw=1)
    ax.text(spec["cutoff"], ax.get_ylim()[0], " one coarse cell", rotation=90, va="bottom", fontsize=8)
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set(xlabel="wavenumber (cycles per fine pixel)", ylabel=f"power of {space}",
           title=f"{period} days (members' spectra averaged)")
    ax.legend(fontsize=8)


def _variogram_panel(ax: plt.Axes, period: str, diag: dict, space: str) -> None:
    h = np.asarray(diag["variogram_distance_km"])
    for name in ["record truth"] + [n for n in diag["variogram"] if n.startswith(period + " ")]:
        v, st = diag["variogram"][name], _line(name)
        ax.plot(h, v["gamma"], "o", ms=3, color=st["color"])
        fit = v["fit"]
        if np.isfinite(fit["range_km"]):
            st["label"] += f" (sill {fit['sill']:.3g}, range {fit['range_km']:.0f} km)"
            ax.plot(h, spherical(h, fit["nugget"], fit["psill"], fit["range_km"]), **st)
    ax.set(xlabel="distance (km, haversine)", ylabel=f"semivariance of {space}",
           title=f"{period} days: empirical (points), spherical fit (lines)")
    ax.legend(fontsize=7)


def _per_period(panel: Callable[[plt.Axes, str, dict, str], None], diag: dict, where: str, space: str, title: str, out: PathLike) -> Path:
    """One panel per period (test, beyond), drawn by ``panel(ax, period, diag, space)``."""
    fig, axes = _two_panels(4.8)
    for ax, period in zip(axes, PERIODS):
        panel(ax, period, diag, space)
    return _finish(fig, where, title, out)


def _spectra(diag: dict, where: str, space: str, out: PathLike) -> Path:
    return _per_period(_spectrum_panel, diag, where, space,
                       "power spectra; right of the dotted line = scales finer than the coarse grid", out)


def _variogram(diag: dict, where: str, space: str, out: PathLike) -> Path:
    return _per_period(_variogram_panel, diag, where, space,
                       "semivariograms of the truth and of one member per model", out)


def _acf(diag: dict, where: str, space: str, out: PathLike) -> Path:
    fig, axes = _two_panels(4.5)
    for name, series in diag["acf"].items():
        st = _line(name)
        for ax, key in zip(axes, ("acf", "pacf")):
            values = np.asarray(series[key], dtype=float)
            ax.plot(np.arange(values.size), values, marker=".", **st)
    for ax, key in zip(axes, ("ACF", "PACF")):
        ax.axhline(0, color="k", lw=0.6)
        ax.set(xlabel="lag (days)", ylabel=key, title=f"{key} of the area-mean daily series")
        ax.legend(fontsize=7)
    return _finish(fig, where, "temporal memory of the fine record and of the autoregressive run beyond it", out)


def _lags(diag: dict, where: str, space: str, out: PathLike) -> Path:
    fig, axes = _two_panels(4.5)
    lags = diag["lags"]["lag"]
    for name, c in diag["lags"].items():
        if name != "lag":
            st = _line(name)
            axes[0].plot(lags, c["rmse"], marker="o", **st)
            axes[1].plot(lags, c["r2"], marker="o", **st)
    axes[0].set(xlabel="lag (days)", ylabel=f"RMSE of day t-lag as day t ({space})", title="persistence RMSE")
    axes[1].set(xlabel="lag (days)", ylabel="R2 of day t-lag as day t", title="persistence R2")
    for ax in axes:
        ax.legend(fontsize=7)
    return _finish(fig, where, "how fast the fields forget (lag 1-10 persistence); a realistic run follows the truth", out)


def _segments(x: np.ndarray, y: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Running means within runs of consecutive days, NaN between runs so lines never bridge a gap."""
    order = np.argsort(x)
    x, y = x[order], y[order]
    breaks = np.flatnonzero(np.diff(x) > 1) + 1
    xs, ys = [], []
    for xi, yi in zip(np.split(x, breaks), np.split(y, breaks)):
        xs += [xi, [np.nan]]
        ys += [running_mean(yi, n), [np.nan]]
    return np.concatenate(xs), np.concatenate(ys)


def _drift(diag: dict, where: str, space: str, out: PathLike) -> Path:
    if not diag["drift"]:
        return placeholder(out, f"{where}: drift", "No fine truth outside the fine record: drift cannot be scored.")
    fig, axes = _two_panels(4.5)
    for model, d in diag["drift"].items():
        x = np.asarray(d["days_from_record"])
        for ax, key in zip(axes, ("rmse", "r2")):
            ax.plot(x, d[key], ".", ms=3, color=registry.colour(model), alpha=0.5)
            xs, ys = _segments(x, np.asarray(d[key], float), 15)
            ax.plot(xs, ys, color=registry.colour(model), label=f"{model} (15-day running mean)")
    for ax, key in zip(axes, ("daily RMSE", "daily R2 (spatial)")):
        ax.axvline(0, color="k", lw=0.8)
        ax.set(xlabel="days from the fine record (negative = before it, positive = after it)", ylabel=key,
               title=f"{key} on beyond days")
        ax.legend(fontsize=8)
    return _finish(fig, where, "drift of the reconstruction with distance from the fine record", out)


def _rank_histogram(diag: dict, where: str, space: str, out: PathLike) -> Path:
    panels = [(p, m, c) for p, per in diag["rank_histogram"].items() for m, c in per.items()]
    if not panels:
        return placeholder(out, f"{where}: rank histograms", "No scored ensemble.")
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.6), constrained_layout=True, squeeze=False)
    for ax, (period, model, counts) in zip(axes[0], panels):
        counts = np.asarray(counts, float)
        ax.bar(np.arange(1, counts.size + 1), counts / counts.sum(), color=registry.colour(model))
        ax.axhline(1 / counts.size, color="k", ls="--", lw=0.8)
        ax.set(xlabel="rank of the truth among the members", ylabel="frequency", title=f"{model}, {period}")
        if counts.size == 2:
            ax.text(0.5, 0.9, "one member", ha="center", transform=ax.transAxes, fontsize=8)
    return _finish(fig, where, "rank histograms (flat = calibrated; U = too narrow; dome = too wide)", out)


_DRAW = {"spectra": _spectra, "variogram": _variogram, "acf": _acf, "lags": _lags, "drift": _drift,
         "rank_histogram": _rank_histogram}


def diagnostics_figures(diagnostics_path: PathLike, variable: str, outs: Mapping[str, PathLike]) -> dict[str, Path]:
    """The figures of :data:`FIGURES` from one ``diagnostics.json``; ``outs``: {figure: path}, every figure."""
    diag = io.read_json(diagnostics_path)
    where = f"{diag['region']} / {diag['season']}"
    space = "log10 " + variable if diag["metric_space"] == "log10" else variable
    return {name: _DRAW[name](diag, where, space, outs[name]) for name in FIGURES}
