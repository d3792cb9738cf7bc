"""Rule evaluate: scores and diagnostics of every model for one region and season."""

import json
from pathlib import Path

from _helpers import log_to

from diffscale.core import io
from diffscale.evaluation.scores import evaluate_region_season, scores_frame

log = log_to(snakemake.log[0])
i, p, w = snakemake.input, snakemake.params, snakemake.wildcards
samples = {m: {"test": i[f"{m}_test"], "beyond": i[f"{m}_beyond"]} for m in p.models}
# Beyond truth: declared (split writes it) for the twin and for local files that reach
# past the fine period; a truth.nc left over from another configuration is never read.
truth = i.get("truth")
log.info("region %s, season %s: models %s, beyond truth %s", w.region, w.season, ", ".join(p.models) or "none", truth)
rows, diagnostics = evaluate_region_season(samples, i.fine, truth, i.days, list(i.coarse), p.variable, p.log10, p.floor,
                                           tuple(p.fine_period), dict(p.settings))
table = scores_frame([{"region": w.region, "season": w.season} | r for r in rows])
for r in rows:
    log.info("%s %s (%d days): r2 %.3f rmse %.4f crps %.4f", r["model"], r["period"], r["days"], r["r2"], r["rmse"], r["crps"])
n_beyond = len(json.loads(Path(i.days).read_text())["beyond"])
if n_beyond and not any(r["period"] == "beyond" for r in rows):
    why = "no fine truth outside the fine record" if truth is None else f"{truth} holds none of these days"
    log.info("beyond: %d day(s) reconstructed but unscored (%s); no beyond rows", n_beyond, why)
with io.atomic_path(snakemake.output.scores) as tmp:
    table.to_csv(tmp, index=False, float_format="%.6g")
with io.atomic_path(snakemake.output.diagnostics) as tmp:
    tmp.write_text(json.dumps({"region": w.region, "season": w.season, "models": list(p.models)} | diagnostics))
