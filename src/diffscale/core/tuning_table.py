"""The columns of ``results/tuning/{region}_{season}.csv``: what rule tune writes
(:mod:`diffscale.method.tuning`, torch) and rule tuning_selection reads
(:mod:`diffscale.evaluation.selection`, torch-free), so the contract lives below both."""

TUNING_COLUMNS = ["kind", "batch_size", "lr", "steps", "sampler", "sampler_steps", "nfe", "crps_fair", "rmse",
                  "sample_seconds", "train_seconds", "days", "members", "region", "season"]
