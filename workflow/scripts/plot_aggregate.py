"""Rule plot_aggregate: the figure of one region's monthly aggregates."""

from _helpers import log_to

from diffscale.plots.product import aggregate_overview

log_to(snakemake.log[0])
aggregate_overview(snakemake.input[0], snakemake.params.variable, snakemake.wildcards.region, snakemake.output[0])
