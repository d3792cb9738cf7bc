"""Rule summarize_metrics: every region's and season's scores in results/metrics/summary.csv."""

from _helpers import log_to

from diffscale.evaluation.scores import write_summary

log_to(snakemake.log[0])
write_summary(snakemake.input.scores, snakemake.output[0])
