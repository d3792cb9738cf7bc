"""Rule domain_table: every region's Wasserstein rows in one table."""

from _helpers import log_to

from diffscale.data.domain import combine_tables

log_to(snakemake.log[0])
combine_tables(list(snakemake.input), snakemake.output[0])
