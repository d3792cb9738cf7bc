"""Rule aggregate: monthly or annual aggregates of one region's product, per member."""

from _helpers import file_metadata, log_to

from diffscale.method.aggregates import aggregate_file

log_to(snakemake.log[0])
p = snakemake.params
aggregate_file(snakemake.input[0], p.variable, snakemake.wildcards.period, p.thresholds, snakemake.output[0],
               file_metadata(snakemake))
