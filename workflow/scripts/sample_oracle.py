"""Rule sample_oracle: the twin's oracle (all but the noise) as a one-member 'model', the ceiling."""

import json

import numpy as np
from _helpers import log_to

from diffscale.core import io
from diffscale.core.grids import Box
from diffscale.core.samples import member_dataset
from diffscale.data.sources.synthetic import TwinParameters, twin_oracle

log = log_to(snakemake.log[0])
i, p = snakemake.input, snakemake.params
params = TwinParameters.from_dict(json.loads(open(i.reference).read())["parameters"])
requests, truth_files, outputs = {}, {}, {}
outs = iter(snakemake.output)  # ordered region, season, period (test, beyond) as in the rule
for region, season, days_path, fine_path, t in zip(p.regions, p.seasons, i.days, i.fine, p.truth_index):
    fine = io.read_field(fine_path, p.variable)
    days = json.loads(open(days_path).read())
    for period in ("test", "beyond"):
        key = f"{region}/{season}/{period}"
        requests[key] = (fine.lat.values, fine.lon.values, days[period])
        # Without declared truth there are no beyond days to check (split writes none).
        truth_files[key] = fine_path if period == "test" else (i.truth[t] if len(i.truth) else None)
        outputs[key] = next(outs)
log.info("regenerating the twin over %s..%s for %d requests", *p.period, len(requests))
boxes = [Box.from_config(b) for b in p.boxes.values()]
result = twin_oracle(boxes, p.margin, tuple(p.period), params, requests)
for key, (oracle, regenerated) in result.items():
    lat, lon, days = requests[key]
    if days:
        # The oracle is only a ceiling of *these* files if the regeneration reproduces them.
        written = io.read_field(truth_files[key], p.variable).sel(time=np.array(days, dtype="datetime64[ns]")).values
        if not np.allclose(written, regenerated, rtol=1e-6, atol=0):
            raise io.DataValidationError(truth_files[key], "the twin regenerated from twin.json does not reproduce this "
                                         "file: the oracle would not belong to this data (rerun make_synthetic)")
    ds = member_dataset(oracle[None], np.array(days, dtype="datetime64[ns]"), lat, lon, p.variable,
                        {"units": p.units, "long_name": p.long_name}, {"model": "oracle", "method": "twin oracle: every term but the noise"})
    io.write_netcdf(ds, outputs[key])
    log.info("%s: %d days", key, len(days))
