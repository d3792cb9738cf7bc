"""Rule plot_metrics: metric bars per model, region and season, one figure per period."""

from _helpers import log_to

from diffscale.plots.evaluation import metric_figures

log_to(snakemake.log[0])
metric_figures(snakemake.input.summary, dict(snakemake.output.items()), next(iter(snakemake.input.reference), None))
