"""Fitting the transfer encoder and every trained model, from the config's sections and from files.

Thin glue between the tasks (:mod:`diffscale.method.tasks`) and the loop
(:func:`diffscale.method.loop.train_loop`). One function trains any model of the
registry (:mod:`diffscale.core.registry`): the diffusion models keep their EMA weights,
the regressors the weights that scored best on the validation days (with a few dozen
training days they overfit within the budget). A diffusion model with a regression part
(``diffusion.residual: regression``) is trained after it, from its saved file
(:func:`load_regressor`), on the residual from its teacher-forced predictions. ``gpus > 1`` in a model's section runs
the same training under ``torchrun`` (DistributedDataParallel, one process per GPU, or
gloo processes on a CPU), through this module's command line.
"""

from __future__ import annotations

import argparse
import hashlib
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

import numpy as np
import pandas as pd
import torch

from diffscale.core import registry
from diffscale.core.config import baseline_settings, static_fields
from diffscale.core.io import DataValidationError, atomic_path
from diffscale.core.runlog import log_to
from diffscale.method import conditioning as cm
from diffscale.method.conditioning import SeasonData, load_season
from diffscale.method.devices import device
from diffscale.method.diffusion import check_regression_part
from diffscale.method.loop import LoopConfig, LoopResult, loss_curve_lines, train_loop
from diffscale.method.networks.encoder import TemporalUNet, encoder_unet
from diffscale.method.networks.unet import UNet, count_parameters
from diffscale.method.probe import probe
from diffscale.method.residual import ResidualModel, ResidualSpec, load_model, model_class
from diffscale.method.tasks import CropTask, NextDayTask, Reference, pretraining_days
from diffscale.method.sampling import stride_of

log = logging.getLogger("diffscale.method.fit")


def write_curve(result: LoopResult, path: str | os.PathLike) -> None:
    """step,loss,val_loss[,reference...]: each reference (``result.references``) a constant column."""
    names = list(result.references)
    tail = "".join(f",{result.references[n]:.6g}" for n in names)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(",".join(["step", "loss", "val_loss", *names]) + "\n"
                             + "".join(f"{line}{tail}\n" for line in loss_curve_lines(result)))


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


def load_encoder(path: str | os.PathLike) -> TemporalUNet:
    state = torch.load(path, map_location="cpu", weights_only=False)
    model = encoder_unet(state["history"], tuple(state["channels"]), state["attention"])
    model.load_state_dict(state["state"])
    return model.eval()


def save_encoder(model: TemporalUNet, cfg: dict, path: str | os.PathLike, extra: dict | None = None) -> None:
    with atomic_path(path) as tmp:
        torch.save({"history": cfg["history"], "channels": list(cfg["channels"]), "attention": cfg["attention"],
                    "state": model.state_dict(), **(extra or {})}, tmp)


