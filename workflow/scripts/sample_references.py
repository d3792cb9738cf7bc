"""Rule sample_references: the twin's oracle and coarse-information ceiling as one-member 'models'."""

from _helpers import file_metadata, log_to

from diffscale.evaluation.references import reference_samples

log_to(snakemake.log[0])
i, p, o = snakemake.input, snakemake.params, snakemake.output
reference_samples(i.reference, p.boxes, p.margin, p.period, regions=p.regions, seasons=p.seasons, days_files=i.days,
                  fine_files=i.fine, truth_files=i.truth, truth_index=p.truth_index, variable=p.variable,
                  attrs={"units": p.units, "long_name": p.long_name},
                  outputs={"oracle": o.oracle, "ceiling": o.ceiling}, metadata=file_metadata(snakemake))
