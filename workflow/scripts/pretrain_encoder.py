"""Rule pretrain_encoder: the temporal U-Net on the region's coarse-on-fine record, one season, and its probe."""

from pathlib import Path

from _helpers import log_to

import torch

from diffscale.method.fit import pretrain_files

log_to(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
p = snakemake.params
pretrain_files(Path(snakemake.input.fine).parent, snakemake.wildcards.season, p.variable, p.months, p.encoder,
               p.checkpoint, snakemake.output.model, snakemake.output.curve, snakemake.output.probe, p.device)
