"""Rule sample_bicubic: the bicubic baseline's samples (one member) for test and beyond days."""

import json

from _helpers import log_to

from diffscale.core import io
from diffscale.evaluation.bicubic import bicubic_record

log = log_to(snakemake.log[0])
i, p = snakemake.input, snakemake.params
days = json.loads(open(i.days).read())
fine = io.read_field(i.fine, p.variable)
for period in ("test", "beyond"):
    ds = bicubic_record(i.coarse, p.variable, days[period], fine.lat.values, fine.lon.values, p.log10, p.floor)
    io.write_netcdf(ds, snakemake.output[period])
    log.info("%s: %d days interpolated onto %d x %d fine pixels", period, len(days[period]), fine.sizes["lat"], fine.sizes["lon"])
