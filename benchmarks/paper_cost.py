"""What the long product costs: FLOPs per tile, tiles per day and region, GPU-hours, checked by a timed run.

    PYTHONPATH=src python benchmarks/paper_cost.py [--config config/paper.yaml] [--tflops 400]
        [--tiling 16:0.75:4 --tiling 16:0:1 --tiling 32:0 ...] [--shape area1=433x358]
        [--measure [--device cuda] [--autocast] [--compile default] [--channels-last] [--tf32]
         [--measure-shape area1] [--measure-members 8] [--measure-steps 10,5] [--profile]]

For every region of the config (its fine grid: the G5NR cells inside the box, or --shape
for a source whose grid is only known from files) and every tiling TILE:OVERLAP[:HALO]
(the config's own first, then the --tiling ones; HALO: the config's when left out), it prints:

* FLOPs of one denoiser evaluation of one tile and of the encoder's features of one tile,
  counted by torch.utils.flop_counter on the library's own model (diffusion, built from
  the config's encoder/diffusion sections);
* tiles per day and region (the sampling tiling of diffscale.method.tiling) and ``x``, the
  tile pixels computed per region pixel at each solver step (halos included: 1 is the
  one-pass limit, the paper's 16-pixel tiles at stride 2 compute every pixel ~62 times);
* FLOPs per day (beyond_members x NFE x tiles x denoiser + members x tiles x encoder) and
  for the product: every day of data.coarse_period outside the fine record in a configured
  season, each region; projected GPU-hours at ``--tflops`` sustained;
* training: diffusion.steps x batch_size crops x (3 x denoiser + encoder), the encoder
  features being frozen (no backward); and the encoder's pretraining epochs.

``--measure`` times the denoiser on batches of tiles on ``--device`` (achieved FLOP/s; this
CPU by default, bf16 autocast on a GPU with ``--autocast``) and whole-region ``sample_day``
runs (each member its own history, as on the beyond days) per tiling and solver steps, and
compares each with the time the FLOP count predicts at the measured throughput: the check
that the projection counts what sampling really does. ``--compile``, ``--channels-last`` and
``--tf32`` time the denoiser compiled by torch.compile (``sampling.compile``), with its
weights channels-last, and with matmuls in TF32. With ``--measure-shape REGION`` the
days are the region's own grid, and the product's hours at the measured speed are printed.
``--profile`` adds where one day's time goes (torch.profiler: sample_day's parts, then the
operators). Prints figures; asserts nothing. The H200 figures in the README came from it.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch.utils.flop_counter import FlopCounterMode

from diffscale.core.allocator import retain_freed_memory
from diffscale.core.config import load_config
from diffscale.core.grids import Box, g5nr_grid
from diffscale.core.io import days_in
from diffscale.method.conditioning import raw_channels
from diffscale.method.devices import device, precision
from diffscale.method.diffusion import DiffusionDownscaler
from diffscale.method.edm import nfe
from diffscale.method.fit import untrained_model
from diffscale.method.residual import with_halo
from diffscale.method.tiling import TilingChoice


@dataclass(frozen=True)
class TileCost:
    tile: int
    denoiser: float  # FLOPs of one denoiser evaluation of one tile
    encoder: float  # FLOPs of the encoder's features of one tile


def build_model(cfg: dict) -> DiffusionDownscaler:
    torch.manual_seed(0)
    # With diffusion.residual: regression the model holds its regression part, which runs once per member and
    # day (not per solver step); the FLOP count below is the denoiser's and the encoder's.
    return untrained_model("diffusion", cfg, scale=0.5).eval()


def flops(fn) -> float:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        fn()
    return float(counter.get_total_flops())


def tile_cost(model: DiffusionDownscaler, tile: int) -> TileCost:
    """FLOPs of one tile: the denoiser at one noise level, and the encoder's features of its history."""
    h, dev = model.spec.history, next(model.parameters()).device
    raw = torch.zeros(1, raw_channels(model.spec.static), tile, tile, device=dev)
    hist = torch.zeros(1, h, tile, tile, device=dev)
    cond = model.condition(raw, hist)
    x, sigma = torch.zeros(1, 1, tile, tile, device=dev), torch.ones(1, device=dev)
    enc = flops(lambda: model.encoder(hist)) if model.encoder is not None else 0.0
    return TileCost(tile, flops(lambda: model.denoiser(x, sigma, cond)), enc)




