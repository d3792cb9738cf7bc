"""The README's results tables: written from the demo's snapshot, and checked against it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from diffscale.core import io, metrics
from diffscale.evaluation import results_table as rt
from diffscale.evaluation.bootstrap import PeriodScores, Resamples
from diffscale.evaluation.day_scores import DayScores
from diffscale.evaluation.scores import comparisons_frame, scores_frame

from conftest import ROOT

README = ROOT / "README.md"
SNAPSHOT = ROOT / "docs" / "results"


def test_the_readme_shows_exactly_the_demo_snapshot():
    # The README's numbers are the rendering of docs/results/, which `make demo` refreshes; a table
    # typed or edited by hand, or a snapshot refreshed without its table, fails here.
    assert rt.readme_block(README) == rt.render(SNAPSHOT, "docs/results")


@pytest.mark.parametrize("name", [n for n in rt.BLOCKS if n])
def test_the_readme_shows_exactly_each_runs_snapshot(name):
    # the ablation's and the transport twin's blocks, each from its own snapshot (make ablation, make transport)
    assert rt.readme_block(README, name) == rt.render_block(name, ROOT)


def test_a_named_block_shows_its_models_only_and_leaves_the_others(snapshot, tmp_path):
    metrics_dir, readme = snapshot
    start, end = rt.BLOCKS["ablation"].markers
    readme.write_text(readme.read_text() + f"\n{start}\nold ablation\n{end}\n")
    demo = rt.refresh(metrics_dir, tmp_path / "docs/results", readme)
    ablation = rt.refresh(metrics_dir, tmp_path / "docs/results/ablation", readme, "docs/results/ablation", "ablation")
    assert rt.readme_block(readme) == demo and rt.readme_block(readme, "ablation") == ablation
    assert "| vae |" in demo and "| diffusion |" in demo
    # only the diffusion models: the method's rows, none of the baselines'
    assert "| diffusion |" in ablation and "vae" not in ablation and "bicubic" not in ablation
    assert "docs/results/ablation/summary.csv" in ablation
    assert rt.render(tmp_path / "none", "docs/results/transport", None, "transport").startswith(
        "No results are recorded yet: `make transport`")


@pytest.fixture
def snapshot(tmp_path):
    """summary.csv and comparisons.csv of a small scored period, written as the workflow writes them."""
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(12, 8, 9))
    runs = {
        "bicubic": [truth[None] + 0.8 * rng.normal(size=(1, 12, 8, 9))],
        "vae": [truth[None] + 0.3 * rng.normal(size=(4, 12, 8, 9)) for _ in range(2)],
        "diffusion": [truth[None] + 0.3 * rng.normal(size=(4, 12, 8, 9)) for _ in range(2)],
    }
    found = PeriodScores(Resamples.draw(12, 2, 300), {}, {})
    for model, seeds in runs.items():
        for k, members in enumerate(seeds):
            found.add(model, {"model": model, "period": "test", "seed": k} | metrics.score(truth, members, 4.0),
                      DayScores(truth, members, 4.0).scores(found.resamples.days))
    where = {"region": "west", "season": "DJF"}
    metrics_dir = tmp_path / "results/metrics"
    metrics_dir.mkdir(parents=True)
    scores_frame([where | r for r in found.summary_rows()]).to_csv(metrics_dir / "summary.csv", index=False)
    comparisons_frame([where | {"period": "test"} | r for r in found.comparison_rows("diffusion")]).to_csv(
        metrics_dir / "comparisons.csv", index=False)
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\nbefore\n\n{rt.START}\nold table\n{rt.END}\n\nafter\n")
    return metrics_dir, readme


def test_refresh_copies_the_run_and_writes_the_tables_between_the_markers(snapshot, tmp_path):
    metrics_dir, readme = snapshot
    block = rt.refresh(metrics_dir, tmp_path / "docs/results", readme)
    text = readme.read_text()
    assert text.startswith("# title\n\nbefore\n\n") and text.endswith("\n\nafter\n") and "old table" not in text
    assert rt.readme_block(readme) == block == rt.render(tmp_path / "docs/results")
    assert (tmp_path / "docs/results/summary.csv").read_bytes() == (metrics_dir / "summary.csv").read_bytes()
    # Every model's row, with the seed mean and its interval as the files hold them.
    summary = pd.read_csv(metrics_dir / "summary.csv")
    for r in summary.itertuples():
        cells = f"| west | DJF | test | {r.model} | {r.seeds} | {r.days} | {r.rmse:.3f} [{r.rmse_lo:.3f}, {r.rmse_hi:.3f}] |"
        assert cells in block
    assert "over days and seeds" in block
    # Writing it again changes nothing.
    rt.refresh(metrics_dir, tmp_path / "docs/results", readme)
    assert readme.read_text() == text


def test_a_model_is_called_better_only_where_the_interval_excludes_zero(snapshot, tmp_path):
    metrics_dir, readme = snapshot
    compared = pd.read_csv(metrics_dir / "comparisons.csv", keep_default_na=False)
    block = rt.refresh(metrics_dir, tmp_path / "docs/results", readme)
    # The second table's rows: those with a verdict.
    rows = [line for line in block.splitlines()
            if line.startswith("| west | DJF | test | ") and ("better" in line or "not resolved" in line)]
    for r in compared.itertuples():
        cell = f"{r.difference:+.4f} [{r.lo:+.4f}, {r.hi:+.4f}]"
        line = next(row for row in rows if f"| {r.model} |" in row and cell in row)
        verdict = line.split(cell)[1].split("|")[0].strip(", ")
        assert verdict == (f"{r.better} better" if r.excludes_zero else "not resolved")
    # The noisy bicubic is resolved as worse than the method; the vae, drawn like the method, is not resolved.
    verdicts = compared.set_index(["model", "score"])["better"]
    assert verdicts[("bicubic", "crps_fair")] == "diffusion" and verdicts[("vae", "crps_fair")] == ""
    assert "diffusion better" in next(r for r in rows if "| bicubic |" in r)


def test_check_fails_when_the_readme_and_the_snapshot_disagree(snapshot, tmp_path):
    metrics_dir, readme = snapshot
    args = ["--snapshot", str(tmp_path / "docs/results"), "--readme", str(readme)]
    assert rt.main(["--metrics", str(metrics_dir), *args]) == 0  # what make readme-results runs
    args.append("--check")
    assert rt.main(args) == 0
    summary = pd.read_csv(tmp_path / "docs/results/summary.csv")
    summary.loc[0, "rmse"] += 0.01  # a new run of the demo, README not rewritten
    summary.to_csv(tmp_path / "docs/results/summary.csv", index=False)
    assert rt.main(args) == 1


def test_no_snapshot_renders_a_note_and_bad_inputs_are_named(tmp_path):
    assert rt.render(tmp_path / "none") == rt.NO_SNAPSHOT
    (tmp_path / "half").mkdir()
    (tmp_path / "half/summary.csv").write_text("region\n")
    with pytest.raises(io.DataValidationError, match="comparisons.csv"):
        rt.render(tmp_path / "half")
    readme = tmp_path / "README.md"
    readme.write_text("no markers here\n")
    with pytest.raises(io.DataValidationError, match="README.md.*results:start"):
        rt.write_readme(readme, "x")
    with pytest.raises(io.DataValidationError, match="summary.csv.*make demo"):
        rt.refresh(tmp_path / "empty", tmp_path / "snap", readme)
