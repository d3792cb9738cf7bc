"""Rule members_curve: the method's scores against the number of members on the validation days."""

from pathlib import Path

from _helpers import log_to

import torch

from diffscale.method.sampling import members_curve_files

log_to(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
p, w = snakemake.params, snakemake.wildcards
members_curve_files(Path(snakemake.input.fine).parent, w.region, w.season, p.variable, snakemake.input.model,
                    p.sampling, p.transform, snakemake.output[0], p.device)