def product_days(cfg: dict) -> int:
    """Days of the coarse period outside the fine record in a configured season: what the product samples."""
    days = days_in(*cfg["data"]["coarse_period"])
    fine = days_in(*cfg["data"]["fine_period"])
    months = {m for ms in cfg["seasons"].values() for m in ms}
    return int((~days.isin(fine) & days.month.isin(list(months))).sum())


def region_shapes(cfg: dict, overrides: dict[str, tuple[int, int]]) -> dict[str, tuple[int, int]]:
    return {name: overrides.get(name) or g5nr_grid(Box.from_config(box)).shape for name, box in cfg["regions"].items()}


def cost_table(cfg: dict, model: DiffusionDownscaler, shapes: dict, tilings: list[TilingChoice],
               tflops: float) -> pd.DataFrame:
    s = cfg["sampling"]
    evals = nfe(s["sampler"], s["steps"], model.denoiser)
    members, days = s["beyond_members"], product_days(cfg)
    rows = []
    for choice in tilings:
        tile, cost = choice.tile, tile_cost(model, choice.tile)
        for region, shape in shapes.items():
            n = len(choice.tiling(*shape, s["halo"]).origins)
            per_day = members * n * (evals * cost.denoiser + cost.encoder)
            rows.append({"region": region, "pixels": f"{shape[0]}x{shape[1]}", "tile": tile, "overlap": choice.overlap,
                         "halo": choice.halo_or(s["halo"]),
                         "tile_GFLOP": cost.denoiser / 1e9, "encoder_GFLOP": cost.encoder / 1e9, "tiles_per_day": n,
                         "x": n * tile * tile / (shape[0] * shape[1]), "day_PFLOP": per_day / 1e15, "days": days,
                         "product_EFLOP": per_day * days / 1e18,
                         "product_GPU_h": per_day * days / (tflops * 1e12) / 3600})
    return pd.DataFrame(rows)


def training_cost(cfg: dict, model: DiffusionDownscaler, shapes: dict, tflops: float) -> pd.DataFrame:
    d, e = cfg["diffusion"], cfg["encoder"]
    patch = tile_cost(model, e["patch"])
    crops = d["steps"] * d["batch_size"]
    diffusion = crops * (3 * patch.denoiser + patch.encoder)
    # Pretraining: the temporal U-Net on every season day's patches, forward + backward.
    unet = model.encoder.unet
    hist = torch.zeros(1, e["history"], e["patch"], e["patch"])
    per_patch = 3 * flops(lambda: unet(hist))
    days = len(days_in(*cfg["data"]["coarse_period"]))
    patches = sum(math.ceil(h / e["patch"]) * math.ceil(w / e["patch"]) for h, w in shapes.values())
    encoder = e["epochs"] * days * patches * per_patch
    rows = [{"model": "diffusion (per region and season)", "EFLOP": diffusion / 1e18, "GPU_h": diffusion / (tflops * 1e12) / 3600},
            {"model": "encoder (all regions, all seasons)", "EFLOP": encoder / 1e18, "GPU_h": encoder / (tflops * 1e12) / 3600}]
    return pd.DataFrame(rows)


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def measure_throughput(model: DiffusionDownscaler, cost: TileCost, batch: int, repeats: int, dev: torch.device,
                       autocast: bool) -> float:
    """Achieved FLOP/s of the denoiser on ``batch`` tiles of ``cost.tile`` pixels on ``dev`` (bf16 autocast if asked)."""
    tile = cost.tile
    raw = torch.zeros(batch, raw_channels(model.spec.static), tile, tile, device=dev)
    hist = torch.randn(batch, model.spec.history, tile, tile, device=dev)
    x, sigma = torch.randn(batch, 1, tile, tile, device=dev), torch.ones(batch, device=dev)
    with torch.no_grad(), precision(dev, autocast):
        cond = model.condition(raw, hist)
        model.denoiser(x, sigma, cond)  # warm-up (and cuDNN's choice of kernels)
        _sync(dev)
        t0 = time.perf_counter()
        for _ in range(repeats):
            model.denoiser(x, sigma, cond)
        _sync(dev)
    return cost.denoiser * batch * repeats / (time.perf_counter() - t0)


