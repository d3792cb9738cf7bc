"""The method's tuned choices scored on validation days only (rule tune; ``make tune``).

Per region and season, for every (``batch_size``, ``lr``) of the ``tuning`` section the
diffusion model is trained once on the training days, exactly as rule train_diffusion
trains it (:func:`diffscale.method.fit.train_model`, the same encoder and regression part,
seeds and crops), and its EMA weights are scored after each candidate number of
optimiser steps along that one run: the run stops at a candidate, its checkpoint's EMA
weights are scored, and it resumes from that checkpoint, which reproduces the
uninterrupted run (:mod:`diffscale.method.loop`). At the config's own training choices
each sampler step count is scored too. A score is the fair CRPS and the RMSE of the
ensemble mean of a teacher-forced ensemble on the validation days whose history holds
no test day (:func:`diffscale.method.conditioning.training_days`, as the models validate),
in the evaluation's metric space. Test and beyond truth are never read: the days scored,
the histories fed and the training crops all come from the training and validation days.

The selection over regions and seasons is :mod:`diffscale.evaluation.selection`.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from diffscale.core import io, registry
from diffscale.core.tuning_table import TUNING_COLUMNS
from diffscale.method import conditioning as cm
from diffscale.method.conditioning import SeasonData, load_season
from diffscale.method.devices import device, precision
from diffscale.method.edm import nfe
from diffscale.method.fit import load_encoder, load_regressor, train_model
from diffscale.method.residual import ResidualModel
from diffscale.method.sampling import ensemble_scores, model_space, sampling_options, teacher_forced, timed

log = logging.getLogger("diffscale.method.tuning")


def step_candidates(tuning: dict, diffusion: dict) -> list[int]:
    """The diffusion.steps candidates, the config's own among them, ascending."""
    return sorted(set(tuning["steps"]) | {diffusion["steps"]})


def training_candidates(tuning: dict, diffusion: dict) -> list[tuple[int, float]]:
    """Every (batch_size, lr) of the grid, the config's own among them: one training run each."""
    batches = sorted(set(tuning["batch_size"]) | {diffusion["batch_size"]})
    rates = sorted(set(tuning["lr"]) | {diffusion["lr"]})
    return list(itertools.product(batches, rates))


def sampler_candidates(tuning: dict, sampling: dict) -> list[int]:
    """The sampling.steps candidates, the config's own among them, ascending."""
    return sorted(set(tuning["sampler_steps"]) | {sampling["steps"]})


def validation_days(data: SeasonData, history: int) -> pd.DatetimeIndex:
    """The days every tuned choice is scored on: the validation days the models validate on (no test day in their history)."""
    return cm.training_days(data, "val", history)


def along_one_run(data: SeasonData, name: str, encoder: torch.nn.Module | None, enc_cfg: dict, cfg: dict, halo: int,
                  steps: list[int], checkpoint: str | os.PathLike, device_name: str = "auto",
                  regressor: ResidualModel | None = None) -> Iterator[tuple[int, ResidualModel, float]]:
    """(step, the EMA weights after it, training seconds so far) at each of ``steps`` along one run of ``cfg``.

    The run is trained for max(steps) steps with a checkpoint at every candidate; it stops
    at each one (as a kill would), its checkpoint's EMA weights are yielded, and it
    resumes from that checkpoint. A checkpoint left by an earlier, killed job is removed
    first: resuming past a candidate would skip it.
    """
    steps = sorted(steps)
    run = cfg | {"steps": steps[-1], "checkpoint_every": math.gcd(*steps)}
    checkpoint = Path(checkpoint)
    checkpoint.unlink(missing_ok=True)
    try:
        for s in steps:
            model, result = train_model(data, name, encoder, enc_cfg, run, halo, checkpoint, stop_after=s,
                                        device_name=device_name, regressor=regressor)
            state = torch.load(checkpoint, map_location="cpu", weights_only=False)
            if state["step"] != s:
                raise RuntimeError(f"{checkpoint} holds step {state['step']}, expected {s}")
            model.load_state_dict(state["ema"])  # the weights train_diffusion would save after s steps
            yield s, model.eval(), result.seconds
    finally:
        checkpoint.unlink(missing_ok=True)


