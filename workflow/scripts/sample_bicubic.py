"""Rule sample_bicubic: the bicubic baseline's samples (one member) for test and beyond days."""

from _helpers import file_metadata, log_to

from diffscale.evaluation.bicubic import bicubic_samples

log_to(snakemake.log[0])
i, p = snakemake.input, snakemake.params
bicubic_samples(i.coarse, i.fine, i.days, p.variable, p.log10, p.floor, dict(snakemake.output.items()),
                file_metadata(snakemake))
