"""Rule train_diffusion: the conditional diffusion model with the frozen transfer encoder."""

from pathlib import Path

from _helpers import log_to

import torch

from diffscale.conditioning import load_season
from diffscale.fit import load_encoder, train_diffusion, write_curve
from diffscale.models.unet import count_parameters

log = log_to(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
p = snakemake.params
data = load_season(Path(snakemake.input.fine).parent, snakemake.wildcards.season, p.variable)
encoder = load_encoder(snakemake.input.encoder)
model, result = train_diffusion(data, encoder, p.encoder, p.diffusion, p.halo, p.checkpoint)
trainable = sum(q.numel() for q in model.denoiser.parameters())
model.save(snakemake.output.model, extra={"trainable_parameters": trainable, "parameters": count_parameters(model),
                                          "seconds": result.seconds, "steps": result.steps, "encoder": snakemake.input.encoder})
write_curve(result, snakemake.output.curve)
Path(p.checkpoint).unlink(missing_ok=True)
log.info("diffusion: %d trainable parameters, %d steps in %.1f s, validation loss %s", trainable, result.steps,
         result.seconds, result.val)
