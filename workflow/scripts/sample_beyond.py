"""Rule sample_beyond: one block of the autoregressive run over the beyond days, from the state the block before wrote."""

from pathlib import Path

from _helpers import file_metadata, log_to

import torch

from diffscale.method.beyond import sample_block_files

log_to(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
i, o, p, w = snakemake.input, snakemake.output, snakemake.params, snakemake.wildcards
sample_block_files(Path(i.fine).parent, w.season, p.variable, i.model, w.model, w.block, p.coarse_period, p.sampling,
                   i.get("previous"), o.samples, o.state, p.device, file_metadata(snakemake))
