"""The paper-size twin (config/paper_twin.yaml): the paper's grid and periods, every rule with
its benchmark file, and the table of what each rule cost (diffscale.evaluation.rule_costs)."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from conftest import ROOT, run_snakemake

from diffscale.core import io
from diffscale.core.config import load_config
from diffscale.core.grids import Box, g5nr_grid
from diffscale.evaluation import rule_costs

PAPER = load_config(ROOT / "config/paper.yaml")
TWIN = load_config(ROOT / "config/paper_twin.yaml")


def test_the_twin_has_the_papers_area1_grid_and_periods():
    assert TWIN["regions"] == {"area1": PAPER["regions"]["area1"]}
    assert g5nr_grid(Box.from_config(TWIN["regions"]["area1"])).shape == (432, 357)  # 154,224 centres inside the box
    for key in ("coarse_period", "fine_period"):
        assert TWIN["data"][key] == PAPER["data"][key]
    assert TWIN["seasons"] == PAPER["seasons"] and TWIN["data"]["source"] == "synthetic"
    assert TWIN["results_dir"] == "results/paper_twin"


def _benchmark(path, seconds: float, rss: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
                    f"{seconds}\t0:00:01\t{rss}\t1\t1\t1\t0\t0\t50\t{seconds / 2}\n")


def test_rule_costs_sum_each_rules_jobs_and_keep_the_largest_memory(tmp_path):
    _benchmark(tmp_path / "b/domain/area1.tsv", 30.0, 900.0)
    _benchmark(tmp_path / "b/split/area1_DJF.tsv", 10.0, 200.0)
    _benchmark(tmp_path / "b/split/area1_JJA.tsv", 200.0, 300.0)
    table = rule_costs.collect(tmp_path / "b")
    split = table.set_index("rule").loc["split"]
    assert (split["jobs"], split["wall_s"], split["longest_s"], split["max_rss_mb"]) == (2, 210.0, 200.0, 300.0)
    text = rule_costs.render(table)
    assert "| split | 2 | 3.5 min | 105 s | 3.3 min | 300 MB |" in text and "| all | 3 | 4.0 min | 2.0 min | | |" in text
    (tmp_path / "README.md").write_text("x\n<!-- rule_costs:paper_twin:start -->\nold\n<!-- rule_costs:paper_twin:end -->\ny\n")
    assert rule_costs.main(["--benchmarks", str(tmp_path / "b"), "--snapshot", str(tmp_path / "s.csv"),
                            "--readme", str(tmp_path / "README.md")]) == 0
    assert rule_costs.readme_block(tmp_path / "README.md") == rule_costs.render(rule_costs.read_snapshot(tmp_path / "s.csv"))
    assert (tmp_path / "README.md").read_text().startswith("x\n") and (tmp_path / "README.md").read_text().endswith("y\n")
    _benchmark(tmp_path / "bad/domain/area1.tsv", 1.0, 1.0)
    (tmp_path / "bad/domain/area1.tsv").write_text("wall\n1\n")
    with pytest.raises(io.DataValidationError, match="area1.tsv.*not a Snakemake benchmark file"):
        rule_costs.collect(tmp_path / "bad")
    with pytest.raises(io.DataValidationError, match="no benchmark file"):
        rule_costs.collect(tmp_path / "none")


def test_the_readme_shows_the_paper_twins_recorded_costs():
    snapshot = ROOT / "docs/results/paper_twin/rule_costs.csv"
    assert rule_costs.readme_block(ROOT / "README.md") == rule_costs.render(rule_costs.read_snapshot(snapshot))


def reduced(config: dict) -> dict:
    """config/paper_twin.yaml at a reduced size: area1's grid, one January of fine record with
    a few beyond days on each side, the smallest networks and one solver step (a day of area1
    costs seconds of a CPU even so)."""
    return config | {
        "results_dir": "results/paper_twin",
        "data": config["data"] | {"coarse_period": ["2005-12-20", "2006-02-05"],
                                  "fine_period": ["2006-01-01", "2006-01-31"], "raw_dir": "results/paper_twin/data/raw"},
        "seasons": {"DJF": [12, 1, 2]},
        "split": config["split"] | {"buffer_days": 5},
        "encoder": config["encoder"] | {"history": 5, "max_steps": 10, "val_years": 0, "channels": [4, 8],
                                        "attention": False},
        "diffusion": config["diffusion"] | {"steps": 10, "checkpoint_every": 5, "channels": [4, 8], "attention": False,
                                            "blocks": 1},
        "baselines": {"steps": 10},
        "sampling": config["sampling"] | {"steps": 1, "spinup_days": 2, "block": 30, "benchmark_days": 1,
                                          "ddpm_steps": 2},
        # the twin's references too (the full-size twin leaves them out): every rule runs here
        "evaluation": config["evaluation"] | {"variogram_pairs": 2000, "oracle": True},
    }


@pytest.mark.slow
def test_every_rule_runs_on_area1s_grid_and_writes_its_benchmark_file(tmp_path):
    raw = yaml.safe_load((ROOT / "config/paper_twin.yaml").read_text())
    run_snakemake(tmp_path, reduced(raw))
    bench = tmp_path / "results/paper_twin/benchmarks"
    dry = run_snakemake(tmp_path, reduced(raw), "-n", "--forceall", "--quiet", "rules").stdout
    benchmarked = {path.parent.name for path in bench.glob("*/*.tsv")}
    text = "\n".join(p.read_text() for p in (ROOT / "workflow/rules").glob("*.smk"))
    ran = {line.split()[0] for line in dry.splitlines() if line.split() and line.split()[0] in text
           and f"rule {line.split()[0]}:" in text}
    heavy = {name for name in ran if f'job_mem_mb("{name}")' in text}
    assert heavy and heavy <= benchmarked, heavy - benchmarked
    assert {"make_synthetic", "sample_references", "sample_beyond", "evaluate", "assemble"} <= benchmarked
    table = rule_costs.collect(bench)
    assert set(table["rule"]) == benchmarked and (table["max_rss_mb"] > 0).all()
    assert rule_costs.render(table).splitlines()[-1].startswith(f"| all | {int(table['jobs'].sum())} |")
    fine = io.read_field(tmp_path / "results/paper_twin/split/area1/fine.nc", "DUEXTTAU")
    assert fine.shape[1:] == (432, 357)  # 154,224 centres inside the box
    assert pd.read_csv(tmp_path / "results/paper_twin/metrics/summary.csv")["model"].isin(["diffusion"]).any()
