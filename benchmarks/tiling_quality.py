"""Sampling tilings compared on a trained model: skill, seams and time, on the validation days.

    PYTHONPATH=src python benchmarks/tiling_quality.py --results results [--config config/config.yaml]
        [--region west --season DJF] [--tiling 16:0.75 --tiling 16:0 --tiling 48:0 ...] [--days val]

Loads the trained diffusion model of one region and season from a finished run
(``results/models/{region}/{season}/diffusion.s0.pt`` and the split files), samples the
chosen days teacher-forced with each tiling TILE:OVERLAP (halo from the config), and
prints, in the metric space of summary.csv: RMSE of the ensemble mean, fair CRPS,
spread/skill, the seam ratio of the members at that tiling's core boundaries
(:func:`diffscale.method.tiling.seam_ratio`; about 1 = no seams; the truth's own ratio at
the same boundaries beside it), the tile pixels computed per region pixel and solver
step, and the seconds it took. A tile at least as large as the region is one pass: no
interior boundary, no seam to measure.

Validation days by default (``--days val``), those the models validate on (no test day in
their history, :func:`diffscale.method.conditioning.training_days`): a sampling choice made
from these numbers reads no test truth. Prints figures; asserts nothing.
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
from diffscale.core.transform import to_metric_space
from diffscale.method.conditioning import load_season, training_days
from diffscale.method.residual import load_model
from diffscale.method.sampling import teacher_forced
from diffscale.method.tiling import Tiling, seam_ratio


def tiling_of(shape: tuple[int, int], tile: int, halo: int, overlap: float) -> tuple[Tiling, int]:
    core = tile - 2 * halo
    stride = max(1, round(core * (1 - overlap)))
    return Tiling(shape[0], shape[1], tile, halo, stride), stride


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", default="results")
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--region", default=None, help="default: the config's first region")
    ap.add_argument("--season", default=None, help="default: the config's first season")
    ap.add_argument("--tiling", action="append", default=[], help="TILE:OVERLAP (repeatable); default: a set of tilings")
    ap.add_argument("--days", default="val", choices=["val", "test"], help="which held-out days to sample")
    ap.add_argument("--members", type=int, default=None, help="default: sampling.members")
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    cfg = load_config(a.config)
    region, season = a.region or next(iter(cfg["regions"])), a.season or next(iter(cfg["seasons"]))
    s, t = cfg["sampling"], cfg["transform"]
    split = Path(a.results) / "split" / region
    data = load_season(split, season, cfg["data"]["variable"])
    model = load_model(Path(a.results) / "models" / region / season / "diffusion.s0.pt")
    days = training_days(data, "val", model.spec.history) if a.days == "val" else data.days["test"]
    members = a.members or s["members"]
    patch, halo = model.spec.patch, s["halo"]
    tilings = [tuple(x.split(":")) for x in a.tiling] or [(patch, 0.75), (patch, 0.5), (patch, 0.0), (2 * patch, 0.0),
                                                          (4 * patch, 0.0)]

    def space(scaled: np.ndarray) -> np.ndarray:
        return to_metric_space(data.scaler.inverse(scaled.astype(np.float64)), t["log10"], t["floor"])

    truth = space(np.stack([data.fine_on(d) for d in days]))
    print(f"{region} {season}: {len(days)} {a.days} days of {data.shape[0]} x {data.shape[1]} pixels, {members} members, "
          f"{s['sampler']} {s['steps']} steps, halo {halo}, training patch {patch}", flush=True)
    rows = []
    for tile, overlap in tilings:
        tile, overlap = int(tile), float(overlap)
        tiling, stride = tiling_of(data.shape, tile, halo, overlap)
        t0 = time.perf_counter()
        scaled = teacher_forced(model, data, days, members, s["sampler"], s["steps"], s["seed"], tile, stride)
        seconds = time.perf_counter() - t0
        x = space(scaled)
        one_pass = len(tiling.origins) == 1
        rows.append({"tile": tile, "overlap": overlap, "stride": stride, "tiles": len(tiling.origins),
                     "x": len(tiling.origins) * tile * tile / (data.shape[0] * data.shape[1]),
                     "rmse": metrics.rmse(truth, x.mean(axis=0)), "crps": metrics.crps(truth, x),
                     "spread_skill": metrics.spread_skill(truth, x),
                     "seam": np.nan if one_pass else seam_ratio(torch.from_numpy(x), tiling),
                     "seam_truth": np.nan if one_pass else seam_ratio(torch.from_numpy(truth), tiling),
                     "seconds": seconds})
        print("  " + ", ".join(f"{k} {v:.4g}" for k, v in rows[-1].items()), flush=True)  # progress
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.4g}"))


if __name__ == "__main__":
    main()
