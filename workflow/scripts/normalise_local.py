"""Rules normalise_local_{coarse,fine,elevation}: the user's files -> the raw monthly files."""

from _helpers import file_metadata, log_to

from diffscale.data.sources.local import normalise

log = log_to(snakemake.log[0])
p = snakemake.params
# the records' step and how to read them; the time-invariant elevation has none
timed = {"step": p.step, "subdaily": p.subdaily, "partner": tuple(p.partner)} if p.period else {}
log.info("normalising %s (variable %s) over %s", p.pattern, p.source_variable, p.period or "all (time-invariant)")
normalise(p.pattern, p.source_variable, p.boxes, p.margin, list(snakemake.output), p.variable, p.attrs,
          tuple(p.period) if p.period else None, tuple(p.required) if p.required else None,
          metadata=file_metadata(snakemake), **timed)
