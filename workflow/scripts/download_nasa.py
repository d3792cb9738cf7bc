"""Rules download_merra2, download_g5nr, download_elevation: one month (or the elevation) from NASA."""

from _helpers import file_metadata, log_to

from diffscale.data.sources.nasa import run_download

log = log_to(snakemake.log[0])
p, w = snakemake.params, snakemake.wildcards
year, month = getattr(w, "year", None), getattr(w, "month", None)
log.info("downloading %s %s to %s", p.field, f"{year}-{month}" if year else "", snakemake.output[0])
n = run_download(p.nasa, p.field, p.boxes, p.margin, snakemake.output[0], p.variable, p.attrs, tuple(p.period),
                 year=year, month=month, metadata=file_metadata(snakemake))
log.info("done (%d requests)", n)
