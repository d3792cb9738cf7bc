"""Rule plot_training: the training and validation loss curves of every model trained for one region and season."""

from _helpers import log_to

from diffscale.plots import training_curves

log = log_to(snakemake.log[0])
curves = dict(zip(snakemake.params.models, snakemake.input.curves))
training_curves(curves, snakemake.wildcards.region, snakemake.wildcards.season, snakemake.output[0])
log.info("training curves of %s -> %s", ", ".join(curves), snakemake.output[0])
