"""Rules regrid / regrid_fine_to_coarse: one record, month by month, onto one region's other grid."""

from pathlib import Path

from _helpers import log_to

from diffscale.core.grids import Box
from diffscale.core.io import read_field
from diffscale.core.grids import grid_of
from diffscale.data.regrid import Regridder, regrid_record, weights_file_name

log = log_to(snakemake.log[0])
p = snakemake.params
source = grid_of(read_field(snakemake.input.source[0], p.variable))
# The region's target grid: the target record's cells whose centres lie in the box,
# exactly as the split stage crops them.
target = grid_of(read_field(snakemake.input.target_grid, p.variable)).crop(Box.from_config(p.box))
weights = Path(p.weights_dir) / weights_file_name(source, target, p.method)
regridder = Regridder(source, target, p.method, backend=p.backend, missing=p.missing, weights_path=weights)
log.info("%s: %s x %s -> %s x %s, %s, backend %s, weights %s", snakemake.wildcards.region, *source.shape,
         *target.shape, p.method, regridder.backend, weights)
regrid_record(regridder, list(snakemake.input.source), list(snakemake.output), p.variable)
log.info("wrote %d monthly files", len(snakemake.output))
