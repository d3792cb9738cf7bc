"""Figures of the workflow (matplotlib, no display needed)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from diffscale.core import io  # noqa: E402


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


def _save(fig, out: str | Path) -> Path:
    out = Path(out)
    with io.atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
# --- Evaluation figures (issue 6) -------------------------------------------------------

MODEL_COLOURS = {"bicubic": "tab:gray", "unet": "tab:blue", "vae": "tab:purple", "transfer_unet": "tab:green",
                 "diffusion_no_transfer": "tab:orange", "diffusion": "tab:red", "oracle": "tab:olive"}
METRIC_LABELS = {
    "r2": "R2 = 1 - SSE/SST (higher is better)", "r2_pearson": "R2 Pearson (squared correlation)",
    "rmse": "RMSE (lower is better)", "mae": "MAE (lower is better)", "crps": "CRPS, fair (lower is better)",
    "spread_skill": "spread / skill (1 = calibrated)", "ssim": "SSIM of the ensemble mean",
    "spectral_ratio": "high-frequency power ratio (1 = realistic)", "kge": "KGE (1 = perfect)",
    "nse": "NSE per pixel (1 = perfect)", "coarse_rmse": "RMSE against the coarse input", "ssim_member": "SSIM of a member",
}


def _colour(model: str, i: int = 0) -> str:
    return MODEL_COLOURS.get(model, f"C{i}")


def _save(fig, out: str | Path) -> Path:
    out = Path(out)
    with io.atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return out


def domain_per_day(region: str, results: list, paper: dict, out: str | Path) -> Path:
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
    return _save(fig, out)


def domain_pixel_map(region: str, results: list, lat: np.ndarray, lon: np.ndarray, out: str | Path) -> Path:
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
    return _save(fig, out)
def _placeholder(out: str | Path, title: str, message: str) -> Path:
    """A figure that says why there is nothing to show (the report keeps one entry per figure)."""
    fig, ax = plt.subplots(figsize=(8, 2.5))
    ax.axis("off")
    ax.set_title(title)
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, fontsize=11)
    return _save(fig, out)


def _space_label(variable: str, log10: bool, units: str = "1") -> str:
    return f"log10 {variable}" if log10 else f"{variable} ({units})"


def metric_bars(summary_path: str | Path, period: str, out: str | Path, reference_path: str | Path | None = None) -> Path:
    """Bars of every metric per model, grouped by region and season, for one period."""
    import pandas as pd

    df = pd.read_csv(summary_path)
    df = df[df["period"] == period]
    title = {"test": "held-out test days in the fine record", "beyond": "days outside the fine record (autoregressive run)"}[period]
    if df.empty:
        return _placeholder(out, f"Scores on {title}", "No scores for this period: no model's samples were scored "
                            "here (for 'beyond', fine truth outside the fine record exists only for the twin or local files that extend past it).")
    metrics = ["r2", "r2_pearson", "rmse", "mae", "crps", "spread_skill", "ssim", "spectral_ratio", "kge", "nse",
               "coarse_rmse", "ssim_member"]
    groups = list(dict.fromkeys(zip(df["region"], df["season"])))
    models = list(dict.fromkeys(df["model"]))
    fig, axes = plt.subplots(3, 4, figsize=(18, 11), constrained_layout=True)
    width = 0.8 / max(len(models), 1)
    reference = json.loads(Path(reference_path).read_text())["scores"] if reference_path else None
    for ax, metric in zip(axes.ravel(), metrics):
        for i, model in enumerate(models):
            sub = df[df["model"] == model].set_index(["region", "season"])
            values = [float(sub[metric].get(g, np.nan)) if metric in sub else np.nan for g in groups]
            ax.bar(np.arange(len(groups)) + (i - (len(models) - 1) / 2) * width, values, width, color=_colour(model, i),
                   label=model)
        if metric in ("spread_skill", "spectral_ratio"):
            ax.axhline(1.0, color="k", lw=0.8, ls="--")
        if metric == "r2" and reference:
            ax.axhline(reference["oracle_r2"], color="k", ls=":", lw=1.2, label="twin oracle (whole record)")
            ax.axhline(reference["bicubic_r2"], color="tab:gray", ls=":", lw=1.2, label="twin bicubic (whole record)")
        ax.set_xticks(np.arange(len(groups)), [f"{r}\n{s}" for r, s in groups], fontsize=8)
        ax.set_title(METRIC_LABELS.get(metric, metric), fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    handles, labels = axes.ravel()[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels))
    fig.suptitle(f"Scores on {title}, log10 space where the variable is modelled in log10")
    return _save(fig, out)


def _pick_days(days: list[str], n: int) -> list[str]:
    if not days:
        return []
    idx = np.unique(np.linspace(0, len(days) - 1, min(n, len(days))).round().astype(int))
    return [days[i] for i in idx]


def evaluation_maps(samples: dict[str, dict[str, str]], fine_path: str | Path, days_path: str | Path,
                    coarse_files: list[str], variable: str, units: str, log10: bool, floor: float,
                    n_days: int, n_members: int, out: str | Path) -> Path:
    """For chosen test days: coarse input, truth, and per model ensemble mean, members and spread."""
    import pandas as pd

    from diffscale.core.transform import to_metric_space
    from diffscale.core.samples import read_members

    days = _pick_days(json.loads(Path(days_path).read_text())["test"], n_days)
    if not days or not samples:
        return _placeholder(out, "Maps", "No test days or no model samples to show.")
    fine = io.read_field(fine_path, variable)
    lat, lon = fine.lat.values, fine.lon.values
    coarse = io.read_record(coarse_files, variable)
    dlat, dlon = float(np.diff(coarse.lat).max()), float(np.diff(coarse.lon).max())
    coarse = coarse.sel(lat=slice(lat.min() - dlat, lat.max() + dlat), lon=slice(lon.min() - dlon, lon.max() + dlon))
    members = {m: read_members(p["test"], variable) for m, p in samples.items()}
    # Columns: mean, members, spread when some model is an ensemble; else mean and a note.
    largest = max(da.sizes["member"] for da in members.values())
    n_members = min(n_members, largest) if largest > 1 else 0
    ncol = max(2, 2 + n_members)
    nrow = len(days) * (1 + len(members))
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.3 * ncol + 1.2, 2.7 * nrow), squeeze=False, constrained_layout=True)
    label = _space_label(variable, log10, units)
    extent = dict(xlim=(lon.min(), lon.max()), ylim=(lat.min(), lat.max()))
    for d, day in enumerate(days):
        t = pd.Timestamp(day)
        truth = to_metric_space(fine.sel(time=t).values, log10, floor)
        vmin, vmax = np.nanpercentile(truth, [1, 99])
        spread_max = 0.0
        row = d * (1 + len(members))
        ax = axes[row]
        m = ax[0].pcolormesh(coarse.lon, coarse.lat, to_metric_space(coarse.sel(time=t).values, log10, floor),
                             vmin=vmin, vmax=vmax, cmap="YlOrBr", shading="nearest")
        ax[0].set(title=f"{day}: coarse input (native grid)", **extent)
        ax[1].pcolormesh(lon, lat, truth, vmin=vmin, vmax=vmax, cmap="YlOrBr", shading="nearest")
        ax[1].set(title=f"{day}: fine truth", **extent)
        for a in ax[2:]:
            a.axis("off")
        fig.colorbar(m, ax=ax[:2], label=label, shrink=0.9)
        spreads = []
        for r, (model, da) in enumerate(members.items(), start=row + 1):
            x = to_metric_space(da.sel(time=t).values, log10, floor)  # (M, Y, X)
            ax = axes[r]
            ax[0].pcolormesh(lon, lat, x.mean(axis=0), vmin=vmin, vmax=vmax, cmap="YlOrBr", shading="nearest")
            ax[0].set(title=f"{model}: ensemble mean ({x.shape[0]} member{'s' if x.shape[0] > 1 else ''})", **extent)
            for j in range(n_members):
                a = ax[1 + j]
                if j < x.shape[0] and x.shape[0] > 1:
                    a.pcolormesh(lon, lat, x[j], vmin=vmin, vmax=vmax, cmap="YlOrBr", shading="nearest")
                    a.set(title=f"{model}: member {j + 1}", **extent)
                else:
                    a.axis("off")
            a = ax[-1]
            if x.shape[0] > 1:
                s = x.std(axis=0, ddof=1)
                spread_max = max(spread_max, float(np.nanmax(s)))
                spreads.append((a, s, model))
            else:
                a.axis("off")
                a.text(0.5, 0.5, f"{model}: deterministic\n(no members, no spread)", ha="center", va="center",
                       transform=a.transAxes)
        for a, s, model in spreads:
            sm = a.pcolormesh(lon, lat, s, vmin=0, vmax=spread_max, cmap="viridis", shading="nearest")
            a.set(title=f"{model}: ensemble spread (std)", **extent)
        if spreads:
            fig.colorbar(sm, ax=[a for a, _, _ in spreads], label=f"spread of {label}", shrink=0.9)
    for a in axes.ravel():
        if a.axison:
            a.set_xlabel("longitude (deg E)", fontsize=8)
            a.set_ylabel("latitude (deg N)", fontsize=8)
            a.tick_params(labelsize=7)
    fig.suptitle(f"Test days: coarse input, truth and predictions ({label}; one colour scale per day)")
    return _save(fig, out)


def diagnostics_figures(diagnostics_path: str | Path, variable: str, outs: dict[str, str | Path]) -> dict[str, Path]:
    """The paper's diagnostics of one region and season, one figure each (keys of ``outs``)."""
    diag = json.loads(Path(diagnostics_path).read_text())
    where = f"{diag['region']} / {diag['season']}"
    space = "log10 " + variable if diag["metric_space"] == "log10" else variable
    models = diag["models"]
    done = {}

    def style(name: str) -> dict:
        if name.endswith("record truth"):
            return {"color": "goldenrod", "lw": 2.5, "alpha": 0.8, "label": "truth, fine record (all core days)"}
        period, model = name.split(" ", 1)
        if model == "truth":
            return {"color": "k", "lw": 2, "label": f"truth, {period} days"}
        return {"color": _colour(model, models.index(model) if model in models else 0), "lw": 1.5,
                "ls": "-" if period == "test" else "--", "label": f"{model}, {period}"}

    # Spectra
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8), constrained_layout=True, squeeze=False)
    for ax, period in zip(axes[0], ("test", "beyond")):
        spec = diag["spectra"].get(period)
        if not spec:
            ax.axis("off")
            ax.text(0.5, 0.5, f"no fine truth on {period} days", ha="center", transform=ax.transAxes)
            continue
        for name, values in spec.items():
            if name in ("k", "cutoff"):
                continue
            st = style(f"{period} {name}")
            ax.loglog(spec["k"], values, **st)
        ax.axvline(spec["cutoff"], color="k", ls=":", lw=1)
        ax.text(spec["cutoff"], ax.get_ylim()[0], " one coarse cell", rotation=90, va="bottom", fontsize=8)
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set(xlabel="wavenumber (cycles per fine pixel)", ylabel=f"power of {space}",
               title=f"{period} days (members' spectra averaged)")
        ax.legend(fontsize=8)
    fig.suptitle(f"{where}: power spectra; right of the dotted line = scales finer than the coarse grid")
    done["spectra"] = _save(fig, outs["spectra"])

    # Variograms
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8), constrained_layout=True, squeeze=False)
    h = np.asarray(diag["variogram_distance_km"])
    from diffscale.evaluation.diagnostics import spherical
    for ax, period in zip(axes[0], ("test", "beyond")):
        names = ["record truth"] + [n for n in diag["variogram"] if n.startswith(period + " ")]
        for name in names:
            v = diag["variogram"][name]
            st = style(name)
            ax.plot(h, v["gamma"], "o", ms=3, color=st["color"])
            fit = v["fit"]
            if np.isfinite(fit["range_km"]):
                st["label"] += f" (sill {fit['sill']:.3g}, range {fit['range_km']:.0f} km)"
                ax.plot(h, spherical(h, fit["nugget"], fit["psill"], fit["range_km"]), **st)
        ax.set(xlabel="distance (km, haversine)", ylabel=f"semivariance of {space}",
               title=f"{period} days: empirical (points), spherical fit (lines)")
        ax.legend(fontsize=7)
    fig.suptitle(f"{where}: semivariograms of the truth and of one member per model")
    done["variogram"] = _save(fig, outs["variogram"])

    # ACF / PACF
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5), constrained_layout=True)
    for name, series in diag["acf"].items():
        st = style(name)
        for ax, key in zip(axes, ("acf", "pacf")):
            values = np.asarray(series[key], dtype=float)
            ax.plot(np.arange(values.size), values, marker=".", **st)
    for ax, key in zip(axes, ("ACF", "PACF")):
        ax.axhline(0, color="k", lw=0.6)
        ax.set(xlabel="lag (days)", ylabel=key, title=f"{key} of the area-mean daily series")
        ax.legend(fontsize=7)
    fig.suptitle(f"{where}: temporal memory of the fine record and of the autoregressive run beyond it")
    done["acf"] = _save(fig, outs["acf"])

    # Persistence curves
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5), constrained_layout=True)
    lags = diag["lags"]["lag"]
    for name, c in diag["lags"].items():
        if name == "lag":
            continue
        st = style(name)
        axes[0].plot(lags, c["rmse"], marker="o", **st)
        axes[1].plot(lags, c["r2"], marker="o", **st)
    axes[0].set(xlabel="lag (days)", ylabel=f"RMSE of day t-lag as day t ({space})", title="persistence RMSE")
    axes[1].set(xlabel="lag (days)", ylabel="R2 of day t-lag as day t", title="persistence R2")
    for ax in axes:
        ax.legend(fontsize=7)
    fig.suptitle(f"{where}: how fast the fields forget (lag 1-10 persistence); a realistic run follows the truth")
    done["lags"] = _save(fig, outs["lags"])

    # Drift
    if diag["drift"]:
        fig, axes = plt.subplots(1, 2, figsize=(13, 4.5), constrained_layout=True)
        for i, (model, d) in enumerate(diag["drift"].items()):
            x = np.asarray(d["days_from_record"])
            for ax, key in zip(axes, ("rmse", "r2")):
                ax.plot(x, d[key], ".", ms=3, color=_colour(model, i), alpha=0.5)
                xs, ys = _segments(x, np.asarray(d[key], float), 15)
                ax.plot(xs, ys, color=_colour(model, i), label=f"{model} (15-day running mean)")
        for ax, key in zip(axes, ("daily RMSE", "daily R2 (spatial)")):
            ax.axvline(0, color="k", lw=0.8)
            ax.set(xlabel="days from the fine record (negative = before it, positive = after it)", ylabel=key,
                   title=f"{key} on beyond days")
            ax.legend(fontsize=8)
        fig.suptitle(f"{where}: drift of the reconstruction with distance from the fine record")
        done["drift"] = _save(fig, outs["drift"])
    else:
        done["drift"] = _placeholder(outs["drift"], f"{where}: drift", "No fine truth outside the fine record: drift cannot be scored.")

    # Rank histograms
    panels = [(p, m, c) for p, per in diag["rank_histogram"].items() for m, c in per.items()]
    if panels:
        fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.6), constrained_layout=True, squeeze=False)
        for ax, (period, model, counts) in zip(axes[0], panels):
            counts = np.asarray(counts, float)
            freq = counts / counts.sum()
            ax.bar(np.arange(1, counts.size + 1), freq, color=_colour(model, models.index(model) if model in models else 0))
            ax.axhline(1 / counts.size, color="k", ls="--", lw=0.8)
            ax.set(xlabel="rank of the truth among the members", ylabel="frequency", title=f"{model}, {period}")
            if counts.size == 2:
                ax.text(0.5, 0.9, "one member", ha="center", transform=ax.transAxes, fontsize=8)
        fig.suptitle(f"{where}: rank histograms (flat = calibrated; U = too narrow; dome = too wide)")
        done["rank_histogram"] = _save(fig, outs["rank_histogram"])
    else:
        done["rank_histogram"] = _placeholder(outs["rank_histogram"], f"{where}: rank histograms", "No scored ensemble.")
    return done