def timed_day(model: DiffusionDownscaler, shape: tuple[int, int], members: int, steps: int, tile: int, stride: int,
              dev: torch.device, autocast: bool, repeats: int) -> float:
    """Median seconds of one whole-region ``sample_day`` (autoregressive: each member its own history) on ``dev``.

    After one untimed day, so that cuDNN's kernel choice and the allocator's growth stay out.
    """
    raw = torch.zeros(raw_channels(model.spec.static), *shape)
    hist = torch.randn(members, model.spec.history, *shape)
    times = []
    for r in range(repeats + 1):
        gen = torch.Generator().manual_seed(r)
        _sync(dev)
        t0 = time.perf_counter()
        with precision(dev, autocast):
            model.sample_day(raw, hist, members, "dpmpp", steps, gen, tile, stride)  # returns on the CPU: synchronised
        times.append(time.perf_counter() - t0)
    return float(np.median(times[1:]))


def profile_day(model: DiffusionDownscaler, shape: tuple[int, int], members: int, steps: int, tile: int, stride: int,
                dev: torch.device, autocast: bool) -> None:
    """Print where one whole-region day's time goes: sample_day's parts, then the operators (torch.profiler)."""
    from torch.profiler import ProfilerActivity, profile

    raw = torch.zeros(raw_channels(model.spec.static), *shape)
    hist = torch.randn(members, model.spec.history, *shape)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
    with precision(dev, autocast):
        model.sample_day(raw, hist, members, "dpmpp", steps, torch.Generator().manual_seed(0), tile, stride)  # warm-up
        with profile(activities=activities) as prof:
            model.sample_day(raw, hist, members, "dpmpp", steps, torch.Generator().manual_seed(1), tile, stride)
    events = prof.key_averages()
    on_device = "device_time_total" if dev.type == "cuda" else "cpu_time_total"
    parts = [(e.key, e.cpu_time_total / 1e6, getattr(e, on_device, 0.0) / 1e6) for e in events
             if e.key in ("condition", "features", "residual", "reference")]
    print(f"\nProfile of one day ({tile}-px tiles, stride {stride}, {members} members, {steps} steps): the parts "
          f"(wall time as the host saw it, s; device time, s):")
    for key, host, device_s in parts:
        print(f"  {key:10s} {host:8.3f} {device_s:8.3f}")
    sort = "self_device_time_total" if dev.type == "cuda" else "self_cpu_time_total"
    print(events.table(sort_by=sort, row_limit=20, max_name_column_width=40))


