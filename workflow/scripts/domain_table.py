"""Rule domain_table: every region's Wasserstein rows in one table."""

from _helpers import log_to

from diffscale.data.domain import combine_tables

log = log_to(snakemake.log[0])
df = combine_tables(list(snakemake.input), snakemake.output[0])
log.info("%d rows from %d regions", len(df), len(snakemake.input))
