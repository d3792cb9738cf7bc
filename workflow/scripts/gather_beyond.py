"""Rule gather_beyond: the blocks of the beyond run joined into beyond.nc, and the self-check of the samples."""

from pathlib import Path

from _helpers import file_metadata, log_to

from diffscale.method.beyond import gather_files

log_to(snakemake.log[0])
i, o, p, w = snakemake.input, snakemake.output, snakemake.params, snakemake.wildcards
gather_files(Path(i.fine).parent, w.season, p.variable, i.model, w.model, list(i.blocks), list(i.states), i.test,
             p.sampling, p.transform, o.beyond, o.scores, file_metadata(snakemake))
