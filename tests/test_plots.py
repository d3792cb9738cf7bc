"""Figures of the method's own outputs (report category "3. Method") from small real files."""

from __future__ import annotations

import matplotlib.image
import numpy as np
import pytest

from diffscale.core import io

from diffscale import plots


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
    out = plots.training_curves(curves, "solo", "winter", tmp_path / "fig" / "training.png")
    assert out == tmp_path / "fig" / "training.png" and out.stat().st_size > 20_000
    img = matplotlib.image.imread(out)
    # 4 panels in a 3-wide grid: two rows of 5.2 x 3.6 inch panels at 100 dpi
    assert img.shape[:2] == (720, 1560)
    assert [p.name for p in (tmp_path / "fig").iterdir()] == ["training.png"]  # no temporary file left


def test_training_curves_name_a_file_without_the_loss_columns(tmp_path):
    bad = tmp_path / "diffusion_loss.csv"
    bad.write_text("step,loss\n1,0.5\n")
    with pytest.raises(io.DataValidationError, match="diffusion_loss.csv.*val_loss"):
        plots.training_curves({"diffusion": bad}, "solo", "winter", tmp_path / "training.png")
    assert not (tmp_path / "training.png").exists()
