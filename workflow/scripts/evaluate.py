"""Rule evaluate: scores and diagnostics of every model for one region and season."""

from _helpers import log_to

from diffscale.evaluation.scores import sample_files, write_scores

log_to(snakemake.log[0])
i, p, w = snakemake.input, snakemake.params, snakemake.wildcards
# Beyond truth: declared (split writes it) for the twin and for local files that reach
# past the fine period; a truth.nc left over from another configuration is never read.
write_scores(sample_files(i, p.models), i.fine, i.get("truth"), i.days, list(i.coarse), p.variable, p.log10, p.floor,
             p.fine_period, p.settings, region=w.region, season=w.season, scores_out=snakemake.output.scores,
             diagnostics_out=snakemake.output.diagnostics)
