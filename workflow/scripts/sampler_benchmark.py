"""Rule sampler_benchmark: the paper's DDPM against the fast sampler on a few test days (quality vs cost)."""

from pathlib import Path

from _helpers import log_to

import pandas as pd
import torch

from diffscale.core import io
from diffscale.method.conditioning import load_season
from diffscale.method.diffusion import Downscaler
from diffscale.method.sampling import stride_of, compare_samplers, model_space

log = log_to(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
p = snakemake.params
s = p.sampling
data = load_season(Path(snakemake.input.fine).parent, snakemake.wildcards.season, p.variable)
model = Downscaler.load(snakemake.input.model)
days = data.days["test"][: s["benchmark_days"]]
runs = [("ddpm", s["ddpm_steps"]), ("dpmpp", s["steps"])]
rows = compare_samplers(model, data, days, s["benchmark_members"], runs, model_space(data, p.transform["log10"], p.transform["floor"]),
                        seed=s["seed"], tile=s["tile"] or None, stride=stride_of(model, s))
table = pd.DataFrame(rows).assign(region=snakemake.wildcards.region, season=snakemake.wildcards.season)
with io.atomic_path(snakemake.output[0]) as tmp:
    table.to_csv(tmp, index=False)
log.info("\n%s", table.to_string(index=False))
