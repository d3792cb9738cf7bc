"""Rule domain: Wasserstein distances of a region's coarse record (on the fine grid) against its fine record."""

from _helpers import log_to

from diffscale.data.domain import PAPER_WASSERSTEIN, analyse_files
from diffscale.plots.data import domain_per_day, domain_pixel_map

log_to(snakemake.log[0])
p, i, o = snakemake.params, snakemake.input, snakemake.output
region = snakemake.wildcards.region
results, lat, lon = analyse_files(i.fine, i.coarse_on_fine, p.variable, region, p.seasons, p.log10, p.floor,
                                  p.patch_size, p.projections, p.seeds, p.max_patches, o.table)
domain_per_day(region, results, PAPER_WASSERSTEIN, o.per_day)
domain_pixel_map(region, results, lat, lon, o.pixel_map)
