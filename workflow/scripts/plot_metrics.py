"""Rule plot_metrics: metric bars per model, region and season, one figure per period."""

from _helpers import log_to

from diffscale.plots import metric_bars

log_to(snakemake.log[0])
reference = snakemake.input.reference[0] if snakemake.input.reference else None
for period in ("test", "beyond"):
    metric_bars(snakemake.input.summary, period, snakemake.output[period], reference)
