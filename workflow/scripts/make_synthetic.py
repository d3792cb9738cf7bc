"""Rule make_synthetic: write the twin experiment's coarse, fine and elevation files."""

from _helpers import file_metadata, log_to

from diffscale.data.sources.synthetic import make_twin, twin_parameters

log = log_to(snakemake.log[0])
p = snakemake.params
params = twin_parameters(p.synthetic)
log.info("generating the %s twin over %s..%s, margin %s deg, parameters %s", params.kind, *p.period, p.margin, params)
scores = make_twin(list(p.boxes.values()), p.margin, tuple(p.period), p.out_dir,
                   variable=p.variable, long_name=p.long_name, units=p.units, params=params,
                   metadata=file_metadata(snakemake))
log.info("reference scores on the data made: %s", scores)
