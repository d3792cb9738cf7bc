"""Rule sample: teacher-forced ensembles on the test days (the beyond days are rule sample_beyond's blocks).

The same for the diffusion models and the trained baselines; deterministic models write one member.
"""

from pathlib import Path

from _helpers import file_metadata, log_to

import torch

from diffscale.method.sampling import sample_test_files

log_to(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
p, w = snakemake.params, snakemake.wildcards
sample_test_files(Path(snakemake.input.fine).parent, w.season, p.variable, snakemake.input.model, w.model, p.sampling,
                  snakemake.output[0], p.device, file_metadata(snakemake))