def measured_table(cfg: dict, model: DiffusionDownscaler, costs: dict[int, TileCost], shape: tuple[int, int],
                   region: str | None, tilings: list[TilingChoice], members: int, steps: list[int], throughput: float,
                   dev: torch.device, autocast: bool, repeats: int) -> pd.DataFrame:
    """Timed whole-region days against the FLOP count at the measured throughput, per tiling and solver steps.

    With a configured region's own grid (``region``), the product's hours at the measured speed too:
    seconds a day x the product's days (:func:`product_days`). costs: each tile's FLOPs, counted
    before the model was compiled (if it was).
    """
    rows = []
    for choice in tilings:
        tiling, cost = choice.tiling(*shape, cfg["sampling"]["halo"]), costs[choice.tile]
        n = len(tiling.origins)
        with_halo(model, tiling.halo)
        for k in steps:
            predicted = members * n * (nfe("dpmpp", k, model.denoiser) * cost.denoiser + cost.encoder) / throughput
            seconds = timed_day(model, shape, members, k, tiling.tile, tiling.step, dev, autocast, repeats)
            row = {"tile": tiling.tile, "overlap": choice.overlap, "halo": tiling.halo, "steps": k, "members": members,
                   "tiles_per_day": n,
                   "predicted_s": predicted, "measured_s": seconds, "ratio": seconds / predicted}
            if region is not None:
                row["product_h_measured"] = seconds * product_days(cfg) / 3600
            rows.append(row)
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default="config/paper.yaml")
    ap.add_argument("--tflops", type=float, default=400.0, help="sustained throughput for the projection (TFLOP/s)")
    ap.add_argument("--tiling", action="append", default=[],
                    help="TILE:OVERLAP[:HALO] to cost besides the config's (repeatable; HALO: the config's when left out)")
    ap.add_argument("--shape", action="append", default=[], help="REGION=HxW: a region's fine grid in pixels")
    ap.add_argument("--measure", action="store_true",
                    help="time the denoiser and whole-region days on --device, against the FLOP count")
    ap.add_argument("--device", default="cpu", help="where --measure runs: cpu, cuda or cuda:N")
    ap.add_argument("--autocast", action="store_true", help="--measure in bf16 autocast (a GPU only, as sampling.autocast)")
    ap.add_argument("--measure-shape", default="48x48", help="HxW, or a region of the config: its grid, and the product's "
                    "hours at the measured speed")
    ap.add_argument("--measure-members", type=int, default=2, help="members of the timed days")
    ap.add_argument("--measure-steps", default="2", help="solver steps of the timed days, comma-separated (e.g. 10,5)")
    ap.add_argument("--measure-batch", type=int, default=64, help="tiles per denoiser call for the throughput")
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats (after one warm-up)")
    ap.add_argument("--profile", action="store_true", help="with --measure: where one day's time goes (torch.profiler)")
    ap.add_argument("--channels-last", action="store_true", help="--measure with the denoiser's weights channels-last")
    ap.add_argument("--tf32", action="store_true", help="--measure with matmuls in TF32 too (cuDNN's convolutions are)")
    ap.add_argument("--compile", default=None, metavar="MODE",
                    help="--measure with torch.compile'd denoiser (default, reduce-overhead or max-autotune)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    a = ap.parse_args()
    retain_freed_memory()  # as every workflow job does (workflow/scripts/_helpers.py)
    if a.threads:
        torch.set_num_threads(a.threads)
    cfg = load_config(a.config)
    model = build_model(cfg)
    s = cfg["sampling"]
    try:
        tilings = [TilingChoice(s["tile"] or cfg["encoder"]["patch"], s["overlap"])]
        tilings += [TilingChoice.parse(t) for t in a.tiling]
    except ValueError as exc:
        ap.error(str(exc))
    shapes = region_shapes(cfg, {k: tuple(map(int, v.split("x"))) for k, v in (x.split("=") for x in a.shape)})
    pd.set_option("display.width", 200)
    print(f"{a.config}: denoiser channels {cfg['diffusion']['channels']}, encoder {cfg['encoder']['channels']}, "
          f"history {cfg['encoder']['history']}, halo {s['halo']}, {s['sampler']} {s['steps']} steps "
          f"(NFE {nfe(s['sampler'], s['steps'], model.denoiser)}), {s['beyond_members']} members, at {a.tflops:g} TFLOP/s")
    print("\nSampling the product (every configured-season day of the coarse period outside the fine record):")
    print(cost_table(cfg, model, shapes, tilings, a.tflops).to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print("\nTraining:")
    print(training_cost(cfg, model, shapes, a.tflops).to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if a.measure:
        dev = device(a.device)
        model = model.to(dev)
        tile = cfg["encoder"]["patch"]
        costs = {t: tile_cost(model, t) for t in {tile} | {c.tile for c in tilings}}  # counted before any compile
        if a.tf32:
            torch.set_float32_matmul_precision("high")
        if a.channels_last:
            model.denoiser.to(memory_format=torch.channels_last)
        if a.compile:
            model.denoiser = torch.compile(model.denoiser, mode=None if a.compile == "default" else a.compile)
        throughput = measure_throughput(model, costs[tile], a.measure_batch, a.repeats, dev, a.autocast)
        region = a.measure_shape if a.measure_shape in shapes else None
        shape = shapes[region] if region else tuple(map(int, a.measure_shape.split("x")))
        name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
        precision_name = "bf16 autocast" if a.autocast and dev.type == "cuda" else "float32"
        precision_name += ", channels-last" if a.channels_last else ""
        precision_name += ", TF32 matmuls" if a.tf32 else ""
        precision_name += f", torch.compile {a.compile}" if a.compile else ""
        print(f"\nMeasured on {name} ({precision_name}, torch {torch.__version__}): the denoiser on {a.measure_batch} "
              f"tiles of {tile} px at {throughput / 1e12:.4g} TFLOP/s")
        steps = [int(k) for k in a.measure_steps.split(",")]
        table = measured_table(cfg, model, costs, shape, region, tilings, a.measure_members, steps, throughput, dev,
                               a.autocast, a.repeats)
        print(f"Whole-region days of {shape[0]}x{shape[1]} pixels ({region or 'no configured region'}), dpmpp, median of "
              f"{a.repeats}; predicted_s: the FLOP count at that throughput (the ratio is what tiling, stitching and the "
              f"solver add):")
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        if a.profile:
            tiling = tilings[0].tiling(*shape, s["halo"])
            with_halo(model, tiling.halo)
            profile_day(model, shape, a.measure_members, steps[0], tiling.tile, tiling.step, dev, a.autocast)


if __name__ == "__main__":
    main()
