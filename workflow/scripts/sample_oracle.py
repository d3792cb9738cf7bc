"""Rule sample_oracle: the twin's oracle (all but the noise) as a one-member 'model', the ceiling."""

from _helpers import file_metadata, log_to

from diffscale.evaluation.oracle import oracle_samples

log_to(snakemake.log[0])
i, p = snakemake.input, snakemake.params
oracle_samples(i.reference, p.boxes, p.margin, p.period, regions=p.regions, seasons=p.seasons, days_files=i.days,
               fine_files=i.fine, truth_files=i.truth, truth_index=p.truth_index, variable=p.variable,
               attrs={"units": p.units, "long_name": p.long_name}, outputs=snakemake.output,
               metadata=file_metadata(snakemake))
