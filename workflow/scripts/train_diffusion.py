"""Rule train_diffusion: the conditional diffusion model, with the frozen transfer encoder
(model diffusion) or without it (diffusion_no_transfer, the ablation: no encoder input).

With diffusion.residual: regression it is trained on the residual from its regression part
(input `regressor`, trained first by rule train_baseline), which the saved model holds.
diffusion.gpus > 1 runs the same training under torchrun (see diffscale.method.fit).
"""

from pathlib import Path

from _helpers import log_to

import torch

from diffscale.method.fit import train_files

log_to(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
p = snakemake.params
train_files(snakemake.wildcards.model, Path(snakemake.input.fine).parent, snakemake.wildcards.season, p.variable,
            snakemake.input.get("encoder"), p.encoder, p.diffusion, p.halo, p.checkpoint, snakemake.output.model,
            snakemake.output.curve, log_file=snakemake.log[0], device_name=p.device,
            regressor_path=snakemake.input.get("regressor"), sampling=p.reference_tiles)
