"""Rule split_region: a region's fine record, coarse record on its fine grid, static fields (and truth)."""

from _helpers import file_metadata, log_to

from diffscale.data.split import write_region

log = log_to(snakemake.log[0])
p, i, o = snakemake.params, snakemake.input, snakemake.output
counts = write_region(p.box, p.variable, list(i.fine), list(i.coarse_on_fine), dict(zip(p.static_fields, i.static)),
                      p.fine_period, p.coarse_period, o.fine, o.coarse_on_fine, {n: o[n] for n in p.static_fields},
                      o.get("truth"), p.truth_where_held, file_metadata(snakemake))
log.info("%s: days written %s", snakemake.wildcards.region, counts)
