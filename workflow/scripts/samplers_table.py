"""Rule samplers_table: pool the per region/season sampler comparisons into results/metrics/samplers.csv."""

from _helpers import log_to

from diffscale.method.sampler_table import samplers_table_files

log_to(snakemake.log[0])
samplers_table_files(list(snakemake.input), snakemake.output[0])
