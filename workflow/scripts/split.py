"""Rule split: a region and season's day lists and the scaler fitted on its training days."""

from _helpers import log_to

from diffscale.core.days import DAY_LISTS
from diffscale.data.split import split_season

log = log_to(snakemake.log[0])
p, o = snakemake.params, snakemake.output
days, scaler = split_season(snakemake.input.fine, p.variable, p.months, p.fine_period, p.coarse_period, p.buffer_days,
                            p.test_fraction, p.val_fraction, p.seed, p.history, p.log10, p.floor, o.days, o.scaler,
                            p.step)
log.info("%s/%s: %s; scaler %s", snakemake.wildcards.region, snakemake.wildcards.season,
         {k: len(getattr(days, k)) for k in DAY_LISTS}, scaler)
