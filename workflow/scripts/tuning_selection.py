"""Rule tuning_selection: the selected choices (results/tuning/selected.yaml) by the validation scores of rule tune."""

from _helpers import log_to

from diffscale.evaluation.selection import selection_files

log_to(snakemake.log[0])
p = snakemake.params
selection_files(list(snakemake.input), snakemake.output.selected, snakemake.output.table, p.diffusion, p.baselines,
                p.tolerance)
