"""Rule train_baseline: one trained baseline (unet, vae or transfer_unet) on the method's training crops.

Only the models whose registry entry uses the encoder get it as an input.
"""

from pathlib import Path

from _helpers import log_to

import torch

from diffscale.method.fit import train_files

log_to(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
p = snakemake.params
train_files(snakemake.wildcards.model, Path(snakemake.input.fine).parent, snakemake.wildcards.season, p.variable,
            snakemake.input.get("encoder"), p.encoder, p.baselines, p.halo, p.checkpoint, snakemake.output.model,
            snakemake.output.curve, log_file=snakemake.log[0], device_name=p.device)
