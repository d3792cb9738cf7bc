"""Rule summarize_metrics: every region's and season's scores in results/metrics/summary.csv."""

from _helpers import log_to

from diffscale.core import io
from diffscale.evaluation.scores import summary_table

log = log_to(snakemake.log[0])
table = summary_table(list(snakemake.input.scores))
with io.atomic_path(snakemake.output[0]) as tmp:
    table.to_csv(tmp, index=False, float_format="%.6g")
log.info("%d rows (%s)", len(table), ", ".join(sorted(table["model"].unique())) if len(table) else "none")
