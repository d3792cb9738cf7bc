"""The training loop shared by every model: AdamW, EMA, clipping, checkpoints, resume, DDP.

* Randomness of step k (the batch and the noise) comes from a generator seeded with
  (seed, k, rank), so a run resumed from its checkpoint after a kill draws exactly the
  numbers the uninterrupted run would have drawn: on CPU the losses and weights match.
* Checkpoints (model, EMA, optimiser, step, loss history, early-stopping state) are
  written atomically every ``checkpoint_every`` steps and at the end.
* bf16 autocast only on CUDA; CPU runs in float32 so results are reproducible.
* Multi-GPU: launched with ``torchrun``, each process takes its rank from the
  environment, wraps the model in DistributedDataParallel (NCCL on GPU, gloo on CPU)
  and draws its own batches; rank 0 writes checkpoints and logs.

Tasks plug in three functions: ``batch_fn(step, generator) -> batch``,
``loss_fn(model, batch, generator) -> scalar`` and, optionally, ``val_fn(model) -> float``.
"""

from __future__ import annotations

import copy
import io as _io
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch import distributed as dist
from tqdm import tqdm

from diffscale.core.io import atomic_path
from diffscale.method.devices import device

log = logging.getLogger("diffscale.method.loop")


@dataclass
class LoopConfig:
    steps: int
    lr: float
    weight_decay: float = 0.0
    ema_decay: float | None = 0.999  # None: no EMA
    grad_clip: float | None = 1.0
    checkpoint_every: int = 100
    val_every: int = 0  # 0: no validation
    patience: int | None = None  # validations without improvement before stopping early
    seed: int = 0
    log_every: int = 25


@dataclass
class LoopResult:
    model: nn.Module  # the weights to use: EMA when enabled, else the best (early stopping) or last
    losses: list[tuple[int, float]] = field(default_factory=list)
    val: list[tuple[int, float]] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0
    stopped_early: bool = False
    # Validation scores of forecasts that need no training (the task's references), for the curve.
    references: dict[str, float] = field(default_factory=dict)
    # The days the batches and the validation were drawn from ("train", "val"); set by the caller, saved with the model.
    days: dict[str, pd.DatetimeIndex] = field(default_factory=dict)


def step_generator(seed: int, step: int, rank: int = 0) -> torch.Generator:
    """A CPU generator that depends only on (seed, step, rank): the reason resume is exact."""
    state = np.random.SeedSequence([seed, step, rank]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & ((1 << 63) - 1))


class TqdmToLog(_io.StringIO):
    """tqdm writes here; each refreshed line becomes one log record (the rule's log file)."""

    def write(self, text: str) -> int:
        text = text.strip("\r\n ")
        if text:
            log.info(text)
        return len(text)


def _distributed() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", 1))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def _save(path: Path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


@torch.no_grad()
def validation_loss(loss_fn: Callable[[nn.Module, Any, torch.Generator], torch.Tensor], model: nn.Module,
                    batch: tuple[torch.Tensor, ...] | None) -> float:
    """``loss_fn`` on a fixed validation batch with a fixed noise draw, so values compare across steps.

    NaN when there is no validation batch.
    """
    if batch is None:
        return float("nan")
    model.eval()
    dev = next(model.parameters()).device
    return float(loss_fn(model, tuple(b.to(dev) for b in batch), torch.Generator().manual_seed(0)))


@dataclass
class _Run:
    """Everything a checkpoint restores besides the weights: where the run is and how validation went."""

    result: LoopResult
    step: int = 0
    best: float = math.inf
    bad: int = 0  # validations since the best one
    best_state: dict | None = None

    def snapshot(self, model: nn.Module, opt: torch.optim.Optimizer, ema: nn.Module | None, cfg: LoopConfig,
                 signature: dict | None, done: bool) -> dict:
        r = self.result
        return {"model": model.state_dict(), "optimizer": opt.state_dict(), "ema": ema.state_dict() if ema else None,
                "step": self.step, "best": self.best, "bad": self.bad, "best_state": self.best_state, "losses": r.losses,
                "val": r.val, "seconds": r.seconds, "stopped_early": r.stopped_early,
                "done": done, "config": asdict(cfg), "signature": signature}


def _resume(run: _Run, checkpoint: Path, model: nn.Module, opt: torch.optim.Optimizer, ema: nn.Module | None,
            cfg: LoopConfig, signature: dict | None, rank: int, dev: torch.device) -> None:
    """Restore ``run``, the weights and the optimiser from ``checkpoint`` unless it is missing or stale."""
    state = torch.load(checkpoint, map_location=dev, weights_only=False) if checkpoint.exists() else None
    if state is not None and (state.get("signature") != signature or state.get("config") != asdict(cfg)):
        if rank == 0:
            log.warning("ignoring checkpoint %s: it was written for another configuration", checkpoint)
        state = None
    if state is None:
        return
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    if ema is not None:
        ema.load_state_dict(state["ema"])
    run.step, run.best, run.bad, run.best_state = state["step"], state["best"], state["bad"], state["best_state"]
    r = run.result
    r.losses, r.val, r.seconds = state["losses"], state["val"], state["seconds"]
    r.stopped_early = state.get("stopped_early", False)
    if rank == 0:
        log.info("resumed from %s at step %d of %d", checkpoint, run.step, cfg.steps)


