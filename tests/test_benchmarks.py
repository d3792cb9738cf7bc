"""The benchmark scripts the README quotes still run against the library as it is."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((REPO / "benchmarks").glob("*.py"))


def run(*args: str) -> subprocess.CompletedProcess:
    env = os.environ | {"PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
def test_every_benchmark_imports_and_explains_itself(script):
    out = run(str(script), "--help")
    assert out.returncode == 0, out.stderr
    assert "usage:" in out.stdout


def test_paper_cost_measures_and_profiles_a_day_on_the_cpu():
    """The projection, the timed whole-region days against it, and the profile of one day's parts."""
    out = run("benchmarks/paper_cost.py", "--config", "config/config.yaml", "--measure", "--measure-steps", "2,1",
              "--repeats", "1", "--profile", "--threads", "1", "--tiling", "16:0:1")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    # the demo's region: 33 x 41 fine pixels on 32-pixel tiles at overlap 0 and halo 4 is 2 x 2 tiles
    assert any(line.split()[:6] == ["west", "33x41", "32", "0", "4", "0.02768"] for line in lines), out.stdout
    # 16-pixel tiles with a 1-pixel halo: 14-pixel cores, 3 x 3 of them
    assert any(line.split()[:5] == ["west", "33x41", "16", "0", "1"] and line.split()[7] == "9" for line in lines)
    measured = lines.index(next(line for line in lines if line.lstrip().startswith("tile  overlap  halo  steps")))
    rows = [line.split() for line in lines[measured + 1:measured + 5]]
    assert [r[2] for r in rows] == ["4", "4", "1", "1"] and [r[3] for r in rows] == ["2", "1", "2", "1"]  # halo, steps
    assert [r[5] for r in rows] == ["4", "4", "16", "16"]  # tiles per day of the 48 x 48 pixels timed
    for part in ("condition", "features", "residual", "reference"):
        assert any(line.split()[:1] == [part] for line in lines), part


def test_tiling_quality_compares_tilings_on_the_validation_days(tmp_path):
    """A region's validation days sampled at two tilings, paired day by day, and the saved days compared again."""
    import shutil

    import pandas as pd
    import torch
    from method_fixtures import make_split

    from diffscale.core.grids import Box
    from diffscale.method.diffusion import DiffusionDownscaler
    from diffscale.method.residual import ResidualSpec

    split, _ = make_split(tmp_path / "twin", Box((33.0, 34.0), (64.0, 65.25)), season="JJA")
    results = tmp_path / "results"
    (results / "split").mkdir(parents=True)
    shutil.move(split, results / "split" / "west")
    spec = ResidualSpec(name="diffusion", history=4, patch=16, halo=2, encoder_channels=(4, 8), encoder_attention=False,
                        channels=(8, 8), blocks=1, attention=False, uses_encoder=True, scale=0.1)
    torch.manual_seed(0)
    (results / "models" / "west" / "JJA").mkdir(parents=True)
    DiffusionDownscaler(spec).save(results / "models" / "west" / "JJA" / "diffusion.s0.pt")
    days_csv = tmp_path / "days.csv"
    out = run("benchmarks/tiling_quality.py", "--results", str(results), "--config", "config/config.yaml",
              "--members", "2", "--steps", "1", "--tiling", "16:0", "--tiling", "16:0:1", "--draws", "50",
              "--out", str(days_csv))
    assert out.returncode == 0, out.stderr
    scores = pd.read_csv(days_csv)
    assert set(scores["run"]) == {"16:0:2", "16:0:1"}  # the model's own halo where none is given
    by_run = {run: g["day"].tolist() for run, g in scores.groupby("run")}
    assert by_run["16:0:2"] == by_run["16:0:1"] and len(by_run["16:0:2"]) > 0  # the same validation days
    table = out.stdout[out.stdout.index("TILE:OVERLAP:HALO"):].splitlines()[2:]
    reference = table[0].split()
    assert reference[0] == "16:0:2" and reference[4:7] == ["0", "0", "0"]  # no difference from itself
    assert table[1].split()[0] == "16:0:1"
    again = run("benchmarks/tiling_quality.py", "--compare", f"a={days_csv}", "--reference", "a, 16:0:1", "--draws", "50")
    assert again.returncode == 0, again.stderr
    assert "Against a, 16:0:1" in again.stdout and "a, 16:0:2" in again.stdout


def test_netcdf_compression_times_every_codec_asked():
    out = run("benchmarks/netcdf_compression.py", "--days", "20", "--codecs", "zlib:4", "zstd:1", "none")
    assert out.returncode == 0, out.stderr
    rows = {r[0]: r for r in (line.split() for line in out.stdout.splitlines()[2:])}
    assert list(rows) == ["zlib", "zstd", "none"] and rows["zstd"][1] == "1" and rows["none"][1] == "-"
    sizes = {codec: float(r[4]) for codec, r in rows.items()}
    assert sizes["zlib"] < sizes["none"] and sizes["zstd"] < sizes["none"]
