# Paths and small helpers shared by the rules. No logic of the method lives here.
import os
import sys

from diffscale.core import io as dio
from diffscale.core.grids import Box

RESULTS = config["results_dir"]
RAW = config["data"]["raw_dir"]
LOGS = f"{RESULTS}/logs"
DATA = config["data"]
REGIONS = list(config["regions"])
SEASONS = list(config["seasons"])
BOXES = {name: Box.from_config(box) for name, box in config["regions"].items()}


wildcard_constraints:
    region="|".join(REGIONS),
    season="|".join(SEASONS),


def raw_files(field: str) -> list[str]:
    """Monthly files of the coarse or fine record, over the period the source provides.

    The synthetic twin writes fine truth over the whole coarse period (the 'beyond'
    truth); later stages cut the fine record to data.fine_period themselves.
    """
    if field == "fine" and DATA["source"] == "local":
        return local_fine_files()
    period = DATA["coarse_period"] if field == "coarse" or DATA["source"] == "synthetic" else DATA["fine_period"]
    return [str(p) for p in dio.month_files(f"{RAW}/{field}", *period)]


def all_targets() -> list[str]:
    targets = raw_files("coarse") + raw_files("fine") + [f"{RAW}/elevation.nc"]
    if DATA["source"] == "synthetic":
        targets += [f"{RAW}/twin.json", f"{RESULTS}/figures/twin_overview.png"]
    # regrid, split, domain (issue 4)
    targets += expand(f"{REGRID}/{{region}}/fine_on_coarse/{Path(raw_files('fine')[-1]).name}", region=REGIONS)
    targets += split_targets()
    targets += [f"{DOMAIN}/wasserstein.csv"]
    targets += expand(f"{DOMAIN}/{{region}}/{{name}}.png", region=REGIONS, name=["per_day", "pixel_map"])
    # encoder, diffusion, samples, product (issue 5)
    targets += model_targets()
    targets += evaluation_targets()
    return targets


def local_files(field: str) -> list[str]:
    """The user's files of data.local.<field> (source local), as rule inputs.

    As inputs, Snakemake reruns the job when they change; no match leaves the input
    empty and the job fails with an error naming the pattern.
    """
    import glob
    import os

    return sorted(glob.glob(os.path.expanduser(DATA["local"][field]["path"])))


def local_fine_files() -> list[str]:
    """Source local: fine months of fine_period plus those of coarse_period the user's files reach."""
    from diffscale.data.sources.local import fine_months

    f = DATA["local"]["fine"]
    months = fine_months(f["path"], f["variable"], DATA["coarse_period"], DATA["fine_period"])
    return [str(dio.month_file(f"{RAW}/fine", y, m)) for y, m in months]


# ---- regrid, split, domain (issue 4)
REGRID = f"{RESULTS}/regrid"
SPLIT = f"{RESULTS}/split"
DOMAIN = f"{RESULTS}/domain"


def local_truth() -> bool:
    """Source local: the user's fine files hold days of coarse_period outside fine_period."""
    from diffscale.data.sources.local import truth_days

    f = DATA["local"]["fine"]
    return len(truth_days(f["path"], f["variable"], DATA["coarse_period"], DATA["fine_period"])) > 0


# Fine files outside data.fine_period come from the synthetic twin (always) and from local
# files that reach past it (see raw_files); nasa fetches the fine period only. split writes
# truth.nc exactly then, with the days the fine files hold (all of them for the twin).
SPLIT_TRUTH = (DATA["coarse_period"][0] < DATA["fine_period"][0] or DATA["coarse_period"][1] > DATA["fine_period"][1]) and (
    DATA["source"] == "synthetic" or (DATA["source"] == "local" and local_truth())
)


def regrid_outputs(field: str, kind: str) -> list[str]:
    """Monthly files of one region's regridded record, named like the raw ones."""
    return [f"{REGRID}/{{region}}/{kind}/{Path(p).name}" for p in raw_files(field)]


def split_region_outputs() -> dict[str, str]:
    out = {name: f"{SPLIT}/{{region}}/{name}.nc" for name in ("fine", "coarse_on_fine", "elevation")}
    if SPLIT_TRUTH:
        out["truth"] = f"{SPLIT}/{{region}}/truth.nc"
    return out


def split_targets() -> list[str]:
    files = [f for name in split_region_outputs() for f in expand(f"{SPLIT}/{{region}}/{name}.nc", region=REGIONS)]
    return files + expand(f"{SPLIT}/{{region}}/{{season}}/{{name}}.json", region=REGIONS, season=SEASONS,
                          name=["days", "scaler"])


# ---- encoder, diffusion, samples, product (issue 5)
MODELS = f"{RESULTS}/models"
SAMPLES = f"{RESULTS}/samples"


def split_inputs(w) -> dict[str, str]:
    files = {name: f"{SPLIT}/{w.region}/{name}.nc" for name in ("fine", "coarse_on_fine", "elevation")}
    if SPLIT_TRUTH:
        files["truth"] = f"{SPLIT}/{w.region}/truth.nc"
    return files | {"days": f"{SPLIT}/{w.region}/{w.season}/days.json", "scaler": f"{SPLIT}/{w.region}/{w.season}/scaler.json"}


from diffscale.method.fit import DIFFUSION_MODELS


