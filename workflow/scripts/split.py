"""Rule split: a region and season's day lists and the scaler fitted on its training days."""

from _helpers import log_to

from diffscale.data.split import fit_scaler, make_split

log = log_to(snakemake.log[0])
p = snakemake.params
days = make_split(p.months, p.fine_period, p.coarse_period, p.buffer_days, p.test_fraction, p.val_fraction,
                  p.seed, p.history)
scaler = fit_scaler(snakemake.input.fine, p.variable, days.train, p.log10, p.floor)
days.to_json(snakemake.output.days)
scaler.to_json(snakemake.output.scaler)
log.info("%s/%s: %s; scaler %s", snakemake.wildcards.region, snakemake.wildcards.season,
         {k: len(getattr(days, k)) for k in ("core", "pool", "train", "val", "test", "beyond")}, scaler)
