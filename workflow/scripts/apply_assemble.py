"""Rule apply_assemble: the product of an apply entry's new coarse data (results/downscaled/{region}.{name}.nc)."""

from _helpers import file_metadata, log_to

from diffscale.method.product import assemble_new_files

log_to(snakemake.log[0])
i, p, w = snakemake.input, snakemake.params, snakemake.wildcards
assemble_new_files(i.fine, list(i.samples), list(i.models), i.coarse, p.coarse_input, w.region, w.name, p.seasons,
                   p.variable, p.members_saved, p.sampling, p.config, snakemake.output[0], p.format,
                   file_metadata(snakemake))
