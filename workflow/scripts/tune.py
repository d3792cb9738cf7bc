"""Rule tune: the method's candidates (steps, batch size, learning rate, sampler steps) scored on the validation days."""

from pathlib import Path

from _helpers import log_to

import torch

from diffscale.method.tuning import tune_files

log_to(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
p, w, i = snakemake.params, snakemake.wildcards, snakemake.input
tune_files(Path(i.fine).parent, w.region, w.season, p.variable, i.get("encoder"), i.get("regressor"), p.encoder,
           p.diffusion, p.halo, p.sampling, p.transform, p.tuning, snakemake.output[0], p.device)
