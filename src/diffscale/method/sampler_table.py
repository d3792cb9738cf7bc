"""The sampler comparison pooled over regions and seasons (rule samplers_table).

Kept apart from :mod:`diffscale.method.sampling` because it needs no torch: the rule
runs in the evaluation's environment. Per region/season tables are written by
:func:`diffscale.method.sampling.benchmark_files`.
"""

from __future__ import annotations

import logging
import os

import pandas as pd

from diffscale.core import io

log = logging.getLogger("diffscale.method.sampler_table")

COLUMNS = ["sampler", "steps", "nfe", "crps", "rmse", "seconds"]


def pool_sampler_tables(parts: pd.DataFrame) -> pd.DataFrame:
    """One row per (sampler, steps, nfe): scores pooled over the rows weighted by their days; seconds add up.

    Scores are means over pixels and days, so the day-weighted mean of CRPS and of the
    squared RMSE is the pooled value.
    """
    parts = parts[parts["days"] > 0].assign(w=parts["days"])
    if parts.empty:  # no region and season had a validation day to compare on
        return pd.DataFrame(columns=COLUMNS)
    pooled = parts.groupby(["sampler", "steps", "nfe"], sort=False).apply(
        lambda g: pd.Series({"crps": (g.crps * g.w).sum() / g.w.sum(), "rmse": ((g.rmse**2 * g.w).sum() / g.w.sum()) ** 0.5,
                             "seconds": g.seconds.sum()}), include_groups=False).reset_index()
    return pooled[COLUMNS]


def samplers_table_files(inputs: list[str | os.PathLike], output: str | os.PathLike) -> pd.DataFrame:
    """Read the per region/season tables, pool them, write ``output`` (CSV)."""
    pooled = pool_sampler_tables(pd.concat([pd.read_csv(f) for f in inputs], ignore_index=True))
    with io.atomic_path(output) as tmp:
        pooled.to_csv(tmp, index=False)
    log.info("\n%s", pooled.to_string(index=False))
    return pooled
