"""Parsing the workflow (dry runs, --lint) needs no torch: a login node or a CI job without it can plan a run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

# The interpreter with torch made unimportable: `import torch` raises ImportError, as in
# an environment where it is not installed.
BLOCK_TORCH = "import sys; sys.modules['torch'] = None\n"
SNAKEMAKE_WITHOUT_TORCH = [sys.executable, "-c", BLOCK_TORCH + "from snakemake.cli import main; sys.exit(main())"]


def run_without_torch(*args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([*SNAKEMAKE_WITHOUT_TORCH, *args], cwd=cwd, capture_output=True, text=True)


def test_the_blocker_makes_torch_unimportable():
    """The control: under the blocker, the method package (which needs torch) cannot be imported."""
    proc = subprocess.run([sys.executable, "-c", BLOCK_TORCH + "import diffscale.method.fit"], capture_output=True, text=True)
    assert proc.returncode != 0 and "torch" in proc.stderr


@pytest.mark.parametrize("configs", [[], ["config/paper.yaml"], ["config/config.yaml", "config/ablation.yaml"]],
                         ids=["demo", "paper", "ablation"])
def test_dry_run_without_torch(configs, tmp_path):
    # --forceall: every job, also in a checkout where `make demo` has already made the results
    args = ["--snakefile", str(ROOT / "Snakefile"), "--directory", str(ROOT), "-n", "--forceall", "--quiet", "rules"]
    if configs:
        args += ["--configfile", *[str(ROOT / c) for c in configs]]
    proc = run_without_torch(*args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for rule in ("train_diffusion", "sample", "evaluate"):
        assert rule in proc.stdout


def test_lint_without_torch():
    proc = run_without_torch("--lint")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_workflow_is_snakefmt_formatted():
    """CI refuses a workflow snakefmt would reformat; the test command catches it first."""
    snakefmt = Path(sys.executable).with_name("snakefmt")
    if not snakefmt.exists():
        pytest.skip("snakefmt is not installed beside this interpreter")
    proc = subprocess.run([str(snakefmt), "--check", "--diff", "Snakefile", "workflow/"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
