"""Does bf16 autocast sampling keep float32's scores? A trained run's validation days, on a GPU.

    PYTHONPATH=src python benchmarks/autocast_check.py [--results results] [--config config/config.yaml]
        [--device cuda] [--model diffusion] [--seed-index 0] [--draws 2000] [--compile]

``sampling.autocast`` is off until this is shown. For every region and season of the
config with a trained model (``{results}/models/{region}/{season}/{model}.s{k}.pt``) it
samples the validation days teacher-forced (the days the models validate on: no test or
beyond truth is used, :func:`diffscale.method.conditioning.training_days`) at the
config's sampling settings, three times:

* float32, sampling seed s (the config's);
* bf16 autocast, seed s: the same initial noise and draws, so the difference to the first
  is the arithmetic alone;
* float32, seed s + 1: a new draw, the noise any sampling carries, to set the first
  difference against;
* with ``--compile``, float32 and bf16 with the denoiser compiled (``sampling.compile``),
  seed s: what the compiler's fused kernels change (their seconds include the compilation).

``member_change`` is the RMS difference of the members from float32's (seed s), pixel by
pixel: the arithmetic's effect on the fields themselves, against a new draw's. Scores per
day in the metric space (fair CRPS, squared error of the ensemble mean), as
the evaluation stage takes them; prints each run's CRPS and RMSE and the differences
bf16 - float32 and (new seed) - float32 with 95% paired bootstrap intervals over the days
(:mod:`diffscale.evaluation.paired`), pooled over the seasons, with the wall time of
each run. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from diffscale.core.config import load_config
from diffscale.evaluation.paired import compare_runs, day_scores
from diffscale.method.devices import device, precision
from diffscale.method.sampling import sampling_model, sampling_options, teacher_forced, validation_set

# (name, autocast, seed offset, compiled denoiser)
RUNS = (("float32", False, 0, False), ("bf16", True, 0, False), ("float32, next seed", False, 1, False))
COMPILED_RUNS = (("float32 compiled", False, 0, True), ("bf16 compiled", True, 0, True))


def season_runs(results: Path, cfg: dict, region: str, season: str, model_name: str, seed_index: int,
                device_name: str, runs: tuple = RUNS) -> pd.DataFrame | None:
    """Per-day scores of the three runs of one region and season; None without a model or validation days."""
    path = results / "models" / region / season / f"{model_name}.s{seed_index}.pt"
    if not path.exists():
        return None
    model, dev = sampling_model(path, device_name)
    fast = sampling_model(path, device_name, compile_denoiser=True)[0] if any(r[3] for r in runs) else None
    held_out = validation_set(results / "split" / region, season, cfg["data"]["variable"], cfg["transform"],
                              model.spec.history)
    if held_out is None:
        return None
    data, days, truth, convert = held_out.data, held_out.days, held_out.truth, held_out.convert
    opts = sampling_options(model, cfg["sampling"])
    rows, base = [], None
    for name, autocast, offset, compile_denoiser in runs:
        t0 = time.perf_counter()
        with precision(dev, autocast):
            samples = teacher_forced(fast if compile_denoiser else model, data, days, cfg["sampling"]["members"], **(opts | {"seed": opts["seed"] + offset}))
        seconds = time.perf_counter() - t0
        samples = convert(samples)
        base = samples if base is None else base
        crps, sq = day_scores(samples, truth)
        change = np.nanmean((samples - base) ** 2, axis=(0, -2, -1))  # (T,): how far each member moved from float32's
        rows += [{"region": region, "season": season, "run": name, "day": d, "crps": c, "sq": s, "change_sq": m,
                  "seconds": seconds} for d, c, s, m in zip(days, crps, sq, change)]
    return pd.DataFrame(rows)


def compare(scores: pd.DataFrame, draws: int) -> pd.DataFrame:
    """Each run's CRPS and RMSE, its difference from float32 (paired bootstrap), how far its members moved, its time."""
    table = compare_runs(scores, RUNS[0][0], draws)
    extra = scores.groupby("run", sort=False).apply(
        lambda g: pd.Series({"member_change": np.sqrt(g["change_sq"].mean()),
                             "seconds": g.drop_duplicates(["region", "season"])["seconds"].sum()}), include_groups=False)
    return table.merge(extra, left_on="run", right_index=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", default="results")
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--device", default="cuda", help="auto, cpu, cuda or cuda:N (on a CPU the two precisions are the same)")
    ap.add_argument("--model", default="diffusion")
    ap.add_argument("--seed-index", type=int, default=0, help="which trained seed's model file (s{k}.pt)")
    ap.add_argument("--draws", type=int, default=2000, help="bootstrap resamples")
    ap.add_argument("--out", default=None, help="CSV of the per-day scores")
    ap.add_argument("--compile", action="store_true",
                    help="also sample with the denoiser compiled (sampling.compile), in float32 and in bf16")
    a = ap.parse_args()
    cfg = load_config(a.config)
    results = Path(a.results)
    runs = RUNS + (COMPILED_RUNS if a.compile else ())
    parts = [season_runs(results, cfg, region, season, a.model, a.seed_index, a.device, runs)
             for region in cfg["regions"] for season in cfg["seasons"]]
    scores = pd.concat([p for p in parts if p is not None], ignore_index=True)
    if a.out:
        scores.to_csv(a.out, index=False)
    dev = device(a.device)
    where = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU"
    print(f"{a.model} s{a.seed_index} on {where} (torch {torch.__version__}), "
          f"{cfg['sampling']['members']} members, {cfg['sampling']['sampler']} {cfg['sampling']['steps']} steps; "
          f"validation days of {scores.groupby(['region', 'season']).ngroups} region-seasons, pooled; "
          f"differences from float32 (same seed) with 95% paired bootstrap intervals over days:")
    pd.set_option("display.width", 200)
    print(compare(scores, a.draws).to_string(index=False, float_format=lambda v: f"{v:.4g}"))


if __name__ == "__main__":
    main()
