"""Figures from small real files: the method's training curves, and the models' order and colours."""

from __future__ import annotations

import dataclasses
import json

import matplotlib.colors
import matplotlib.image
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from diffscale.core import io, registry
from diffscale.plots import diagnostics, evaluation
from diffscale.plots.method import training_curves


def write_curve(path, steps: int, val_every: int, start: float, negative: bool = False) -> None:
    rng = np.random.default_rng(0)
    lines = ["step,loss,val_loss"]
    for s in range(1, steps + 1):
        loss = start * np.exp(-s / steps) + 0.05 * rng.random() - (2.0 if negative else 0.0)
        val = f"{start * np.exp(-s / steps) + 0.1:.5f}" if s % val_every == 0 else ""
        lines.append(f"{s},{loss:.5f},{val}")
    path.write_text("\n".join(lines) + "\n")


def test_training_curves_draw_one_panel_per_model(tmp_path):
    curves = {}
    for model, steps, every, neg in (("encoder", 12, 4, False), ("diffusion", 60, 10, False), ("vae", 60, 10, True),
                                     ("unet", 5, 100, False)):  # unet: never validated
        curves[model] = tmp_path / f"{model}_loss.csv"
        write_curve(curves[model], steps, every, 1.0, neg)
    out = training_curves(curves, "solo", "winter", tmp_path / "fig" / "training.png")
    assert out == tmp_path / "fig" / "training.png" and out.stat().st_size > 20_000
    img = matplotlib.image.imread(out)
    # 4 panels in a 3-wide grid: two rows of 5.2 x 3.6 inch panels at 100 dpi
    assert img.shape[:2] == (720, 1560)
    assert [p.name for p in (tmp_path / "fig").iterdir()] == ["training.png"]  # no temporary file left


def test_training_curves_name_a_file_without_the_loss_columns(tmp_path):
    bad = tmp_path / "diffusion_loss.csv"
    bad.write_text("step,loss\n1,0.5\n")
    with pytest.raises(io.DataValidationError, match="diffusion_loss.csv.*val_loss"):
        training_curves({"diffusion": bad}, "solo", "winter", tmp_path / "training.png")
    assert not (tmp_path / "training.png").exists()


@pytest.fixture
def swapped_registry(monkeypatch):
    """The registry backwards with new colours: figures must follow it, never a list of their own."""
    models = {name: dataclasses.replace(m, colour=f"C{i}") for i, (name, m) in enumerate(reversed(registry.MODELS.items()))}
    monkeypatch.setattr(registry, "MODELS", models)
    return models


@pytest.fixture
def saved_figures(monkeypatch):
    """The figures the evaluation's plots save, kept open for inspection (and closed afterwards)."""
    figures = []

    def keep(fig, out, dpi=100):
        figures.append(fig)
        return out

    for module in (evaluation, diagnostics):
        monkeypatch.setattr(module, "save", keep)
    monkeypatch.setattr(diagnostics, "placeholder", lambda out, title, message: out)
    yield figures
    for fig in figures:
        plt.close(fig)


def test_metric_bars_take_the_models_order_and_colours_from_the_registry(tmp_path, saved_figures, swapped_registry):
    rows = [{"region": "r", "season": "S", "model": m, "period": "test", "r2": 0.5} for m in ("vae", "bicubic", "diffusion")]
    pd.DataFrame(rows).to_csv(tmp_path / "summary.csv", index=False)
    evaluation.metric_bars(tmp_path / "summary.csv", "test", tmp_path / "bars.png")
    ax = saved_figures[0].axes[0]
    handles, labels = ax.get_legend_handles_labels()
    assert labels == registry.order(["vae", "bicubic", "diffusion"]) == ["diffusion", "vae", "bicubic"]
    for label, bars in zip(labels, handles):
        assert matplotlib.colors.same_color(bars.patches[0].get_facecolor(), swapped_registry[label].colour)


def test_diagnostics_curves_take_their_colours_from_the_registry(tmp_path, saved_figures, swapped_registry):
    curve = {"acf": [1.0, 0.5], "pacf": [1.0, 0.5]}
    lags = {"rmse": [0.1, 0.2], "r2": [0.9, 0.8]}
    fit = {"nugget": 0.0, "psill": 0.2, "sill": 0.2, "range_km": 15.0}
    diag = {"region": "r", "season": "S", "metric_space": "log10", "models": ["vae", "diffusion"],
            "spectra": {"test": {"k": [0.1, 0.2], "cutoff": 0.15, "truth": [1.0, 0.5], "vae": [1.0, 0.4],
                                 "diffusion": [1.0, 0.5]}},
            "variogram_distance_km": [10.0, 20.0], "variogram": {"record truth": {"gamma": [0.1, 0.2], "fit": fit}},
            "acf": {"record truth": curve}, "lags": {"lag": [1, 2], "record truth": lags}, "drift": {},
            "rank_histogram": {"test": {"vae": [3, 4, 3], "diffusion": [2, 2, 2]}}}
    (tmp_path / "diagnostics.json").write_text(json.dumps(diag))
    diagnostics.diagnostics_figures(tmp_path / "diagnostics.json", "DUEXTTAU",
                                    {k: tmp_path / f"{k}.png" for k in diagnostics.FIGURES})
    spectra, ranks = saved_figures[0], saved_figures[-1]  # drift has no data: a placeholder, not saved here
    lines = {line.get_label(): line.get_color() for line in spectra.axes[0].get_lines()}
    assert lines["vae, test"] == swapped_registry["vae"].colour and lines["diffusion, test"] == swapped_registry["diffusion"].colour
    assert lines["truth, test days"] == "k"
    for ax, model in zip(ranks.axes, ("vae", "diffusion")):
        assert matplotlib.colors.same_color(ax.patches[0].get_facecolor(), swapped_registry[model].colour)


def test_evaluation_and_plots_import_neither_torch_nor_the_method():
    # Imports run one way (core <- data <- method <- evaluation <- plots), but scoring and
    # drawing read files only: their jobs must run in an environment without torch.
    import subprocess
    import sys

    code = ("import importlib, pkgutil, sys\n"
            "import diffscale.evaluation, diffscale.plots\n"
            "for pkg in (diffscale.evaluation, diffscale.plots):\n"
            "    for m in pkgutil.iter_modules(pkg.__path__):\n"
            "        importlib.import_module(f'{pkg.__name__}.{m.name}')\n"
            "print(sorted(k for k in sys.modules if k.split('.')[0] == 'torch' or k.startswith('diffscale.method')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_members_figure_draws_each_curve_and_says_when_there_is_none(tmp_path):
    from diffscale.core.metrics import member_curve
    from diffscale.plots.method import members_figure

    rng = np.random.default_rng(0)
    truth = rng.normal(size=(3, 8, 8))
    curve = pd.DataFrame(member_curve(truth, truth + rng.normal(size=(6, 3, 8, 8)))).assign(region="r", season="S", days=3)
    curve.to_csv(tmp_path / "r_S.csv", index=False)
    empty = tmp_path / "r_T.csv"
    curve.iloc[:0].to_csv(empty, index=False)
    members_figure([tmp_path / "r_S.csv", empty], tmp_path / "members.png")
    drawn = matplotlib.image.imread(tmp_path / "members.png")
    members_figure([empty], tmp_path / "none.png")
    assert drawn.shape[1] > matplotlib.image.imread(tmp_path / "none.png").shape[1]  # the placeholder is smaller
    (tmp_path / "bad.csv").write_text("members\n1\n")
    with pytest.raises(io.DataValidationError, match="bad.csv"):
        members_figure([tmp_path / "bad.csv"], tmp_path / "bad.png")
