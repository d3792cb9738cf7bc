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
              "--repeats", "1", "--profile", "--threads", "1")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    # the demo's region: 33 x 41 fine pixels on 32-pixel tiles at overlap 0 is 2 x 2 tiles
    assert any(line.split()[:5] == ["west", "33x41", "32", "0", "0.02768"] for line in lines), out.stdout
    measured = lines.index(next(line for line in lines if line.lstrip().startswith("tile  overlap  steps")))
    assert [line.split()[2] for line in lines[measured + 1:measured + 3]] == ["2", "1"]  # a row per solver steps
    for part in ("condition", "features", "residual", "reference"):
        assert any(line.split()[:1] == [part] for line in lines), part