def score_days(model: ResidualModel, data: SeasonData, days: pd.DatetimeIndex, truth: np.ndarray, members: int,
               sampling: dict, sampler_steps: int, convert, dev: torch.device) -> dict:
    """Fair CRPS and RMSE of the mean of a teacher-forced ensemble of ``days`` against ``truth`` (metric space)."""
    opts = sampling_options(model, sampling) | {"steps": sampler_steps}
    with precision(dev, sampling["autocast"]):
        samples, seconds = timed(teacher_forced, model, data, days, members, **opts)
    scores = ensemble_scores(convert(samples), truth)
    return {"crps_fair": scores["crps"], "rmse": scores["rmse"], "sample_seconds": seconds,
            "nfe": nfe(sampling["sampler"], sampler_steps, model.denoiser)}


def tune_season(data: SeasonData, encoder: torch.nn.Module | None, regressor: ResidualModel | None, enc_cfg: dict,
                diffusion: dict, halo: int, sampling: dict, transform: dict, tuning: dict,
                workdir: str | os.PathLike, device_name: str = "auto") -> pd.DataFrame:
    """Every candidate of ``tuning`` scored on the season's validation days: one row each (:data:`TUNING_COLUMNS`).

    kind ``training``: (batch_size, lr, steps) at the config's sampling.steps;
    kind ``sampler``: sampler_steps at the config's diffusion.batch_size, lr and steps.
    workdir: where the runs keep their checkpoints (removed when done).
    """
    name = registry.METHOD
    days = validation_days(data, enc_cfg["history"])
    if not len(days):
        log.warning("no validation day to score (split.val_fraction 0, or every validation day has a test day in "
                    "its history): nothing to tune on")
        return pd.DataFrame(columns=TUNING_COLUMNS)
    dev = device(device_name)
    convert = model_space(data, transform["log10"], transform["floor"])
    truth = convert(np.stack([data.fine_on(d) for d in days]))
    steps = step_candidates(tuning, diffusion)
    rows = []
    for batch_size, lr in training_candidates(tuning, diffusion):
        cfg = diffusion | {"batch_size": batch_size, "lr": lr}
        checkpoint = Path(workdir) / f"b{batch_size}_lr{lr:g}.ckpt"
        own = batch_size == diffusion["batch_size"] and lr == diffusion["lr"]
        for s, model, seconds in along_one_run(data, name, encoder, enc_cfg, cfg, halo, steps, checkpoint,
                                               device_name, regressor):
            trained = own and s == diffusion["steps"]  # the model rule train_diffusion trains
            for k in sampler_candidates(tuning, sampling) if trained else [sampling["steps"]]:
                scores = score_days(model, data, days, truth, tuning["members"], sampling, k, convert, dev)
                kinds = (["training"] if k == sampling["steps"] else []) + (["sampler"] if trained else [])
                for kind in kinds:
                    rows.append({"kind": kind, "batch_size": batch_size, "lr": lr, "steps": s,
                                 "sampler": sampling["sampler"], "sampler_steps": k, **scores,
                                 "train_seconds": seconds, "days": len(days), "members": tuning["members"]})
                log.info("batch %d, lr %g, %d steps, %s %d steps: validation fair CRPS %.5f, RMSE %.5f",
                         batch_size, lr, s, sampling["sampler"], k, scores["crps_fair"], scores["rmse"])
    return pd.DataFrame(rows)[[c for c in TUNING_COLUMNS if c not in ("region", "season")]]


def tune_files(split_dir: str | os.PathLike, region: str, season: str, variable: str,
               encoder_path: str | os.PathLike | None, regressor_path: str | os.PathLike | None, enc_cfg: dict,
               diffusion: dict, halo: int, sampling: dict, transform: dict, tuning: dict, output: str | os.PathLike,
               device_name: str = "auto") -> pd.DataFrame:
    """Rule tune: :func:`tune_season` from the split files, the encoder and the regression part to ``output`` (CSV)."""
    fitted = cm.days_of(split_dir, season)
    data = load_season(split_dir, season, variable, days=fitted["train"].union(fitted["val"]),
                       history=enc_cfg["history"], truth=False)
    encoder = load_encoder(encoder_path) if encoder_path is not None else None
    regressor = None
    if regressor_path is not None:
        regressor = load_regressor(regressor_path, registry.METHOD, enc_cfg, diffusion, halo, encoder)
    workdir = Path(f"{output}.runs")
    workdir.mkdir(parents=True, exist_ok=True)
    table = tune_season(data, encoder, regressor, enc_cfg, diffusion, halo, sampling, transform, tuning, workdir,
                        device_name).assign(region=region, season=season)
    workdir.rmdir()
    with io.atomic_path(output) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    log.info("\n%s", table.to_string(index=False))
    return table
