"""Rule assemble: the continuous daily fine record of one region (results/downscaled/{region}.nc)."""

import json

from _helpers import log_to

from diffscale.core import io
from diffscale.method.product import assemble

log = log_to(snakemake.log[0])
p = snakemake.params
seasons = list(p.seasons)
provenance = {"source": "diffscale: frozen transfer encoder + conditional diffusion (Xiang et al. 2025)",
              "region": snakemake.wildcards.region,
              "model_checkpoints": json.dumps(dict(zip(seasons, map(str, snakemake.input.models)))),
              "sampler": json.dumps({k: p.sampling[k] for k in ("sampler", "steps", "beyond_members", "halo", "tile", "overlap",
                                                                "spinup_days", "seed")}),
              "config": json.dumps(p.config, default=str)}
ds = assemble(snakemake.input.fine, dict(zip(seasons, snakemake.input.beyond)), p.seasons, p.variable,
              tuple(p.coarse_period), p.members_saved, provenance)
io.write_netcdf(ds, snakemake.output[0])
log.info("wrote %s: %d days, source counts %s", snakemake.output[0], ds.sizes["time"],
         {int(k): int((ds.source.values == k).sum()) for k in (0, 1, 2)})
