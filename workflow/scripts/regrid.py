"""Rules regrid / regrid_fine_to_coarse: one record, month by month, onto one region's other grid."""

from _helpers import file_metadata, log_to

from diffscale.data.regrid import regrid_region

log_to(snakemake.log[0])
p = snakemake.params
regrid_region(list(snakemake.input.source), snakemake.input.target_grid, p.box, p.variable, p.method,
              p.backend, p.missing, p.weights_dir, list(snakemake.output), file_metadata(snakemake))
