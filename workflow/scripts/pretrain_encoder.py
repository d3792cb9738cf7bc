"""Rule pretrain_encoder: the temporal U-Net on the region's coarse-on-fine record, one season."""

from pathlib import Path

from _helpers import log_to

import torch

from diffscale.method.conditioning import load_season
from diffscale.method.fit import pretrain_encoder, save_encoder, write_curve
from diffscale.method.networks.unet import count_parameters

log = log_to(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
cfg = snakemake.params.encoder
split_dir = Path(snakemake.input.fine).parent
data = load_season(split_dir, snakemake.wildcards.season, snakemake.params.variable)
model, result = pretrain_encoder(data, snakemake.params.months, cfg, snakemake.params.checkpoint)
save_encoder(model, cfg, snakemake.output.model, extra={"parameters": count_parameters(model), "seconds": result.seconds,
                                                        "steps": result.steps, "val": result.val})
write_curve(result, snakemake.output.curve)
Path(snakemake.params.checkpoint).unlink(missing_ok=True)
log.info("encoder: %d parameters, %d steps in %.1f s (early stop: %s), validation L1 %s",
         count_parameters(model), result.steps, result.seconds, result.stopped_early, result.val)