@torch.no_grad()
def _update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    for pe, pm in zip(ema.parameters(), model.parameters()):
        pe.lerp_(pm, 1 - decay)
    for be, bm in zip(ema.buffers(), model.buffers()):
        be.copy_(bm)


def _step(net: nn.Module, model: nn.Module, opt: torch.optim.Optimizer, ema: nn.Module | None,
          batch_fn: Callable[[int, torch.Generator], Any], loss_fn: Callable[[nn.Module, Any, torch.Generator], torch.Tensor],
          cfg: LoopConfig, step: int, rank: int, dev: torch.device) -> float:
    """One optimiser step (0-based ``step``); returns its loss."""
    gen = step_generator(cfg.seed, step, rank)
    net.train()
    batch = batch_fn(step, gen)
    batch = [b.to(dev) for b in batch] if isinstance(batch, (list, tuple)) else batch.to(dev)
    with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=dev.type == "cuda"):
        loss = loss_fn(net, batch, gen)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.grad_clip:
        nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    opt.step()
    if ema is not None:
        # Warm-up (as in common EMA practice): short runs are not dominated by the initial weights.
        _update_ema(ema, model, min(cfg.ema_decay, (1 + step) / (10 + step)))
    return float(loss.detach())


def _validate(run: _Run, val_fn: Callable[[nn.Module], float], weights: nn.Module, cfg: LoopConfig, rank: int) -> None:
    """Score ``weights`` (EMA or raw) after ``run.step`` steps; keep the best; stop after ``patience`` worse ones."""
    v = float(val_fn(weights))
    run.result.val.append((run.step, v))
    if v < run.best:
        run.best, run.bad = v, 0
        run.best_state = copy.deepcopy(weights.state_dict())
    else:
        run.bad += 1
    if rank == 0:
        log.info("step %d validation %.5g (best %.5g, %d without improvement)", run.step, v, run.best, run.bad)
    if cfg.patience is not None and run.bad >= cfg.patience:
        run.result.stopped_early = True
        if rank == 0:
            log.info("early stop at step %d: no validation improvement in %d evaluations", run.step, run.bad)


def _log_loss(run: _Run, bar: tqdm, cfg: LoopConfig, start: int) -> None:
    losses = run.result.losses
    if run.step % cfg.log_every == 0 or run.step == start + 1:
        recent = float(np.mean([v for _, v in losses[-cfg.log_every:]]))
        bar.set_postfix(loss=f"{recent:.4g}", refresh=False)
        log.info("step %d loss %.5g (mean of the last %d)", run.step, recent, min(cfg.log_every, len(losses)))


def train_loop(model: nn.Module, batch_fn: Callable[[int, torch.Generator], Any],
               loss_fn: Callable[[nn.Module, Any, torch.Generator], torch.Tensor], cfg: LoopConfig,
               checkpoint: str | os.PathLike, val_fn: Callable[[nn.Module], float] | None = None,
               stop_after: int | None = None, signature: dict | None = None, device_name: str = "auto") -> LoopResult:
    """Train ``model`` for ``cfg.steps`` steps on ``device_name`` (the config's ``device``), resuming from ``checkpoint``.

    ``signature`` (any picklable description of the model and data set-up) is stored in
    the checkpoint; a checkpoint with another signature or loop config is stale and ignored.

    ``stop_after`` ends the run after that many steps without a final checkpoint, the
    way a kill would (tests use it to prove resume is exact).
    """
    checkpoint = Path(checkpoint)
    rank, world = _distributed()
    dev = device(device_name)
    model = model.to(dev)
    ema = copy.deepcopy(model).requires_grad_(False) if cfg.ema_decay else None
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=cfg.weight_decay)
    run = _Run(LoopResult(model=model))
    _resume(run, checkpoint, model, opt, ema, cfg, signature, rank, dev)
    start, result = run.step, run.result
    net = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    t0 = time.perf_counter() - result.seconds
    bar = tqdm(total=cfg.steps, initial=start, file=TqdmToLog(), mininterval=10, disable=rank != 0, desc="train", ascii=True)
    while run.step < cfg.steps and not result.stopped_early:
        if stop_after is not None and run.step >= stop_after:
            bar.close()
            return result  # a simulated kill: no final checkpoint
        loss = _step(net, model, opt, ema, batch_fn, loss_fn, cfg, run.step, rank, dev)
        run.step += 1
        bar.update(1)
        result.losses.append((run.step, loss))
        if rank == 0:
            _log_loss(run, bar, cfg, start)
        if val_fn is not None and cfg.val_every and run.step % cfg.val_every == 0:
            _validate(run, val_fn, ema if ema is not None else model, cfg, rank)
        result.seconds = time.perf_counter() - t0
        if rank == 0 and run.step % cfg.checkpoint_every == 0:
            _save(checkpoint, run.snapshot(model, opt, ema, cfg, signature, False))
    bar.close()
    result.steps = run.step
    result.seconds = time.perf_counter() - t0
    if rank == 0:
        _save(checkpoint, run.snapshot(model, opt, ema, cfg, signature, True))
    final = ema if ema is not None else model
    if run.best_state is not None and cfg.patience is not None:
        final.load_state_dict(run.best_state)
    result.model = final
    if world > 1:
        dist.barrier()
    return result


def loss_curve_lines(result: LoopResult, every: int = 1) -> list[str]:
    """The loss curve as 'step loss [val]' text lines, for logs and CSV files."""
    val = dict(result.val)
    return [f"{s},{v:.6g},{val.get(s, '')}" for s, v in result.losses[::every]]
