"""Rule plot_training: the training and validation loss curves of every model trained for one region and season."""

from _helpers import log_to

from diffscale.plots.method import training_curves

log_to(snakemake.log[0])
training_curves(dict(zip(snakemake.params.models, snakemake.input.curves)), snakemake.wildcards.region,
                snakemake.wildcards.season, snakemake.output[0], snakemake.input.probe)
