"""Rule domain: Wasserstein distances of a region's coarse record (on the fine grid) against its fine record."""

from _helpers import log_to

import pandas as pd

from diffscale.core import io as dio
from diffscale.data.domain import PAPER_WASSERSTEIN, analyse, table
from diffscale.plots.data import domain_per_day, domain_pixel_map

log = log_to(snakemake.log[0])
p, i, o = snakemake.params, snakemake.input, snakemake.output
region = snakemake.wildcards.region
fine = dio.read_field(i.fine, p.variable)
coarse = dio.read_field(i.coarse_on_fine, p.variable)
results = analyse(fine.values, pd.DatetimeIndex(fine.time.values), coarse.values, pd.DatetimeIndex(coarse.time.values),
                  p.seasons, p.log10, p.floor, p.patch_size, p.projections, p.seeds, p.max_patches)
df = table(region, results)
log.info("%s:\n%s", region, df.to_string())
with dio.atomic_path(o.table) as tmp:
    df.to_csv(tmp, index=False, float_format="%.6g")
domain_per_day(region, results, PAPER_WASSERSTEIN, o.per_day)
domain_pixel_map(region, results, fine.lat.values, fine.lon.values, o.pixel_map)
