"""Rule plot_members: the members curves of every region and season in one figure."""

from _helpers import log_to

from diffscale.plots.method import members_figure

log_to(snakemake.log[0])
members_figure(list(snakemake.input), snakemake.output[0])
