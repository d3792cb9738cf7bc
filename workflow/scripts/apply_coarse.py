"""Rule apply_coarse: an apply entry's new coarse data, checked against the training record, as one file."""

from _helpers import file_metadata, log_to

from diffscale.data.apply import write_new_coarse

log_to(snakemake.log[0])
i, p = snakemake.input, snakemake.params
write_new_coarse(snakemake.output[0], i.training, p.variable, p.attrs, p.boxes, p.margin, p.pattern, p.source_variable,
                 list(i.get("raw", [])), p.training_pattern, p.training_variable, file_metadata(snakemake), p.subdaily)
