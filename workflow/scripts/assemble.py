"""Rule assemble: the continuous daily fine record of one region (results/downscaled/{region}.nc or .zarr)."""

from _helpers import file_metadata, log_to

from diffscale.method.product import assemble_files

log_to(snakemake.log[0])
i, p = snakemake.input, snakemake.params
assemble_files(i.fine, list(i.beyond), list(i.models), snakemake.wildcards.region, p.seasons, p.variable, p.coarse_period,
               p.members_saved, p.sampling, p.config, snakemake.output[0], p.format, file_metadata(snakemake))
