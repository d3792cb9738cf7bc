"""Rule sample: teacher-forced ensembles on the test days, the autoregressive run over the beyond days.

The same for the diffusion models and the trained baselines; deterministic models write one member.
"""

from pathlib import Path

from _helpers import log_to

import torch

from diffscale.method.sampling import sample_files

log_to(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
p, out = snakemake.params, snakemake.output
sample_files(Path(snakemake.input.fine).parent, snakemake.wildcards.season, p.variable, snakemake.input.model,
             snakemake.wildcards.model, p.sampling, p.transform, out.test, out.beyond, out.scores)