def _segments(x: np.ndarray, y: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Running means within runs of consecutive days, NaN between runs so lines never bridge a gap."""
    order = np.argsort(x)
    x, y = x[order], y[order]
    breaks = np.flatnonzero(np.diff(x) > 1) + 1
    xs, ys = [], []
    for xi, yi in zip(np.split(x, breaks), np.split(y, breaks)):
        xs += [xi, [np.nan]]
        ys += [_running_mean(yi, n), [np.nan]]
    return np.concatenate(xs), np.concatenate(ys)


def _running_mean(x: np.ndarray, n: int) -> np.ndarray:
    import pandas as pd

    return pd.Series(x).rolling(n, center=True, min_periods=1).mean().to_numpy()


# --- The method's own outputs (report category "3. Method") -------------------------------

CURVE_TITLES = {"encoder": "transfer encoder pretraining (L1, next coarse day)",
                "diffusion": "diffusion (EDM loss)", "diffusion_no_transfer": "diffusion without transfer (EDM loss)",
                "unet": "unet (MSE)", "vae": "vae (negative ELBO)", "transfer_unet": "transfer_unet (MSE)"}


def training_curves(curves: dict[str, str | Path], region: str, season: str, out: str | Path) -> Path:
    """Training and validation loss against step, one panel per model.

    ``curves``: model name -> its ``{model}_loss.csv`` (columns step, loss, val_loss; val_loss
    empty on steps without validation). The training loss is drawn raw (faint) and as a running
    mean over ~1/20 of the run, so the trend is readable through the minibatch noise.
    """
    import pandas as pd

    n = len(curves)
    cols = min(n, 3)
    rows = -(-n // cols) if n else 1
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.6 * rows), constrained_layout=True, squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    for ax, (model, path) in zip(axes.ravel(), curves.items()):
        df = pd.read_csv(path)
        missing = {"step", "loss", "val_loss"} - set(df.columns)
        if missing:
            raise io.DataValidationError(path, f"columns {sorted(missing)} missing (expected step,loss,val_loss)")
        step, loss = df["step"].to_numpy(), df["loss"].to_numpy(float)
        window = max(1, len(loss) // 20)
        ax.plot(step, loss, color="0.75" if window > 1 else "C0", lw=0.6 if window > 1 else 1.2, label="training (per step)")
        if window > 1:
            ax.plot(step, _running_mean(loss, window), color="C0", lw=1.5,
                    label=f"training (mean of {window} steps)")
        val = df.dropna(subset=["val_loss"])
        if len(val):
            ax.plot(val["step"], val["val_loss"], "o-", color="C3", ms=4, lw=1.5, label="validation")
            best = val.loc[val["val_loss"].idxmin()]
            ax.axvline(best["step"], color="C3", ls=":", lw=1, label=f"best validation (step {int(best['step'])})")
        else:
            ax.text(0.5, 0.97, "no validation loss (no validation days)", transform=ax.transAxes, ha="center", va="top",
                    fontsize=8, color="C3")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_title(CURVE_TITLES.get(model, model), fontsize=10)
        ax.set_xlabel("optimiser step")
        ax.set_ylabel("loss (model's own units)")
        if (loss > 0).all() and loss.max() / max(loss.min(), 1e-12) > 20:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"{region} / {season}: training curves (compare shapes across panels, not levels: the losses differ)")
    return _save(fig, out)
