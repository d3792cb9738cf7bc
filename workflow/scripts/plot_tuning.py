"""Rule plot_tuning: the validation scores of every tuned candidate, the selected ones marked."""

from _helpers import log_to

from diffscale.plots.method import tuning_figure

log_to(snakemake.log[0])
tuning_figure(snakemake.input.table, snakemake.output[0])
