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