def diffusion_encoder_input(w) -> dict[str, str]:
    """The pretrained encoder, for the diffusion models that condition on it (not the ablation)."""
    return {"encoder": f"{MODELS}/{w.region}/{w.season}/encoder.pt"} if DIFFUSION_MODELS[w.model] else {}


METHOD_FIGURES = f"{RESULTS}/figures/method"


def diffusion_models() -> list[str]:
    """The method always (the product needs it); its ablation when evaluation.models asks for it."""
    return ["diffusion"] + [m for m in config["evaluation"]["models"] if m in DIFFUSION_MODELS and m != "diffusion"]


def trained_models() -> list[str]:
    """Every model trained per region and season: the encoder, the diffusion models, the asked baselines."""
    return ["encoder", *diffusion_models()] + [m for m in config["evaluation"]["models"] if m in BASELINE_KINDS]


def model_targets() -> list[str]:
    return (expand(f"{SAMPLES}/{{region}}/{{season}}/{{model}}/{{name}}.nc", region=REGIONS, season=SEASONS,
                   model=diffusion_models(), name=["test", "beyond"])
            + baseline_targets()
            + expand(f"{METHOD_FIGURES}/{{region}}/{{season}}/training.png", region=REGIONS, season=SEASONS)
            + expand(f"{RESULTS}/downscaled/{{region}}.nc", region=REGIONS)
            + [f"{RESULTS}/metrics/samplers.csv"])


# ---- trained baselines (issue 6, section 1): unet, vae, transfer_unet
from diffscale.method.fit import baseline_settings
from diffscale.method.regressors import KINDS as BASELINE_KINDS


def baseline_targets() -> list[str]:
    """Samples of the trained baselines that evaluation.models asks for."""
    models = [m for m in config["evaluation"]["models"] if m in BASELINE_KINDS]
    return expand(f"{SAMPLES}/{{region}}/{{season}}/{{model}}/{{name}}.nc", region=REGIONS, season=SEASONS, model=models,
                  name=["test", "beyond"])


# --- Evaluation (issue 6) -------------------------------------------------------------
EVAL = config["evaluation"]
METRICS = f"{RESULTS}/metrics"
EVAL_FIGURES = f"{RESULTS}/figures/evaluation"
EVAL_FIGURE_KINDS = ["maps", "spectra", "variogram", "acf", "lags", "drift", "rank_histogram"]


def producible(path: str) -> bool:
    """The file is on disk or some rule of this workflow can make it."""
    return os.path.exists(path) or any(r.is_producer(path) for r in workflow.rules)


_REPORTED_LEFT_OUT: set[tuple[str, str]] = set()


def sample_path(region: str, season: str, model: str, period: str) -> str:
    return f"{SAMPLES}/{region}/{season}/{model}/{period}.nc"


def evaluated_models(region: str, season: str) -> list[str]:
    """evaluation.models whose samples exist or can be made in this workflow.

    Lets the evaluation run while some models' rules are not part of the workflow yet;
    the models left out are named on stderr, never dropped silently.
    """
    models = [m for m in EVAL["models"] if producible(sample_path(region, season, m, "test"))]
    left = [m for m in EVAL["models"] if m not in models]
    if EVAL["oracle"] and DATA["source"] == "synthetic":
        models.append("oracle")  # the twin's ceiling: everything but the noise
    if left and (region, season) not in _REPORTED_LEFT_OUT:
        _REPORTED_LEFT_OUT.add((region, season))
        print(f"evaluation: no samples and no rule to make them for {', '.join(left)} "
              f"({region}/{season}); they are left out", file=sys.stderr)
    return models


def beyond_truth_declared() -> bool:
    # split writes truth.nc exactly then (SPLIT_TRUTH): the twin, or local fine files that
    # reach past the fine period. Without it evaluation writes no beyond rows.
    return SPLIT_TRUTH


def evaluation_targets() -> list[str]:
    """summary.csv and the figures, once the split files exist or can be made."""
    if not all(producible(f"{SPLIT}/{r}/{s}/days.json") for r in REGIONS for s in SEASONS):
        return []
    return [f"{METRICS}/summary.csv", f"{EVAL_FIGURES}/metrics_test.png", f"{EVAL_FIGURES}/metrics_beyond.png"] + [
        f"{EVAL_FIGURES}/{r}/{s}/{kind}.png" for r in REGIONS for s in SEASONS for kind in EVAL_FIGURE_KINDS]


def evaluate_inputs(wildcards) -> dict[str, str | list[str]]:
    files = {
        "coarse": raw_files("coarse"),
        "fine": f"{SPLIT}/{wildcards.region}/fine.nc",
        "days": f"{SPLIT}/{wildcards.region}/{wildcards.season}/days.json",
    }
    if beyond_truth_declared():
        files["truth"] = f"{SPLIT}/{wildcards.region}/truth.nc"
    for model in evaluated_models(wildcards.region, wildcards.season):
        for period in ("test", "beyond"):
            files[f"{model}_{period}"] = sample_path(wildcards.region, wildcards.season, model, period)
    return files


def evaluation_figure(kind: str, title: str):
    return report(
        f"{EVAL_FIGURES}/{{region}}/{{season}}/{kind}.png",
        caption=f"../report/{kind}.rst",
        category="4. Evaluation",
        subcategory=title,
        labels={"region": "{region}", "season": "{season}"},
    )
