"""Rule evaluate: scores (every seed, their means with intervals, the comparisons with the method) and
diagnostics of every model for one region and season."""

from _helpers import log_to

from diffscale.evaluation.scores import seed_files, write_scores

log_to(snakemake.log[0])
i, o, p, w = snakemake.input, snakemake.output, snakemake.params, snakemake.wildcards
# Beyond truth: declared (split writes it) for the twin and for local files that reach
# past the fine period; a truth.nc left over from another configuration is never read.
write_scores(seed_files(i, p.seeds), i.fine, i.get("truth"), i.days, list(i.coarse), p.variable, p.log10, p.floor,
             p.fine_period, p.settings, region=w.region, season=w.season, scores_out=o.scores,
             diagnostics_out=o.diagnostics, by_seed_out=o.by_seed, comparisons_out=o.comparisons)
