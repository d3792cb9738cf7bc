"""The documented selection rule of ``make tune`` (rule tuning_selection), on validation scores only.

Input: the per region/season tables of rule tune (:mod:`diffscale.method.tuning`),
whose scores are on validation days. For each kind of choice:

* ``training``: (diffusion.batch_size, lr, steps); cost = steps x batch_size (samples seen);
* ``sampler``: sampling.steps; cost = NFE (denoiser evaluations per sample);

the fair CRPS and RMSE are pooled over regions and seasons weighted by their validation
days (a season's scores are means over its days and pixels, so the day-weighted mean of
the CRPS and of the squared RMSE are the pooled values). Every candidate whose pooled
fair CRPS lies within ``tolerance`` (relative) of the lowest counts as tied; the cheapest
tied one is selected, then the lower CRPS. The result is written as a config overlay
(``selected.yaml``) and as the pooled table with a ``selected`` column.

Torch-free: the rule runs in the evaluation's environment.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pandas as pd
import yaml

from diffscale.core import io
from diffscale.core.tuning_table import TUNING_COLUMNS

log = logging.getLogger("diffscale.evaluation.selection")

# The keys a choice of each kind is made of, and what it costs.
CHOICES = {"training": ["batch_size", "lr", "steps"], "sampler": ["sampler", "sampler_steps", "nfe"]}
SELECTION_COLUMNS = ["kind", "batch_size", "lr", "steps", "sampler", "sampler_steps", "nfe", "cost", "crps_fair",
                     "rmse", "days", "regions_seasons", "selected"]


def pool(table: pd.DataFrame, kind: str) -> pd.DataFrame:
    """One row per candidate of ``kind``: fair CRPS and RMSE pooled over regions and seasons, weighted by days."""
    part = table[table["kind"] == kind]
    keys = CHOICES[kind]

    def pooled(g: pd.DataFrame) -> pd.Series:
        w = g["days"] / g["days"].sum()
        return pd.Series({"crps_fair": float((g["crps_fair"] * w).sum()), "rmse": float(((g["rmse"] ** 2) * w).sum() ** 0.5),
                          "days": int(g["days"].sum()), "regions_seasons": len(g)})

    out = part.groupby(keys, sort=True).apply(pooled, include_groups=False).reset_index()
    out["cost"] = out["steps"] * out["batch_size"] if kind == "training" else out["nfe"]
    return out.assign(kind=kind)


def choose(pooled: pd.DataFrame, tolerance: float) -> int:
    """Index of the selected row: the cheapest of those within ``tolerance`` of the lowest fair CRPS, then the lower CRPS."""
    best = pooled["crps_fair"].min()
    tied = pooled[pooled["crps_fair"] <= best * (1 + tolerance)]
    return tied.sort_values(["cost", "crps_fair"], kind="stable").index[0]


def select(table: pd.DataFrame, tolerance: float) -> pd.DataFrame:
    """The pooled candidates of every kind (:data:`SELECTION_COLUMNS`), the selected one of each marked."""
    if table.empty:
        raise ValueError("no validation scores to select from: no region and season has a validation day whose "
                     "history holds no test day (raise split.val_fraction)")
    parts = []
    for kind in CHOICES:
        pooled = pool(table, kind)
        if pooled.empty:
            continue
        pooled["selected"] = False
        pooled.loc[choose(pooled, tolerance), "selected"] = True
        parts.append(pooled)
    return pd.concat(parts, ignore_index=True).reindex(columns=SELECTION_COLUMNS)


def overlay(selection: pd.DataFrame, diffusion: dict, baselines: dict) -> dict:
    """The selected choices as a config overlay: ``diffusion`` steps/batch_size/lr and ``sampling.steps``.

    The tuning held the regression part fixed at the config's baselines settings; where a
    baselines key is null (it follows the diffusion section) and the diffusion value
    changes, the overlay pins it to the value the tuning used, so the regression part stays
    the one the choices were scored with.
    """
    chosen = selection[selection["selected"]].set_index("kind")
    out: dict = {}
    if "training" in chosen.index:
        row = chosen.loc["training"]
        out["diffusion"] = {"steps": int(row["steps"]), "batch_size": int(row["batch_size"]), "lr": float(row["lr"])}
        pinned = {k: diffusion[k] for k, v in out["diffusion"].items() if baselines.get(k) is None and diffusion[k] != v}
        if pinned:
            out["baselines"] = pinned
    if "sampler" in chosen.index:
        out["sampling"] = {"steps": int(chosen.loc["sampler", "sampler_steps"])}
    return out


def selection_files(inputs: list[str | os.PathLike], selected: str | os.PathLike, table: str | os.PathLike,
                    diffusion: dict, baselines: dict, tolerance: float) -> dict:
    """Rule tuning_selection: the tables of rule tune -> ``selected`` (YAML overlay) and ``table`` (CSV)."""
    parts = [pd.read_csv(f) for f in inputs]
    for path, part in zip(inputs, parts):
        missing = set(TUNING_COLUMNS) - set(part.columns)
        if missing:
            raise io.DataValidationError(path, f"columns {sorted(missing)} missing (expected rule tune's table)")
    pooled = select(pd.concat(parts, ignore_index=True), tolerance)
    chosen = overlay(pooled, diffusion, baselines)
    header = ("# Selected on validation days by `make tune` (rule tuning_selection): the lowest validation fair CRPS\n"
              f"# pooled over regions and seasons, ties (within {tolerance:g} relative) to the cheaper; the scores are\n"
              f"# in {Path(table).name}. A config overlay: snakemake --configfile config/config.yaml {Path(selected).name}\n")
    with io.atomic_path(table) as tmp:
        pooled.to_csv(tmp, index=False, float_format="%.6g")
    with io.atomic_path(selected) as tmp:
        Path(tmp).write_text(header + yaml.safe_dump(chosen, sort_keys=False))
    log.info("\n%s\nselected: %s", pooled.to_string(index=False), chosen)
    return chosen
