"""The evaluation rules in a real Snakemake run on a tiny twin, and rerunning one step."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import run_snakemake, tiny_config

from diffscale.core import metrics, transform
from diffscale.evaluation import scores

FIGURES = ["maps", "spectra", "variogram", "acf", "lags", "drift", "rank_histogram"]


def job_stats(output: str) -> dict[str, int]:
    """The 'Job stats' table of a Snakemake run or dry run, as {rule: count}."""
    block = output.split("Job stats:")[1]
    counts = {}
    for line in block.splitlines()[3:]:
        m = re.match(r"^(\S+)\s+(\d+)$", line.strip())
        if not m:
            break
        counts[m.group(1)] = int(m.group(2))
    counts.pop("total", None)
    return counts


@pytest.fixture(scope="module")
def workflow_dir(tmp_path_factory) -> Path:
    """The whole chain on a tiny twin: data, regrid, split, domain, bicubic, the twin's references, evaluation."""
    work = tmp_path_factory.mktemp("wf")
    config = tiny_config(evaluation={"models": ["bicubic"], "variogram_pairs": 2000})
    proc = run_snakemake(work, config)
    assert {"split", "sample_bicubic", "sample_references", "evaluate", "summarize_metrics", "plot_metrics",
            "plot_evaluation"} <= set(job_stats(proc.stdout + proc.stderr))
    return work


@pytest.mark.slow
def test_evaluation_writes_the_summary_and_every_figure(workflow_dir):
    summary = pd.read_csv(workflow_dir / "results/metrics/summary.csv")
    assert list(summary.columns[:4 + len(metrics.METRIC_COLUMNS)]) == ["region", "season", "model", "period", *metrics.METRIC_COLUMNS]
    assert list(zip(summary["model"], summary["period"])) == [("bicubic", "test"), ("bicubic", "beyond"),
                                                              ("ceiling", "test"), ("ceiling", "beyond"),
                                                              ("oracle", "test"), ("oracle", "beyond")]
    # The twin's oracle misses only the noise (std 0.075 in log10): the ceiling, far above bicubic.
    oracle = summary[summary["model"] == "oracle"].set_index("period")
    assert oracle["rmse"].to_numpy() == pytest.approx(0.075, abs=0.01)
    assert (oracle["r2"].to_numpy() > summary[summary["model"] == "bicubic"]["r2"].to_numpy()).all()
    # Skill against bicubic in each period: 0 for bicubic itself, positive for the oracle.
    assert (summary.loc[summary["model"] == "bicubic", ["crpss_bicubic", "rmse_ss_bicubic"]] == 0).all().all()
    assert (oracle[["crpss_bicubic", "rmse_ss_bicubic"]] > 0).all().all()
    assert summary[["crpss_ceiling", "rmse_ss_ceiling"]].notna().any().any() == ("ceiling" in set(summary["model"]))
    assert (summary["region"] == "solo").all() and (summary["season"] == "winter").all()
    assert summary["r2"].between(-1, 1).all() and (summary["rmse"] > 0).all()
    samples = workflow_dir / "results/samples/solo/winter/bicubic"
    assert (samples / "test.nc").exists() and (samples / "beyond.nc").exists()
    for kind in FIGURES:
        assert (workflow_dir / f"results/figures/evaluation/solo/winter/{kind}.png").stat().st_size > 5000
    for period in ("test", "beyond"):
        assert (workflow_dir / f"results/figures/evaluation/metrics_{period}.png").exists()


@pytest.mark.slow
def test_forcing_evaluate_reruns_only_it_and_what_depends_on_it(workflow_dir):
    config = yaml.safe_load((workflow_dir / "config.yaml").read_text())
    planned = job_stats(run_snakemake(workflow_dir, config, "-n", "--forcerun", "evaluate").stdout)
    assert planned == {"evaluate": 1, "summarize_metrics": 1, "plot_metrics": 1, "plot_evaluation": 1, "all": 1}
    # Nothing is out of date otherwise: a plain dry run plans nothing.
    assert "Nothing to be done" in (lambda p: p.stdout + p.stderr)(run_snakemake(workflow_dir, config, "-n"))
    # For real: upstream files keep their times, downstream files are rewritten.
    before = {p: p.stat().st_mtime_ns for p in (workflow_dir / "results").rglob("*") if p.is_file() and "logs" not in p.parts}
    run_snakemake(workflow_dir, config, "--forcerun", "evaluate")
    changed = {p.relative_to(workflow_dir / "results").as_posix() for p, t in before.items() if p.stat().st_mtime_ns != t}
    assert "metrics/solo/winter/scores.csv" in changed and "metrics/summary.csv" in changed
    assert "figures/evaluation/solo/winter/maps.png" in changed
    assert not any(c.startswith(("samples/", "data/", "split/", "regrid/", "domain/")) for c in changed), changed
