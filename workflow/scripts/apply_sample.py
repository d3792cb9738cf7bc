"""Rule apply_sample: one season's days of an apply entry's new coarse data, sampled by the trained method."""

from pathlib import Path

from _helpers import file_metadata, log_to

import torch

from diffscale.method.apply import sample_new_files

log_to(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
i, p, w = snakemake.input, snakemake.params, snakemake.wildcards
sample_new_files(Path(i.fine).parent, w.season, p.months, p.variable, i.model, p.model, i.coarse, p.sampling,
                 snakemake.output[0], p.device, file_metadata(snakemake))
