"""Fitting the transfer encoder and every trained model, from the config's sections and from files.

Thin glue between the tasks (:mod:`diffscale.method.tasks`) and the loop
(:func:`diffscale.method.loop.train_loop`). One function trains any model of the
registry (:mod:`diffscale.core.registry`): the diffusion models keep their EMA weights,
the regressors the weights that scored best on the validation days (with a few dozen
training days they overfit within the budget). ``gpus > 1`` in a model's section runs
the same training under ``torchrun`` (DistributedDataParallel, one process per GPU, or
gloo processes on a CPU), through this module's command line.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import subprocess
import sys
import tempfile
from dataclasses import replace
from datetime import date
from pathlib import Path

import pandas as pd
import torch

from diffscale.core import registry
from diffscale.core.io import atomic_path
from diffscale.core.runlog import log_to
from diffscale.method.conditioning import SeasonData, load_season
from diffscale.method.loop import LoopConfig, LoopResult, loss_curve_lines, train_loop
from diffscale.method.networks.encoder import encoder_unet
from diffscale.method.networks.unet import UNet, count_parameters
from diffscale.method.residual import ResidualModel, ResidualSpec, model_class
from diffscale.method.tasks import CropTask, NextDayTask, pretraining_days

log = logging.getLogger("diffscale.method.fit")


def write_curve(result: LoopResult, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text("step,loss,val_loss\n" + "\n".join(loss_curve_lines(result)) + "\n")


def day_strings(days: dict[str, pd.DatetimeIndex]) -> dict[str, list[str]]:
    """A run's days as ISO dates, the form its checkpoint and saved model keep."""
    return {name: [d.strftime("%Y-%m-%d") for d in index] for name, index in days.items()}


def fitted_days(path: str | os.PathLike) -> dict[str, list[date]]:
    """The days a saved model (or encoder) was fitted on: ``train`` (batches) and ``val`` (early stopping / selection).

    Read from the ``days`` the training wrote into the file, i.e. the days its data
    loader actually drew from, not the split's day lists.
    """
    state = torch.load(path, map_location="cpu", weights_only=False)
    if "days" not in state:
        raise ValueError(f"{path} records no training days (written before the training-day contract); retrain it")
    return {name: [date.fromisoformat(d) for d in days] for name, days in state["days"].items()}


def load_encoder(path: str | os.PathLike) -> UNet:
    state = torch.load(path, map_location="cpu", weights_only=False)
    model = encoder_unet(state["history"], tuple(state["channels"]), state["attention"])
    model.load_state_dict(state["state"])
    return model.eval()


def save_encoder(model: UNet, cfg: dict, path: str | os.PathLike, extra: dict | None = None) -> None:
    with atomic_path(path) as tmp:
        torch.save({"history": cfg["history"], "channels": list(cfg["channels"]), "attention": cfg["attention"],
                    "state": model.state_dict(), **(extra or {})}, tmp)


