"""Speed of the method on this machine: parameter counts, training time per model, samples per second.

    PYTHONPATH=src python benchmarks/method_speed.py [--config config/config.yaml] [--threads 1] [--steps 30]
        [--device auto|cpu|cuda|cuda:N] [--diffusion-only [--batch-sizes 64,256] [--patch 32]]

Uses the config's encoder/diffusion/sampling sections on a random region of the demo's
size (33 x 41 fine pixels; --shape to change), so it needs no data. It runs on the
config's ``device`` (or --device) as the workflow would: training in bf16 autocast on a
GPU, sampling too when ``sampling.autocast`` is set. Training time per
model is extrapolated from --steps timed steps to the configured number of steps.
``--diffusion-only`` times the diffusion model's training alone, at each of
``--batch-sizes`` crops a step and at ``--patch`` pixels a crop (default: the config's), and
how much of a step drawing the batch on the host takes: whether a GPU step is bound by the
work or by the launches around it. Prints figures; nothing is asserted.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import pandas as pd
import torch

from diffscale.core.config import load_config
from diffscale.core.registry import METHOD
from diffscale.method.conditioning import SeasonData
from diffscale.method.devices import device, precision
from diffscale.method.fit import untrained_model
from diffscale.method.networks.encoder import encoder_unet
from diffscale.method.networks.unet import count_parameters
from diffscale.method.sampling import stride_of, teacher_forced
from diffscale.method.tasks import CropTask, NextDayTask


class Identity:
    def forward(self, x):
        return x

    def inverse(self, x):
        return x


def fake_season(h: int, w: int, days: int = 120) -> SeasonData:
    rng = np.random.default_rng(0)
    times = pd.date_range("2001-06-01", periods=days)
    fine = rng.uniform(0, 1, (days, h, w)).astype(np.float32)
    split = {"train": times[20:100], "val": times[100:110], "test": times[110:], "core": times, "pool": times, "beyond": times[:0]}
    return SeasonData("x", {}, np.linspace(33, 35, h), np.linspace(64, 66.5, w), times, fine, times, fine.copy(),
                      {"elevation": rng.uniform(0, 3000, (h, w))}, split, Identity())


def time_batches(task_batch, steps: int) -> float:
    """Seconds per step of drawing the crops alone (the host's part of a training step)."""
    gen = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    for i in range(steps):
        task_batch(i, gen)
    return (time.perf_counter() - t0) / steps


def diffusion_training(cfg: dict, data: SeasonData, unet: torch.nn.Module, batch_sizes: list[int], steps: int,
                       dev: torch.device) -> pd.DataFrame:
    """ms per training step of the diffusion model at each batch size, and the host's share of drawing the batch."""
    model = untrained_model(METHOD, cfg, unet.cpu(), scale=0.08)
    rows = []
    for batch_size in batch_sizes:
        task = CropTask(model.spec, data, batch_size)
        per_step = time_steps(model, task.batch, task.loss, steps, dev)
        rows.append({"patch": model.spec.patch, "batch": batch_size, "ms_per_step": per_step * 1e3,
                     "ms_drawing_batch": time_batches(task.batch, steps) * 1e3,
                     "crops_per_s": batch_size / per_step,
                     "hours_at_config_crops": cfg["diffusion"]["steps"] * cfg["diffusion"]["batch_size"] / batch_size
                     * per_step / 3600})
    return pd.DataFrame(rows)


def time_steps(model, task_batch, loss_fn, steps: int, dev) -> float:
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    gen = torch.Generator().manual_seed(0)
    model.to(dev).train()
    for i in range(steps + 3):
        if i == 3:
            t0 = time.perf_counter()
        batch = task_batch(i, gen)
        batch = [b.to(dev) for b in batch]
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=dev.type == "cuda"):
            loss = loss_fn(model, batch, gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--shape", type=int, nargs=2, default=[33, 41])
    ap.add_argument("--days", type=int, default=3, help="test days sampled for samples/second")
    ap.add_argument("--params-only", action="store_true", help="print parameter counts and stop (e.g. the paper config on a CPU)")
    ap.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N (default: the config's device)")
    ap.add_argument("--diffusion-only", action="store_true", help="time the diffusion model's training alone")
    ap.add_argument("--batch-sizes", default=None, help="with --diffusion-only: crops per step, comma-separated")
    ap.add_argument("--patch", type=int, default=None, help="with --diffusion-only: crop side (encoder.patch)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config(args.config)
    enc, dif, smp = cfg["encoder"], cfg["diffusion"], cfg["sampling"]
    dev = device(args.device or cfg["device"])
    h, w = args.shape
    data = fake_season(h, w)
    print(f"device {dev} (sampling autocast: {smp['autocast'] and dev.type == 'cuda'}), torch threads {torch.get_num_threads()}, region {h} x {w}, config {args.config}")
    if args.diffusion_only:
        enc["patch"] = args.patch or enc["patch"]
        sizes = [int(b) for b in args.batch_sizes.split(",")] if args.batch_sizes else [dif["batch_size"]]
        unet = encoder_unet(enc["history"], tuple(enc["channels"]), enc["attention"])
        table = diffusion_training(cfg, data, unet, sizes, args.steps, dev)
        print(f"diffusion training ({'bf16 autocast' if dev.type == 'cuda' else 'float32'}); hours_at_config_crops: "
              f"the config's {dif['steps']} x {dif['batch_size']} crops at each batch size")
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        return

    unet = encoder_unet(enc["history"], tuple(enc["channels"]), enc["attention"])
    if args.params_only:
        model = untrained_model(METHOD, cfg, unet)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        print(f"encoder U-Net: {count_parameters(unet):,} parameters; diffusion denoiser: {trainable:,} trainable "
              f"(+{count_parameters(model) - trainable:,} frozen encoder and regression part)")
        return
    task = NextDayTask(data.coarse, np.arange(enc["history"], 100), np.arange(100, 110), enc["history"], enc["patch"], enc["batch_size"])
    per_step = time_steps(unet, task.batch, task.loss, args.steps, dev)
    per_epoch = math.ceil(3 * 92 * math.ceil(h / enc["patch"]) * math.ceil(w / enc["patch"]) / enc["batch_size"])
    print(f"encoder: {count_parameters(unet):,} parameters; {per_step * 1e3:.0f} ms/step (batch {enc['batch_size']}, "
          f"patch {enc['patch']}); ~{per_step * per_epoch * enc['epochs']:.0f} s for {enc['epochs']} epochs of a "
          f"3-year 92-day season ({per_epoch} steps/epoch)")

    # Untrained, its regression part too (diffusion.residual: regression): sampling then times both parts.
    model = untrained_model(METHOD, cfg, unet.cpu(), scale=0.08)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    dtask = CropTask(model.spec, data, dif["batch_size"])
    per_step = time_steps(model, dtask.batch, dtask.loss, args.steps, dev)
    print(f"diffusion: {trainable:,} trainable parameters (+{count_parameters(model) - trainable:,} frozen); "
          f"{per_step * 1e3:.0f} ms/step (batch {dif['batch_size']}); ~{per_step * dif['steps']:.0f} s for {dif['steps']} steps")

    model.eval()
    days = data.days["test"][: args.days]
    stride = stride_of(model, smp)
    for name, steps, members in [(smp["sampler"], smp["steps"], smp["beyond_members"]), (smp["sampler"], smp["steps"], smp["members"]),
                                 ("ddpm", smp["ddpm_steps"], 2)]:
        t0 = time.perf_counter()
        with precision(dev, smp["autocast"]):
            teacher_forced(model.to(dev), data, days, members, name, steps, tile=smp["tile"] or None, stride=stride)
        dt = time.perf_counter() - t0
        n = members * len(days)
        print(f"sampling {name} {steps} steps, {members} members: {n / dt:.2f} region-samples/s ({dt / len(days):.2f} s per day)")


if __name__ == "__main__":
    main()
