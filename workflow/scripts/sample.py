"""Rule sample: teacher-forced ensembles on the test days, the autoregressive run over the beyond days.

The same for the diffusion model and the trained baselines; deterministic models write one member.
"""

import json
from pathlib import Path

from _helpers import log_to

import numpy as np
import torch

from diffscale.core import io
from diffscale.method.conditioning import load_season
from diffscale.method.regressors import Regressor, load_model
from diffscale.method.sampling import stride_of, autoregressive, ensemble_scores, model_space, samples_dataset, teacher_forced, timed

log = log_to(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
p = snakemake.params
s = p.sampling
data = load_season(Path(snakemake.input.fine).parent, snakemake.wildcards.season, p.variable)
model = load_model(snakemake.input.model)
members, beyond_members = (1, 1) if model.deterministic else (s["members"], s["beyond_members"])
opts = dict(sampler=s["sampler"], steps=s["steps"], seed=s["seed"], tile=s["tile"] or None, stride=stride_of(model, s))
attrs = {"model": snakemake.wildcards.model, "checkpoint": snakemake.input.model, "seed": s["seed"]}
if isinstance(model, Regressor):
    attrs["sampler"] = "latent drawn from N(0, I) per member" if not model.deterministic else "none (deterministic)"
else:
    attrs |= {"sampler": s["sampler"], "sampler_steps": s["steps"]}

test_days, beyond_days = data.days["test"], data.days["beyond"]
test, t_test = timed(teacher_forced, model, data, test_days, members, **opts)
log.info("test: %d days x %d members in %.1f s", len(test_days), members, t_test)
io.write_netcdf(samples_dataset(test, test_days, data, attrs | {"mode": "teacher-forced (history = true fine days before t)"}),
                snakemake.output.test)
beyond, t_beyond = timed(autoregressive, model, data, beyond_days, beyond_members, spinup=s["spinup_days"], **opts)
log.info("beyond: %d days x %d members in %.1f s", len(beyond_days), beyond_members, t_beyond)
io.write_netcdf(samples_dataset(beyond, beyond_days, data, attrs | {"mode": "autoregressive (history = own predictions)",
                                                                     "spinup_days": s["spinup_days"]}),
                snakemake.output.beyond)

# The method's own check against the truth (the official metrics are the evaluation stage's).
convert = model_space(data, p.transform["log10"], p.transform["floor"])
report = {"seconds": {"test": t_test, "beyond": t_beyond}, "days": {"test": len(test_days), "beyond": len(beyond_days)}}
truth_test = convert(np.stack([data.fine_on(d) for d in test_days]))
report["test"] = ensemble_scores(convert(test), truth_test)
report["test_coarse_on_fine"] = ensemble_scores(convert(np.stack([data.coarse_on(d) for d in test_days]))[None], truth_test)
# Beyond days with fine truth: all of them for the twin, those the user's files hold for local data.
scored = [i for i, d in enumerate(beyond_days) if data.truth_on(d) is not None]
if scored:
    truth_beyond = convert(np.stack([data.truth_on(beyond_days[i]) for i in scored]))
    report["days"]["beyond_scored"] = len(scored)
    report["beyond"] = ensemble_scores(convert(beyond[:, scored]), truth_beyond)
    report["beyond_coarse_on_fine"] = ensemble_scores(
        convert(np.stack([data.coarse_on(beyond_days[i]) for i in scored]))[None], truth_beyond)
log.info("self-check scores: %s", json.dumps(report, indent=1))
with io.atomic_path(snakemake.output.scores) as tmp:
    tmp.write_text(json.dumps(report, indent=1) + "\n")