def pretrain_encoder(data: SeasonData, months: list[int], cfg: dict, checkpoint: str | os.PathLike,
                     stop_after: int | None = None, device_name: str = "auto",
                     task: NextDayTask | None = None) -> tuple[TemporalUNet, LoopResult]:
    """Next-day U-Net on the scaled coarse-on-fine record (days of ``months``), validated on the last years.

    Validation ``encoder.validations`` times an epoch; the weights kept are those of the
    best validation (early stopping after ``encoder.patience`` epochs without a better
    one). The result's ``references`` hold persistence and climatology on the same
    validation patches. device_name: the config's ``device`` (:func:`diffscale.method.devices.device`);
    task: :func:`pretraining_task` of the same arguments, when the caller holds it already.
    """
    task = task or pretraining_task(data, months, cfg)
    days = {"train": data.coarse_times[task.train_index], "val": data.coarse_times[task.val_index]}
    h, w = data.shape
    per_day = math.ceil(h / cfg["patch"]) * math.ceil(w / cfg["patch"])
    steps_per_epoch = max(1, math.ceil(len(task.train_index) * per_day / cfg["batch_size"]))
    total = cfg["epochs"] * steps_per_epoch
    if cfg.get("max_steps"):
        total = min(total, cfg["max_steps"])
    every = max(1, min(steps_per_epoch, total) // cfg["validations"])
    loop = LoopConfig(steps=total, lr=cfg["lr"], weight_decay=0.0, ema_decay=None,
                      grad_clip=1.0, checkpoint_every=every, val_every=every,
                      patience=max(1, round(cfg["patience"] * steps_per_epoch / every)), seed=cfg["seed"],
                      log_every=max(1, steps_per_epoch // 2))
    model = untrained_encoder(cfg, task.normalisation())
    references = task.references()
    log.info("encoder: %d parameters, %d training / %d validation days, %d steps per epoch, up to %d epochs; "
             "input mean %.4g, std %.4g (training days); validation L1 of the references: %s",
             count_parameters(model), len(task.train_index), len(task.val_index), steps_per_epoch, cfg["epochs"],
             float(model.in_mean), float(model.in_std), ", ".join(f"{k} {v:.5g}" for k, v in references.items()) or "none")
    result = train_loop(model, task.batch, task.loss, loop, checkpoint, val_fn=task.validate if task.val_batch is not None else None,
                        stop_after=stop_after, signature={"encoder": dict(cfg), "months": list(months),
                                                          "days": day_strings(days)},
                        device_name=device_name)
    result.references = references
    result.days = days
    return result.model.cpu().eval(), result


def pretraining_task(data: SeasonData, months: list[int], cfg: dict) -> NextDayTask:
    """The encoder's pretraining task on the season's days of the coarse record (the last ``val_years`` validate),
    leaving out every window that touches a validation or test day of the fine record."""
    none = pd.DatetimeIndex([])
    # the fine record's held-out days (none for a season without a fine record), never a target or input
    held_out = data.days.get("val", none).union(data.days.get("test", none))
    train_idx, val_idx = pretraining_days(data.coarse_times, months, cfg["history"], cfg["val_years"], held_out,
                                          data.step)
    return NextDayTask(data.coarse, train_idx, val_idx, cfg["history"], cfg["patch"], cfg["batch_size"], seed=cfg["seed"])


def untrained_encoder(cfg: dict, normalisation: tuple[float, float]) -> TemporalUNet:
    """The encoder before pretraining: its seeded initial weights, the training days' input (mean, std).

    Pretraining starts from exactly these weights; unchanged, they are the random-encoder control.
    """
    torch.manual_seed(cfg["seed"])  # the initial weights
    model = encoder_unet(cfg["history"], tuple(cfg["channels"]), cfg["attention"])
    model.set_normalisation(*normalisation)
    return model


def pretrain_files(split_dir: str | os.PathLike, season: str, variable: str, months: list[int], cfg: dict,
                   checkpoint: str | os.PathLike, output: str | os.PathLike, curve: str | os.PathLike,
                   probe_csv: str | os.PathLike, device_name: str = "auto") -> LoopResult:
    """pretrain_encoder from the split files to the saved encoder, its loss curve and the probe table.

    The encoder file also records the coarse days it was trained and validated on.
    """
    # The season's stretches of the coarse record (with their history windows), not all of it:
    # the encoder trains on every one of them, and a 25-year paper region is ~6 GB in all.
    record = Path(split_dir) / "coarse_on_fine.nc"
    times = cm.record_times(record)
    data = load_season(split_dir, season, variable, days=times[times.month.isin(list(months))], history=cfg["history"],
                       truth=False)
    task = pretraining_task(data, months, cfg)
    model, result = pretrain_encoder(data, months, cfg, checkpoint, device_name=device_name, task=task)
    best = min(result.val, key=lambda sv: sv[1]) if result.val else None
    save_encoder(model, cfg, output, extra={
        "parameters": count_parameters(model), "seconds": result.seconds, "steps": result.steps, "val": result.val,
        "best_step": best[0] if best else result.steps, "references": result.references, "seed": cfg["seed"],
        "days": day_strings(result.days)})
    write_curve(result, curve)
    Path(checkpoint).unlink(missing_ok=True)
    log.info("encoder: %d parameters, %d steps in %.1f s (early stop: %s), best validation L1 %s at step %s "
             "(persistence %s, climatology %s)", count_parameters(model), result.steps, result.seconds,
             result.stopped_early, *(best[::-1] if best else ("none", "-")),
             result.references.get("persistence"), result.references.get("climatology"))
    control = untrained_encoder(cfg, (float(model.in_mean), float(model.in_std)))
    table = probe(data, {"pretrained": model, "random": control}, cfg["history"])
    with atomic_path(probe_csv) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
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


def file_digest(path: str | os.PathLike) -> str:
    """sha256 of a file: which regressor file a diffusion model was trained on."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _weights_digest(model: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for key, value in model.state_dict().items():
        h.update(key.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def load_regressor(path: str | os.PathLike, name: str, enc_cfg: dict, cfg: dict, halo: int,
                   encoder: UNet | None, static: tuple[str, ...] = ("elevation",)) -> ResidualModel:
    """The trained regression part of diffusion model ``name`` from ``path``; an error naming the file unless it fits.

    It must hold the regressor the registry names for ``name``, built for the same history,
    patch, halo, static fields and encoder, and trained with the weights of ``encoder``
    (:func:`diffscale.method.diffusion.check_regression_part`).
    """
    spec = ResidualSpec.from_config(name, enc_cfg, cfg, halo, static=static)
    regressor = load_model(path)
    try:
        check_regression_part(spec, regressor, encoder)
    except ValueError as exc:
        raise DataValidationError(path, f"not the regression part of {name}: {exc}") from None
    return regressor


def regression_reference(regressor: ResidualModel, dev: torch.device, sampling: dict | None = None) -> Reference:
    """The regressor's teacher-forced prediction of a day (scaled, (H, W)), run on ``dev``: a CropTask reference.

    sampling: the config's sampling section, to predict with its tiles (``diffusion.reference_tiling:
    sampling``, as the model will be sampled); None: the training patch at half its core's stride.
    """
    regressor.to(dev)
    tiles = {} if sampling is None else {"tile": sampling["tile"] or None, "stride": stride_of(regressor, sampling)}

    def predict(raw: np.ndarray, history: np.ndarray) -> np.ndarray:
        return regressor.sample_day(torch.from_numpy(raw), torch.from_numpy(history)[None], 1, **tiles)[0].numpy()

    return predict


def untrained_model(name: str, config: dict, encoder: UNet | None = None, scale: float = 1.0) -> ResidualModel:
    """Model ``name`` at the sizes of a validated ``config``, untrained, its regression part too (for cost benchmarks).

    encoder: the temporal U-Net both parts share; None: a fresh one.
    """
    section = config["diffusion"]
    if registry.entry(name).family != "diffusion":
        section = baseline_settings(config["baselines"], config["diffusion"])
    spec = ResidualSpec.from_config(name, config["encoder"], section, config["sampling"]["halo"], scale,
                                    static=tuple(static_fields(config)))
    if encoder is None and spec.uses_encoder:
        encoder = encoder_unet(spec.history, spec.encoder_channels, spec.encoder_attention)
    parts = {"regressor": untrained_model(spec.regressor, config, encoder, scale)} if spec.regressor else {}
    return model_class(name)(spec, encoder, **parts)


def train_model(data: SeasonData, name: str, encoder: UNet | None, enc_cfg: dict, cfg: dict, halo: int,
                checkpoint: str | os.PathLike, stop_after: int | None = None,
                device_name: str = "auto", regressor: ResidualModel | None = None,
                sampling: dict | None = None) -> tuple[ResidualModel, LoopResult]:
    """Model ``name`` of the registry on the season's training crops, the encoder (if it uses one) frozen inside.

    cfg: the model's section (``diffusion``, or the resolved ``baselines`` of
    :func:`diffscale.core.config.baseline_settings`); encoder: the pretrained temporal
    U-Net, ignored by models that do not use it; device_name: the config's ``device``;
    regressor: a diffusion model's trained regression part (:func:`load_regressor`),
    required when its spec has one: the target is then fine minus its teacher-forced
    prediction, and it is frozen inside the model; sampling: the config's sampling section,
    whose tiles predict that reference when ``cfg["reference_tiling"]`` is ``sampling``.
    """
    spec = ResidualSpec.from_config(name, enc_cfg, cfg, halo, static=tuple(data.static))
    check_regression_part(spec, regressor, encoder)
    reference, parts = None, {}
    if regressor is not None:
        tiles = None
        if cfg.get("reference_tiling", "patch") == "sampling":
            if sampling is None:
                raise ValueError("diffusion.reference_tiling: sampling needs the config's sampling section")
            tiles = sampling
        reference, parts = regression_reference(regressor, device(device_name), tiles), {"regressor": regressor}
    task = CropTask(spec, data, cfg["batch_size"], seed=cfg["seed"], reference=reference)
    spec = replace(spec, scale=task.target_std())
    torch.manual_seed(cfg["seed"])  # the initial weights
    model = model_class(name)(spec, encoder, **parts)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    log.info("%s: %d trainable parameters (+%d frozen encoder), residual scale %.4f, %d training days", name,
             trainable, count_parameters(model) - trainable, spec.scale, task.train[0].shape[0])
    loop = _loop_config(name, cfg, task.val is not None)
    signature = {"spec": spec, "config": dict(cfg)}
    if regressor is not None:  # a checkpoint trained on another regressor's residual is stale
        signature["regressor"] = _weights_digest(regressor)
        signature["reference_tiles"] = tiles
    result = train_loop(model, task.batch, task.loss, loop, checkpoint, val_fn=task.validate if task.val is not None else None,
                        stop_after=stop_after, signature=signature | {"days": day_strings(task.days)},
                        device_name=device_name)
    result.days = task.days
    return result.model.cpu().eval(), result


def fit_files(name: str, split_dir: str | os.PathLike, season: str, variable: str, encoder_path: str | os.PathLike | None,
              enc_cfg: dict, cfg: dict, halo: int, checkpoint: str | os.PathLike, output: str | os.PathLike,
              curve: str | os.PathLike, device_name: str = "auto",
              regressor_path: str | os.PathLike | None = None, sampling: dict | None = None) -> LoopResult:
    """train_model from the split files to the saved model and its loss curve; under torchrun rank 0 writes.

    regressor_path: a diffusion model's trained regression part; the saved model holds it
    and records the file (``regressor_file``) and its sha256 (``regressor_sha256``).
    """
    fitted = cm.days_of(split_dir, season)
    data = load_season(split_dir, season, variable, days=fitted["train"].union(fitted["val"]),
                       history=enc_cfg["history"], truth=False)
    encoder = load_encoder(encoder_path) if encoder_path is not None else None
    regressor = None
    if regressor_path is not None:
        regressor = load_regressor(regressor_path, name, enc_cfg, cfg, halo, encoder, tuple(data.static))
    model, result = train_model(data, name, encoder, enc_cfg, cfg, halo, checkpoint, device_name=device_name,
                                regressor=regressor, sampling=sampling)
    if int(os.environ.get("RANK", 0)) == 0:
        frozen = ("encoder.", "regressor.")
        trainable = sum(p.numel() for key, p in model.named_parameters() if not key.startswith(frozen))
        model.save(output, extra={"trainable_parameters": trainable, "parameters": count_parameters(model),
                                  "seconds": result.seconds, "steps": result.steps, "seed": cfg["seed"],
                                  "days": day_strings(result.days),
                                  "encoder": None if encoder_path is None else str(encoder_path),
                                  "regressor_file": None if regressor_path is None else str(regressor_path),
                                  "regressor_sha256": None if regressor_path is None else file_digest(regressor_path)})
        write_curve(result, curve)
        Path(checkpoint).unlink(missing_ok=True)
        log.info("%s: %d trainable parameters, %d steps in %.1f s, validation loss %s", name, trainable, result.steps,
                 result.seconds, result.val)
    return result


def train_files(name: str, split_dir: str | os.PathLike, season: str, variable: str,
                encoder_path: str | os.PathLike | None, enc_cfg: dict, cfg: dict, halo: int,
                checkpoint: str | os.PathLike, output: str | os.PathLike, curve: str | os.PathLike,
                log_file: str | os.PathLike | None = None, device_name: str = "auto",
                regressor_path: str | os.PathLike | None = None, sampling: dict | None = None) -> None:
    """fit_files in this process, or under torchrun when the model's section asks for ``gpus`` > 1.

    encoder_path: None for the models that do not use the encoder; log_file: the rule's
    log, into which rank 0's log is folded; device_name: the config's ``device`` (``auto``
    or ``cuda`` give each torchrun process the GPU of its local rank); regressor_path: a
    diffusion model's regression part (diffusion.residual: regression), else None; sampling:
    the config's sampling section (for ``diffusion.reference_tiling: sampling``).
    """
    procs = cfg.get("gpus", 1)
    if procs == 1:
        fit_files(name, split_dir, season, variable, encoder_path, enc_cfg, cfg, halo, checkpoint, output, curve,
                  device_name, regressor_path, sampling)
        return
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump({"encoder": dict(enc_cfg), "model": dict(cfg), "sampling": sampling}, fh)
    rank0 = Path(f"{log_file or output}.rank0")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}",
           "-m", "diffscale.method.fit", "--model", name, "--split-dir", str(split_dir), "--season", season,
           "--variable", variable, *(["--encoder", str(encoder_path)] if encoder_path else []),
           *(["--regressor", str(regressor_path)] if regressor_path else []), "--config", fh.name,
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
    ap.add_argument("--regressor", default=None, help="the trained regression part (diffusion.residual: regression)")
    ap.add_argument("--halo", type=int, required=True)
    ap.add_argument("--log-file", default=None)
    ap.add_argument("--device", default="auto", help="the config's device: auto, cpu, cuda or cuda:N")
    a = ap.parse_args(argv)
    if int(os.environ.get("RANK", 0)) == 0:
        log_to(a.log_file)
    cfg = json.loads(Path(a.config).read_text())
    fit_files(a.model, a.split_dir, a.season, a.variable, a.encoder, cfg["encoder"], cfg["model"], a.halo,
              a.checkpoint, a.output, a.curve, a.device, a.regressor, cfg.get("sampling"))


if __name__ == "__main__":
    main()