def pretrain_encoder(data: SeasonData, months: list[int], cfg: dict, checkpoint: str | os.PathLike,
                     stop_after: int | None = None, device_name: str = "auto") -> tuple[UNet, LoopResult]:
    """Next-day U-Net on the scaled coarse-on-fine record (days of ``months``), validated on the last years.

    device_name: the config's ``device`` (:func:`diffscale.method.devices.device`).
    """
    held_out = data.days["val"].union(data.days["test"])
    train_idx, val_idx = pretraining_days(data.coarse_times, months, cfg["history"], cfg["val_years"], held_out)
    task = NextDayTask(data.coarse, train_idx, val_idx, cfg["history"], cfg["patch"], cfg["batch_size"], seed=cfg["seed"])
    days = {"train": data.coarse_times[task.train_index], "val": data.coarse_times[task.val_index]}
    h, w = data.shape
    per_day = math.ceil(h / cfg["patch"]) * math.ceil(w / cfg["patch"])
    steps_per_epoch = max(1, math.ceil(len(train_idx) * per_day / cfg["batch_size"]))
    loop = LoopConfig(steps=cfg["epochs"] * steps_per_epoch, lr=cfg["lr"], weight_decay=0.0, ema_decay=None,
                      grad_clip=1.0, checkpoint_every=steps_per_epoch, val_every=steps_per_epoch,
                      patience=cfg["patience"], seed=cfg["seed"], log_every=max(1, steps_per_epoch // 2))
    torch.manual_seed(cfg["seed"])  # the initial weights
    model = encoder_unet(cfg["history"], tuple(cfg["channels"]), cfg["attention"])
    log.info("encoder: %d parameters, %d training / %d validation days, %d steps per epoch, up to %d epochs",
             count_parameters(model), len(train_idx), len(val_idx), steps_per_epoch, cfg["epochs"])
    result = train_loop(model, task.batch, task.loss, loop, checkpoint, val_fn=task.validate if len(val_idx) else None,
                        stop_after=stop_after, signature={"encoder": dict(cfg), "months": list(months),
                                                          "days": day_strings(days)},
                        device_name=device_name)
    result.days = days
    return result.model.cpu().eval(), result


def pretrain_files(split_dir: str | os.PathLike, season: str, variable: str, months: list[int], cfg: dict,
                   checkpoint: str | os.PathLike, output: str | os.PathLike, curve: str | os.PathLike,
                   device_name: str = "auto") -> LoopResult:
    """pretrain_encoder from the split files to the saved encoder and its loss curve."""
    data = load_season(split_dir, season, variable)
    model, result = pretrain_encoder(data, months, cfg, checkpoint, device_name=device_name)
    save_encoder(model, cfg, output, extra={"parameters": count_parameters(model), "seconds": result.seconds,
                                            "steps": result.steps, "val": result.val, "days": day_strings(result.days)})
    write_curve(result, curve)
    Path(checkpoint).unlink(missing_ok=True)
    log.info("encoder: %d parameters, %d steps in %.1f s (early stop: %s), validation L1 %s",
             count_parameters(model), result.steps, result.seconds, result.stopped_early, result.val)
    return result


def _loop_config(name: str, cfg: dict, validates: bool) -> LoopConfig:
    """The loop of a model's section; regressors return their best validated weights, early stopping or not."""
    patience = None
    if registry.entry(name).family == "regressor":
        patience = cfg["patience"] if cfg["patience"] is not None else cfg["steps"] // cfg["checkpoint_every"] + 1
    return LoopConfig(steps=cfg["steps"], lr=cfg["lr"], weight_decay=cfg["weight_decay"], ema_decay=cfg["ema_decay"],
                      grad_clip=cfg["grad_clip"], checkpoint_every=cfg["checkpoint_every"],
                      val_every=cfg["checkpoint_every"] if validates else 0, patience=patience, seed=cfg["seed"],
                      log_every=max(1, cfg["steps"] // 20))


def train_model(data: SeasonData, name: str, encoder: UNet | None, enc_cfg: dict, cfg: dict, halo: int,
                checkpoint: str | os.PathLike, stop_after: int | None = None,
                device_name: str = "auto") -> tuple[ResidualModel, LoopResult]:
    """Model ``name`` of the registry on the season's training crops, the encoder (if it uses one) frozen inside.

    cfg: the model's section (``diffusion``, or the resolved ``baselines`` of
    :func:`diffscale.core.config.baseline_settings`); encoder: the pretrained temporal
    U-Net, ignored by models that do not use it; device_name: the config's ``device``.
    """
    spec = ResidualSpec.from_config(name, enc_cfg, cfg, halo)
    task = CropTask(spec, data, cfg["batch_size"], seed=cfg["seed"])
    spec = replace(spec, scale=task.target_std())
    torch.manual_seed(cfg["seed"])  # the initial weights
    model = model_class(name)(spec, encoder)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    log.info("%s: %d trainable parameters (+%d frozen encoder), residual scale %.4f, %d training days", name,
             trainable, count_parameters(model) - trainable, spec.scale, task.train[0].shape[0])
    loop = _loop_config(name, cfg, task.val is not None)
    result = train_loop(model, task.batch, task.loss, loop, checkpoint, val_fn=task.validate if task.val is not None else None,
                        stop_after=stop_after, signature={"spec": spec, "config": dict(cfg), "days": day_strings(task.days)},
                        device_name=device_name)
    result.days = task.days
    return result.model.cpu().eval(), result


def fit_files(name: str, split_dir: str | os.PathLike, season: str, variable: str, encoder_path: str | os.PathLike | None,
              enc_cfg: dict, cfg: dict, halo: int, checkpoint: str | os.PathLike, output: str | os.PathLike,
              curve: str | os.PathLike, device_name: str = "auto") -> LoopResult:
    """train_model from the split files to the saved model and its loss curve; under torchrun rank 0 writes."""
    data = load_season(split_dir, season, variable)
    encoder = load_encoder(encoder_path) if encoder_path is not None else None
    model, result = train_model(data, name, encoder, enc_cfg, cfg, halo, checkpoint, device_name=device_name)
    if int(os.environ.get("RANK", 0)) == 0:
        trainable = sum(p.numel() for key, p in model.named_parameters() if not key.startswith("encoder."))
        model.save(output, extra={"trainable_parameters": trainable, "parameters": count_parameters(model),
                                  "seconds": result.seconds, "steps": result.steps, "days": day_strings(result.days),
                                  "encoder": None if encoder_path is None else str(encoder_path)})
        write_curve(result, curve)
        Path(checkpoint).unlink(missing_ok=True)
        log.info("%s: %d trainable parameters, %d steps in %.1f s, validation loss %s", name, trainable, result.steps,
                 result.seconds, result.val)
    return result


def train_files(name: str, split_dir: str | os.PathLike, season: str, variable: str,
                encoder_path: str | os.PathLike | None, enc_cfg: dict, cfg: dict, halo: int,
                checkpoint: str | os.PathLike, output: str | os.PathLike, curve: str | os.PathLike,
                log_file: str | os.PathLike | None = None, device_name: str = "auto") -> None:
    """fit_files in this process, or under torchrun when the model's section asks for ``gpus`` > 1.

    encoder_path: None for the models that do not use the encoder; log_file: the rule's
    log, into which rank 0's log is folded; device_name: the config's ``device`` (``auto``
    or ``cuda`` give each torchrun process the GPU of its local rank).
    """
    procs = cfg.get("gpus", 1)
    if procs == 1:
        fit_files(name, split_dir, season, variable, encoder_path, enc_cfg, cfg, halo, checkpoint, output, curve,
                  device_name)
        return
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump({"encoder": dict(enc_cfg), "model": dict(cfg)}, fh)
    rank0 = Path(f"{log_file or output}.rank0")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}",
           "-m", "diffscale.method.fit", "--model", name, "--split-dir", str(split_dir), "--season", season,
           "--variable", variable, *(["--encoder", str(encoder_path)] if encoder_path else []), "--config", fh.name,
           "--halo", str(halo), "--checkpoint", str(checkpoint), "--output", str(output), "--curve", str(curve),
           "--log-file", str(rank0), "--device", device_name]
    log.info("launching %d processes: %s", procs, " ".join(cmd))
    # The library these processes import is this one, installed or not.
    src = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))}
    try:
        subprocess.run(cmd, check=True, env=env)
    finally:
        Path(fh.name).unlink(missing_ok=True)
        if rank0.exists():  # fold rank 0's log into the rule's log
            log.info("rank 0:\n%s", rank0.read_text())
            rank0.unlink()


def main(argv: list[str] | None = None) -> None:
    """``torchrun --nproc_per_node N -m diffscale.method.fit ARGS``: the multi-process (DDP) entry of fit_files."""
    ap = argparse.ArgumentParser(prog="python -m diffscale.method.fit", description=main.__doc__)
    for name in ("model", "split-dir", "season", "variable", "config", "checkpoint", "output", "curve"):
        ap.add_argument(f"--{name}", required=True)
    ap.add_argument("--encoder", default=None, help="the pretrained encoder; left out by models that do not use it")
    ap.add_argument("--halo", type=int, required=True)
    ap.add_argument("--log-file", default=None)
    ap.add_argument("--device", default="auto", help="the config's device: auto, cpu, cuda or cuda:N")
    a = ap.parse_args(argv)
    if int(os.environ.get("RANK", 0)) == 0:
        log_to(a.log_file)
    cfg = json.loads(Path(a.config).read_text())
    fit_files(a.model, a.split_dir, a.season, a.variable, a.encoder, cfg["encoder"], cfg["model"], a.halo,
              a.checkpoint, a.output, a.curve, a.device)


if __name__ == "__main__":
    main()
