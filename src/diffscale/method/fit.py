"""Fitting the method's two models and the trained baselines from the config's sections.

Thin glue between the tasks (:class:`diffscale.method.networks.encoder.NextDayTask`,
:class:`diffscale.method.diffusion.DiffusionTask`) and the loop (:func:`diffscale.method.loop.train_loop`).
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import torch

from diffscale.method.conditioning import SeasonData
from diffscale.method.diffusion import DiffusionTask, Downscaler, ModelSpec, encoder_unet
from diffscale.core.io import atomic_path
from diffscale.method.networks.encoder import NextDayTask, pretraining_days
from diffscale.method.networks.unet import UNet, count_parameters
from diffscale.method.regressors import RegressionTask, Regressor, RegressorSpec
from diffscale.method.loop import LoopConfig, LoopResult, loss_curve_lines, train_loop

log = logging.getLogger("diffscale.method.fit")


def write_curve(result: LoopResult, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text("step,loss,val_loss\n" + "\n".join(loss_curve_lines(result)) + "\n")


def pretrain_encoder(data: SeasonData, months: list[int], cfg: dict, checkpoint: str | os.PathLike,
                     stop_after: int | None = None) -> tuple[UNet, LoopResult]:
    """Next-day U-Net on the scaled coarse-on-fine record (days of ``months``), validated on the last years."""
    train_idx, val_idx = pretraining_days(data.coarse_times, months, cfg["history"], cfg["val_years"])
    task = NextDayTask(data.coarse, train_idx, val_idx, cfg["history"], cfg["patch"], cfg["batch_size"], seed=cfg["seed"])
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
                        stop_after=stop_after, signature={"encoder": dict(cfg), "months": list(months)})
    return result.model.cpu().eval(), result


# The diffusion models by name (evaluation.models): whether each conditions on the frozen
# transfer encoder. diffusion_no_transfer is the ablation of the paper's central claim:
# the same denoiser, config, budget and inputs (the previous days too), without the transfer features.
DIFFUSION_MODELS = {"diffusion": True, "diffusion_no_transfer": False}


def spec_from_config(enc: dict, diff: dict, halo: int, use_encoder: bool = True, sigma_data: float = 0.5) -> ModelSpec:
    return ModelSpec(history=enc["history"], patch=enc["patch"], halo=halo, encoder_channels=tuple(enc["channels"]),
                     encoder_attention=enc["attention"], channels=tuple(diff["channels"]), blocks=diff["blocks"],
                     attention=diff["attention"], use_encoder=use_encoder, sigma_data=sigma_data)


def train_diffusion(data: SeasonData, encoder: UNet | None, enc_cfg: dict, cfg: dict, halo: int,
                    checkpoint: str | os.PathLike, stop_after: int | None = None) -> tuple[Downscaler, LoopResult]:
    """The conditional diffusion model on the training days, the encoder frozen inside it.

    encoder None trains the ablation without the transfer features (diffusion_no_transfer).
    """
    use_encoder = encoder is not None
    spec = spec_from_config(enc_cfg, cfg, halo, use_encoder)
    task = DiffusionTask(spec, data, cfg["batch_size"], seed=cfg["seed"])
    spec = spec_from_config(enc_cfg, cfg, halo, use_encoder, sigma_data=task.target_std())
    torch.manual_seed(cfg["seed"])  # the initial weights
    model = Downscaler(spec, encoder)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    log.info("diffusion: %d trainable parameters (+%d frozen encoder), sigma_data %.4f, %d training days",
             trainable, count_parameters(model) - trainable, spec.sigma_data, task.train[0].shape[0])
    loop = LoopConfig(steps=cfg["steps"], lr=cfg["lr"], weight_decay=cfg["weight_decay"], ema_decay=cfg["ema_decay"],
                      grad_clip=cfg["grad_clip"], checkpoint_every=cfg["checkpoint_every"],
                      val_every=cfg["checkpoint_every"] if task.val is not None else 0, seed=cfg["seed"],
                      log_every=max(1, cfg["steps"] // 20))
    result = train_loop(model, task.batch, task.loss, loop, checkpoint, val_fn=task.validate if task.val is not None else None,
                        stop_after=stop_after, signature={"spec": spec, "diffusion": dict(cfg)})
    return result.model.cpu().eval(), result


def train_baseline(data: SeasonData, kind: str, encoder: UNet | None, enc_cfg: dict, cfg: dict, halo: int,
                   checkpoint: str | os.PathLike, stop_after: int | None = None) -> tuple[Regressor, LoopResult]:
    """One trained baseline (diffscale.method.regressors) on the method's training crops, by the method's loop.

    cfg: the resolved ``baselines`` section (:func:`diffscale.core.config.baseline_settings`); encoder: the
    pretrained temporal U-Net (used, frozen, by transfer_unet only).
    """
    def spec(scale: float) -> RegressorSpec:
        return RegressorSpec(kind=kind, history=enc_cfg["history"], patch=enc_cfg["patch"], halo=halo,
                             encoder_channels=tuple(enc_cfg["channels"]), encoder_attention=enc_cfg["attention"],
                             channels=tuple(cfg["channels"]), blocks=cfg["blocks"], attention=cfg["attention"],
                             latent_channels=cfg["latent_channels"], scale=scale)

    task = RegressionTask(spec(1.0), data, cfg["batch_size"], seed=cfg["seed"])
    final = spec(task.target_std())
    torch.manual_seed(cfg["seed"])  # the initial weights
    model = Regressor(final, encoder if kind == "transfer_unet" else None)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    log.info("%s: %d trainable parameters (+%d frozen encoder), residual scale %.4f, %d training days", kind,
             trainable, count_parameters(model) - trainable, final.scale, task.train[0].shape[0])
    # The loop returns the best validated weights whether or not it stops early.
    patience = cfg["patience"] if cfg["patience"] is not None else cfg["steps"] // cfg["checkpoint_every"] + 1
    loop = LoopConfig(steps=cfg["steps"], lr=cfg["lr"], weight_decay=cfg["weight_decay"], ema_decay=cfg["ema_decay"],
                      grad_clip=cfg["grad_clip"], checkpoint_every=cfg["checkpoint_every"],
                      val_every=cfg["checkpoint_every"] if task.val is not None else 0,
                      patience=patience, seed=cfg["seed"],
                      log_every=max(1, cfg["steps"] // 20))
    result = train_loop(model, task.batch, task.loss, loop, checkpoint, val_fn=task.validate if task.val is not None else None,
                        stop_after=stop_after, signature={"spec": final, "baselines": dict(cfg)})
    return result.model.cpu().eval(), result


def train_baseline_files(split_dir: str | os.PathLike, season: str, variable: str, kind: str,
                         encoder_path: str | os.PathLike, enc_cfg: dict, cfg: dict, halo: int,
                         checkpoint: str | os.PathLike, output: str | os.PathLike, curve: str | os.PathLike) -> LoopResult:
    """train_baseline from the split files to the saved model and its loss curve."""
    from diffscale.method.conditioning import load_season

    data = load_season(split_dir, season, variable)
    model, result = train_baseline(data, kind, load_encoder(encoder_path), enc_cfg, cfg, halo, checkpoint)
    trainable = sum(p.numel() for name, p in model.named_parameters() if not name.startswith("encoder."))
    model.save(output, extra={"trainable_parameters": trainable, "parameters": count_parameters(model),
                              "seconds": result.seconds, "steps": result.steps, "encoder": str(encoder_path)})
    write_curve(result, curve)
    Path(checkpoint).unlink(missing_ok=True)
    log.info("%s: %d trainable parameters, %d steps in %.1f s, validation loss %s (the best is kept)", kind, trainable,
             result.steps, result.seconds, result.val)
    return result


def load_encoder(path: str | os.PathLike) -> UNet:
    state = torch.load(path, map_location="cpu", weights_only=False)
    model = encoder_unet(state["history"], tuple(state["channels"]), state["attention"])
    model.load_state_dict(state["state"])
    return model.eval()


def save_encoder(model: UNet, cfg: dict, path: str | os.PathLike, extra: dict | None = None) -> None:
    with atomic_path(path) as tmp:
        torch.save({"history": cfg["history"], "channels": list(cfg["channels"]), "attention": cfg["attention"],
                    "state": model.state_dict(), **(extra or {})}, tmp)


def train_diffusion_files(split_dir: str | os.PathLike, season: str, variable: str,
                          encoder_path: str | os.PathLike | None, enc_cfg: dict, cfg: dict, halo: int,
                          checkpoint: str | os.PathLike, output: str | os.PathLike, curve: str | os.PathLike) -> LoopResult:
    """train_diffusion from files to files; under torchrun every process calls it and rank 0 writes.

    encoder_path None: the ablation without the transfer encoder.
    """
    from diffscale.method.conditioning import load_season

    data = load_season(split_dir, season, variable)
    encoder = load_encoder(encoder_path) if encoder_path is not None else None
    model, result = train_diffusion(data, encoder, enc_cfg, cfg, halo, checkpoint)
    if int(os.environ.get("RANK", 0)) == 0:
        trainable = sum(q.numel() for q in model.denoiser.parameters())
        model.save(output, extra={"trainable_parameters": trainable, "parameters": count_parameters(model),
                                  "seconds": result.seconds, "steps": result.steps,
                                  "encoder": None if encoder_path is None else str(encoder_path)})
        write_curve(result, curve)
        Path(checkpoint).unlink(missing_ok=True)
        log.info("diffusion: %d trainable parameters, %d steps in %.1f s, validation loss %s", trainable, result.steps,
                 result.seconds, result.val)
    return result


def main(argv: list[str] | None = None) -> None:
    """``torchrun --nproc_per_node N -m diffscale.method.fit ARGS``: the multi-process (DDP) entry of train_diffusion."""
    import argparse
    import json

    ap = argparse.ArgumentParser(prog="python -m diffscale.method.fit", description=main.__doc__)
    for name in ("split-dir", "season", "variable", "config", "checkpoint", "output", "curve"):
        ap.add_argument(f"--{name}", required=True)
    ap.add_argument("--encoder", default=None, help="the pretrained encoder; left out: the ablation without it")
    ap.add_argument("--halo", type=int, required=True)
    ap.add_argument("--log-file", default=None)
    a = ap.parse_args(argv)
    from diffscale.core.runlog import log_to

    if int(os.environ.get("RANK", 0)) == 0:
        log_to(a.log_file)
    cfg = json.loads(Path(a.config).read_text())
    train_diffusion_files(a.split_dir, a.season, a.variable, a.encoder, cfg["encoder"], cfg["diffusion"], a.halo,
                          a.checkpoint, a.output, a.curve)


if __name__ == "__main__":
    main()
