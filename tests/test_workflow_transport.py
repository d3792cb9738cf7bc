"""The transport twin through the real workflow at test size: the config overlay of `make transport`,
the data rules, and the scoring of its references (ceiling, oracle) beside bicubic."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml
from conftest import ROOT, run_snakemake, tiny_config
from test_workflow_evaluate import job_stats

from diffscale.core import io


@pytest.mark.slow
def test_transport_overlay_makes_its_own_twin_and_scores_its_references(tmp_path):
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(tiny_config(evaluation={"models": ["bicubic"]})))
    results = tmp_path / "results/transport"
    targets = ["results/transport/metrics/summary.csv", "results/transport/figures/twin_overview.png",
               "results/transport/figures/evaluation/metrics_beyond.png"]
    args = ["--configfile", str(tmp_path / "tiny.yaml"), str(ROOT / "config/transport.yaml")]
    proc = run_snakemake(tmp_path, None, *targets, *args)  # --configfile takes every path after it
    assert {"make_synthetic", "split", "sample_bicubic", "sample_references", "evaluate"} <= set(
        job_stats(proc.stdout + proc.stderr))
    # its own results directory, raw data included: the demo's results/ stays untouched
    assert not (tmp_path / "results/data").exists() and not (tmp_path / "results/metrics").exists()
    twin = json.loads((results / "data/raw/twin.json").read_text())
    assert twin["parameters"]["kind"] == "transport" and twin["parameters"]["decay_days"] == 3.0
    with io.open_dataset(results / "data/raw/fine/2000-01.nc") as ds:
        assert "(transport)" in ds.attrs["source"]
    summary = pd.read_csv(results / "metrics/summary.csv")
    assert list(zip(summary["model"], summary["period"])) == [("bicubic", "test"), ("bicubic", "beyond"),
                                                              ("ceiling", "test"), ("ceiling", "beyond"),
                                                              ("oracle", "test"), ("oracle", "beyond")]
    r2 = summary.set_index(["model", "period"])["r2"]
    for period in ("test", "beyond"):
        assert r2["bicubic", period] < r2["ceiling", period] < r2["oracle", period]
    for path in targets[1:]:
        assert (tmp_path / path).stat().st_size > 5000
