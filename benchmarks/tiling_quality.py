"""Sampling tilings compared on a trained run: skill with paired intervals, seams and cost, on the validation days.

    PYTHONPATH=src python benchmarks/tiling_quality.py --results results [--config config/config.yaml]
        [--region west] [--season DJF] [--tiling 16:0.75 --tiling 16:0:2 --tiling 32:0 ...]
        [--members 8] [--steps 5] [--seeds 0,1,2] [--draws 2000] [--out scores.csv]
    PYTHONPATH=src python benchmarks/tiling_quality.py --compare "halo 4=a.csv" "halo 1=b.csv"
        [--reference "halo 4, 16:0.75:4"]

For every region and season of the config with a trained diffusion model
(``results/models/{region}/{season}/diffusion.s{k}.pt`` for each training seed k of
``--seeds``; a run of config/seeds.yaml has three), it samples the validation days
teacher-forced with each tiling TILE:OVERLAP[:HALO] (HALO: the model's own when left out;
the first tiling is the reference), and prints, pooled over the region-seasons, in the
metric space of summary.csv:

* fair CRPS and RMSE of the ensemble mean, and each tiling minus the reference with a 95%
  paired bootstrap interval over the days of every seed's model
  (:mod:`diffscale.evaluation.paired`);
* spread/skill, and the seam ratio of the members at that tiling's core boundaries
  (:func:`diffscale.method.tiling.seam_ratio`; about 1 = no seams) with the truth's own
  ratio at the same boundaries (the mean over the region-seasons);
* ``x``, the tile pixels computed per region pixel and solver step on these regions (the
  cost; benchmarks/paper_cost.py gives it for the paper's), and the seconds it took.

A tile at least as large as the region is one pass: no interior boundary, no seam to
measure. The halo is a sampling choice here (the model's spec is copied with it), though
training also pads the region by the configured halo before drawing its crops.

``--compare LABEL=CSV ...`` samples nothing: it sets the per-day scores of earlier runs
(``--out``) against each other, each run named ``LABEL, TILE:OVERLAP:HALO``; runs of
differently trained models (another halo or patch in the config) pair by seed and day.

Validation days only (:func:`diffscale.method.conditioning.training_days`): a sampling
choice made from these numbers reads no test or beyond truth. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from diffscale.core import metrics
from diffscale.core.config import load_config
from diffscale.evaluation.paired import compare_runs, day_scores
from diffscale.method.residual import load_model, with_halo
from diffscale.method.sampling import teacher_forced, validation_set
from diffscale.method.tiling import TilingChoice, seam_ratio


def season_runs(results: Path, cfg: dict, region: str, season: str, seed: int, tilings: list[TilingChoice],
                members: int, steps: int) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """Per-day scores and per-run seams and times of one region, season and training seed; None without a model
    or validation days."""
    path = results / "models" / region / season / f"diffusion.s{seed}.pt"
    if not path.exists():
        return None
    model = load_model(path)
    trained_halo = model.spec.halo
    held_out = validation_set(results / "split" / region, season, cfg["data"]["variable"], cfg["transform"],
                              model.spec.history)
    if held_out is None:
        return None
    data, days, truth, convert = held_out.data, held_out.days, held_out.truth, held_out.convert
    s = cfg["sampling"]
    scores, runs = [], []
    for choice in tilings:
        tiling, tile = choice.tiling(*data.shape, trained_halo), choice.tile
        t0 = time.perf_counter()
        x = convert(teacher_forced(with_halo(model, tiling.halo), data, days, members, s["sampler"], steps, s["seed"],
                                   tile, tiling.step))
        seconds = time.perf_counter() - t0
        crps, sq = day_scores(x, truth)
        run = choice.name(trained_halo)
        scores += [{"run": run, "seed": seed, "region": region, "season": season, "day": d, "crps": c, "sq": q}
                   for d, c, q in zip(days, crps, sq)]
        one_pass = len(tiling.origins) == 1
        runs.append({"run": run, "seed": seed, "region": region, "season": season, "trained_patch": model.spec.patch,
                     "trained_halo": trained_halo, "x": len(tiling.origins) * tile * tile / (data.shape[0] * data.shape[1]),
                     "spread_skill": metrics.spread_skill(truth, x),
                     "seam": np.nan if one_pass else seam_ratio(torch.from_numpy(x), tiling),
                     "seam_truth": np.nan if one_pass else seam_ratio(torch.from_numpy(truth), tiling),
                     "seconds": seconds})
        print(f"  {region} {season} s{seed} {run}: crps {crps.mean():.4g}, seam {runs[-1]['seam']:.3g}, {seconds:.1f} s",
              flush=True)  # progress
    return pd.DataFrame(scores), pd.DataFrame(runs)


def compare_files(labelled: list[str], reference: str | None, draws: int) -> None:
    """Print the paired comparison of the per-day scores in ``LABEL=CSV`` files (written by ``--out``)."""
    parts = []
    for item in labelled:
        label, sep, path = item.partition("=")
        if not sep:
            raise SystemExit(f"--compare {item!r}: expected LABEL=CSV")
        parts.append(pd.read_csv(path, parse_dates=["day"]).assign(run=lambda d, label=label: label + ", " + d["run"]))
    scores = pd.concat(parts, ignore_index=True)
    reference = reference or scores["run"].iloc[0]
    pd.set_option("display.width", 250)
    print(f"Against {reference}, with 95% paired bootstrap intervals over days:")
    print(compare_runs(scores, reference, draws).to_string(index=False, float_format=lambda v: f"{v:.4g}"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", default="results")
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--region", default=None, help="default: every region of the config")
    ap.add_argument("--season", default=None, help="default: every season of the config")
    ap.add_argument("--tiling", action="append", default=[],
                    help="TILE:OVERLAP[:HALO] (repeatable; the first is the reference); default: a set at the trained patch")
    ap.add_argument("--members", type=int, default=None, help="default: sampling.members")
    ap.add_argument("--steps", type=int, default=None, help="solver steps; default: sampling.steps")
    ap.add_argument("--seeds", default="0", help="training seeds whose models are pooled, comma-separated (s{k}.pt)")
    ap.add_argument("--draws", type=int, default=2000, help="bootstrap resamples")
    ap.add_argument("--out", default=None, help="CSV of the per-day scores")
    ap.add_argument("--compare", nargs="+", default=None, metavar="LABEL=CSV",
                    help="compare the per-day scores of earlier --out files instead of sampling")
    ap.add_argument("--reference", default=None, help="the run the others are set against (default: the first)")
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.compare:
        compare_files(a.compare, a.reference, a.draws)
        return
    cfg = load_config(a.config)
    s = cfg["sampling"]
    members, steps = a.members or s["members"], a.steps or s["steps"]
    patch = cfg["encoder"]["patch"]
    try:
        chosen = [TilingChoice.parse(t) for t in a.tiling]
    except ValueError as exc:
        ap.error(str(exc))
    tilings = chosen or [TilingChoice(patch, 0.75), TilingChoice(patch, 0.5), TilingChoice(patch, 0.0),
                           TilingChoice(patch, 0.0, 2), TilingChoice(2 * patch, 0.0)]
    seeds = [int(k) for k in a.seeds.split(",")]
    pairs = [(r, ss, k) for r in cfg["regions"] for ss in cfg["seasons"] for k in seeds
             if (a.region in (None, r)) and (a.season in (None, ss))]
    print(f"{len(pairs)} models (region, season, seed) of {a.results}, validation days, {members} members, "
          f"{s['sampler']} {steps} steps", flush=True)
    parts = [p for p in (season_runs(Path(a.results), cfg, r, ss, k, tilings, members, steps) for r, ss, k in pairs) if p]
    if not parts:
        raise SystemExit(f"no trained diffusion model with validation days under {a.results}/models")
    scores = pd.concat([p[0] for p in parts], ignore_index=True)
    runs = pd.concat([p[1] for p in parts], ignore_index=True)
    if a.out:
        scores.to_csv(a.out, index=False)
    reference = a.reference or scores["run"].iloc[0]
    table = compare_runs(scores, reference, a.draws)
    extra = runs.groupby("run", sort=False)[["x", "spread_skill", "seam", "seam_truth"]].mean()
    table = table.merge(extra, left_on="run", right_index=True)
    table["seconds"] = table["run"].map(runs.groupby("run")["seconds"].sum())
    pd.set_option("display.width", 250)
    print(f"\nTILE:OVERLAP:HALO against {reference}, pooled over {scores.groupby(['region', 'season', 'seed']).ngroups} "
          f"models of region, season and seed (trained patch {sorted(set(runs['trained_patch']))}, halo {sorted(set(runs['trained_halo']))}); "
          f"differences with 95% paired bootstrap intervals over days; x, spread_skill and seams: means over the "
          f"models:")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))


if __name__ == "__main__":
    main()
