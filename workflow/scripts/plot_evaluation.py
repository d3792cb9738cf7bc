"""Rule plot_evaluation: maps and the paper's diagnostics of one region and season."""

from _helpers import log_to

from diffscale import plots

log_to(snakemake.log[0])
i, p, o = snakemake.input, snakemake.params, snakemake.output
samples = {m: {"test": i[f"{m}_test"], "beyond": i[f"{m}_beyond"]} for m in p.models}
plots.evaluation_maps(samples, i.fine, i.days, list(i.coarse), p.variable, p.units, p.log10, p.floor,
                      p.map_days, p.map_members, o.maps)
plots.diagnostics_figures(i.diagnostics, p.variable, {k: o[k] for k in ("spectra", "variogram", "acf", "lags", "drift", "rank_histogram")})
