"""Rule samplers_table: pool the per region/season sampler comparisons into results/metrics/samplers.csv."""

from _helpers import log_to

import pandas as pd

from diffscale.core import io

log = log_to(snakemake.log[0])
parts = pd.concat([pd.read_csv(f) for f in snakemake.input], ignore_index=True)
# Scores are means over pixels and days: pool them weighted by days; seconds add up.
parts["w"] = parts["days"]
pooled = parts.groupby(["sampler", "steps", "nfe"], sort=False).apply(
    lambda g: pd.Series({"crps": (g.crps * g.w).sum() / g.w.sum(), "rmse": ((g.rmse**2 * g.w).sum() / g.w.sum()) ** 0.5,
                         "seconds": g.seconds.sum()}), include_groups=False).reset_index()
with io.atomic_path(snakemake.output[0]) as tmp:
    pooled[["sampler", "steps", "nfe", "crps", "rmse", "seconds"]].to_csv(tmp, index=False)
log.info("\n%s", pooled.to_string(index=False))
