"""Rule train_baseline: one trained baseline (unet, vae or transfer_unet) on the method's training crops."""

from pathlib import Path

from _helpers import log_to

import torch

from diffscale.method.fit import train_baseline_files

log = log_to(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
p = snakemake.params
train_baseline_files(Path(snakemake.input.fine).parent, snakemake.wildcards.season, p.variable, snakemake.wildcards.model,
                     snakemake.input.encoder, p.encoder, p.baselines, p.halo, p.checkpoint, snakemake.output.model,
                     snakemake.output.curve)
