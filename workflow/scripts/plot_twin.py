"""Rule plot_twin: overview figure of the synthetic twin."""

from _helpers import log_to

from diffscale.plots.data import twin_overview

log_to(snakemake.log[0])
i = snakemake.input
twin_overview(i.coarse, i.fine, i.elevation, i.reference, snakemake.params.variable, snakemake.params.regions,
              snakemake.output[0])
