"""Rule summarize_metrics: every region's and season's scores in results/metrics/summary.csv, their
comparisons with the method in results/metrics/comparisons.csv."""

from _helpers import log_to

from diffscale.evaluation.scores import write_summary

log_to(snakemake.log[0])
i, o = snakemake.input, snakemake.output
write_summary(i.scores, o.summary, i.comparisons, o.comparisons)
