"""Rule sampler_benchmark: the paper's DDPM against the fast sampler on a few validation days (quality vs cost)."""

from pathlib import Path

from _helpers import log_to

import torch

from diffscale.method.sampling import benchmark_files

log_to(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
p, w = snakemake.params, snakemake.wildcards
benchmark_files(Path(snakemake.input.fine).parent, w.region, w.season, p.variable, snakemake.input.model, p.sampling,
                p.transform, snakemake.output[0], p.device)
