"""Rule plot_evaluation: maps and the paper's diagnostics of one region and season."""

from _helpers import log_to

from diffscale.evaluation.scores import sample_files
from diffscale.plots.evaluation import evaluation_figures

log_to(snakemake.log[0])
i, p = snakemake.input, snakemake.params
evaluation_figures(sample_files(i, p.models), i.fine, i.days, list(i.coarse), i.diagnostics, p.variable, p.units,
                   p.log10, p.floor, p.map_days, p.map_members, dict(snakemake.output.items()))
