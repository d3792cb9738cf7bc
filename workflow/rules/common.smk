# Paths, wildcard constraints, input functions and the final target list. No logic of the
# method lives here, and nothing here imports torch: `snakemake -n` and `--lint` parse
# the workflow without it (the model names come from the torch-free registry).
import glob
import os
from types import SimpleNamespace

from diffscale.core import io as dio
from diffscale.core import registry
from diffscale.core import steps as timesteps
from diffscale.core import resources as jobsize
from diffscale.core.config import baseline_settings, static_fields, with_seed
from diffscale.core.days import beyond_blocks
from diffscale.core.grids import region_boxes
from diffscale.method.aggregates import periods_for

RESULTS = config["results_dir"]
RAW = config["data"]["raw_dir"]
LOGS = f"{RESULTS}/logs"
BENCHMARKS = f"{RESULTS}/benchmarks"
REGRID = f"{RESULTS}/regrid"
SPLIT = f"{RESULTS}/split"
DOMAIN = f"{RESULTS}/domain"
MODELS = f"{RESULTS}/models"
SAMPLES = f"{RESULTS}/samples"
METRICS = f"{RESULTS}/metrics"
METHOD_FIGURES = f"{RESULTS}/figures/method"
EVAL_FIGURES = f"{RESULTS}/figures/evaluation"
PRODUCT_FIGURES = f"{RESULTS}/figures/product"
EVAL_FIGURE_KINDS = [
    "maps",
    "spectra",
    "variogram",
    "acf",
    "lags",
    "drift",
    "rank_histogram",
]

DATA = config["data"]
EVAL = config["evaluation"]
REGIONS = list(config["regions"])
SEASONS = list(config["seasons"])
STEP = DATA["step"]  # the records' time step: day, month or year
# the aggregates a record of this step has (no monthly means of annual data), and the one in the figure
AGGREGATE_PERIODS = periods_for(STEP)
AGGREGATE_FIGURE = AGGREGATE_PERIODS[0]
# in one longitude frame: regions across the antimeridian reach past 180
BOXES = region_boxes(config["regions"])
# The static fields the models condition on besides lat/lon: one {name}.nc each, raw and per region.
STATIC_FIELDS = static_fields(config)

# Trained models, grouped as their training rules take them. The method always (the product needs it), the rest
# as evaluation.models asks.
DIFFUSION_MODELS = [registry.METHOD] + [
    m for m in registry.of_family("diffusion", EVAL["models"]) if m != registry.METHOD
]
BASELINE_MODELS = registry.of_family("regressor", EVAL["models"])
# Models the rules sample, sample_beyond and gather_beyond serve (a wildcard constraint).
SAMPLED_MODELS = "|".join(
    registry.of_family("diffusion") + registry.of_family("regressor")
)


wildcard_constraints:
    region="|".join(REGIONS),
    season="|".join(SEASONS),
    seed=r"\d+",


# ---- raw records


def raw_files(field: str) -> list[str]:
    """Monthly files of the coarse or fine record, over the period the source provides
    (the months that hold a step: January only for annual data).

    The synthetic twin writes fine truth over the whole coarse period (the 'beyond'
    truth); later stages cut the fine record to data.fine_period themselves.
    """
    if field == "fine" and DATA["source"] == "local":
        return local_fine_files()
    period = (
        DATA["coarse_period"]
        if field == "coarse" or DATA["source"] == "synthetic"
        else DATA["fine_period"]
    )
    return [
        str(dio.month_file(f"{RAW}/{field}", y, m))
        for y, m in timesteps.months_holding(*period, STEP)
    ]


def static_files() -> list[str]:
    """The raw file of each static field, in channel order."""
    return [f"{RAW}/{name}.nc" for name in STATIC_FIELDS]


def local_files(field: str) -> list[str]:
    """The user's files of data.local.<field> (source local), as rule inputs.

    As inputs, Snakemake reruns the job when they change; no match leaves the input
    empty and the job fails with an error naming the pattern.
    """
    return sorted(glob.glob(os.path.expanduser(DATA["local"][field]["path"])))


def local_fine_files() -> list[str]:
    """Source local: fine months of fine_period plus those of coarse_period the user's files reach."""
    from diffscale.data.sources.local import fine_months

    f = DATA["local"]["fine"]
    months = fine_months(
        f["path"], f["variable"], DATA["coarse_period"], DATA["fine_period"], STEP
    )
    return [str(dio.month_file(f"{RAW}/fine", y, m)) for y, m in months]


def local_truth() -> bool:
    """Source local: the user's fine files hold days of coarse_period outside fine_period."""
    from diffscale.data.sources.local import truth_days

    f = DATA["local"]["fine"]
    return (
        len(
            truth_days(
                f["path"],
                f["variable"],
                DATA["coarse_period"],
                DATA["fine_period"],
                STEP,
            )
        )
        > 0
    )


# Fine files outside data.fine_period come from the synthetic twin (always) and from local
# files that reach past it (see raw_files); nasa fetches the fine period only. split writes
# truth.nc exactly then, with the days the fine files hold (all of them for the twin), and
# evaluate scores the beyond days only then.
SPLIT_TRUTH = (
    DATA["coarse_period"][0] < DATA["fine_period"][0]
    or DATA["coarse_period"][1] > DATA["fine_period"][1]
) and (DATA["source"] == "synthetic" or (DATA["source"] == "local" and local_truth()))


# ---- regrid, split


def regrid_outputs(field: str, kind: str) -> list[str]:
    """Monthly files of one region's regridded record, named like the raw ones."""
    return [f"{REGRID}/{{region}}/{kind}/{Path(p).name}" for p in raw_files(field)]


def split_region_outputs() -> dict[str, str]:
    out = {
        name: f"{SPLIT}/{{region}}/{name}.nc"
        for name in ("fine", "coarse_on_fine", *STATIC_FIELDS)
    }
    if SPLIT_TRUTH:
        out["truth"] = f"{SPLIT}/{{region}}/truth.nc"
    return out


def split_inputs(w) -> dict[str, str]:
    """The split files of one region and season, as every model rule reads them."""
    files = {
        name: path.format(region=w.region)
        for name, path in split_region_outputs().items()
    }
    return files | {
        "days": f"{SPLIT}/{w.region}/{w.season}/days.json",
        "scaler": f"{SPLIT}/{w.region}/{w.season}/scaler.json",
    }


# ---- models, samples, one set per training seed
#
# Every learned model (the encoder too) is trained and sampled evaluation.seeds times:
# seed k trains with its section's seed + k and samples with sampling.seed + k
# (diffscale.core.config.with_seed), and the models of seed k use the encoder of seed k.
# Paths carry the seed index: {model}.s{seed}.pt, samples/.../{model}/s{seed}/. Bicubic
# and the oracle are deterministic: one run, no seed in their paths.
SEEDS = list(range(EVAL["seeds"]))


def seeds_of(model: str) -> list[int]:
    """The seed indices of a model: all for the encoder and the trained models, one for bicubic and the oracle."""
    return SEEDS if model == "encoder" or registry.entry(model).trained else [0]


def model_file(
    suffix: str = ".pt",
    region: str = "{region}",
    season: str = "{season}",
    model: str = "{model}",
    seed: str | int = "{seed}",
) -> str:
    """A trained model's file (.pt, or _loss.csv for its curve); with no arguments, the rules' pattern."""
    return f"{MODELS}/{region}/{season}/{model}.s{seed}{suffix}"


def sample_dir(
    region: str = "{region}",
    season: str = "{season}",
    model: str = "{model}",
    seed: str | int = "{seed}",
) -> str:
    """The folder of a model's samples of one seed (bicubic and the oracle: of their one run)."""
    if model != "{model}" and not registry.entry(model).trained:
        return f"{SAMPLES}/{region}/{season}/{model}"
    return f"{SAMPLES}/{region}/{season}/{model}/s{seed}"


def sample_path(
    period: str,
    region: str = "{region}",
    season: str = "{season}",
    model: str = "{model}",
    seed: str | int = "{seed}",
) -> str:
    return f"{sample_dir(region, season, model, seed)}/{period}.nc"


def seeded(section: dict):
    """A rule's params: ``section`` with the seed of the job's seed index (a function of the wildcards)."""
    return lambda w: with_seed(section, int(w.seed))


def encoder_input(w) -> dict[str, str]:
    """The pretrained encoder of the same seed, for the models that condition on it."""
    if registry.entry(w.model).uses_encoder:
        return {"encoder": model_file(".pt", w.region, w.season, "encoder", w.seed)}
    return {}


def regressor_input(w) -> dict[str, str]:
    """A diffusion model's regression part of the same seed (diffusion.residual: regression), trained first."""
    part = registry.regression(w.model, config["diffusion"]["residual"])
    if not part:
        return {}
    return {"regressor": model_file(".pt", w.region, w.season, part, w.seed)}


def reference_tiles() -> dict | None:
    """The sampling tiles that predict a diffusion model's training reference (diffusion.reference_tiling:
    sampling), else None (the training patch); only these keys, so other sampling settings retrain nothing.
    """
    if config["diffusion"]["reference_tiling"] != "sampling":
        return None
    return {key: config["sampling"][key] for key in ("tile", "overlap")}


def trained_models() -> list[str]:
    """Every model trained per region and season: the encoder, the diffusion models, the asked baselines."""
    return ["encoder", *DIFFUSION_MODELS, *BASELINE_MODELS]


# The product: {region}.nc, or with product.format zarr the store {region}.zarr.
PRODUCT_FORMAT = config["product"]["format"]
PRODUCT = f"{RESULTS}/downscaled/{{region}}{dio.PRODUCT_FORMATS[PRODUCT_FORMAT]}"


def product_output():
    """The assemble rule's output: a zarr store is a directory."""
    return directory(PRODUCT) if PRODUCT_FORMAT == "zarr" else PRODUCT


# The blocks of each season's beyond run (sampling.block), in order; computed once, since the
# input functions of every block job ask for them (800 jobs in config/paper.yaml).
SEASON_BLOCKS = {
    season: beyond_blocks(
        DATA["coarse_period"], months, config["sampling"]["block"], STEP
    )
    for season, months in config["seasons"].items()
}


def season_blocks(season: str) -> list[str]:
    return SEASON_BLOCKS[season]


def block_file(w, block: str, suffix: str) -> str:
    return f"{sample_dir(w.region, w.season, w.model, w.seed)}/beyond/{block}.{suffix}"


def sample_beyond_inputs(w) -> dict[str, str]:
    """A block's inputs: the split files, the model and the state the block before wrote."""
    files = split_inputs(w) | {
        "model": model_file(".pt", w.region, w.season, w.model, w.seed)
    }
    blocks = season_blocks(w.season)
    if w.block not in blocks:
        raise ValueError(f"no beyond block {w.block} of season {w.season}: {blocks}")
    i = blocks.index(w.block)
    if i > 0:
        files["previous"] = block_file(w, blocks[i - 1], "state.npz")
    return files


def gather_beyond_inputs(w) -> dict[str, str | list[str]]:
    """Every block of a season's beyond run, in order; test.nc and the split for the self-check."""
    blocks = season_blocks(w.season)
    return split_inputs(w) | {
        "model": model_file(".pt", w.region, w.season, w.model, w.seed),
        "test": sample_path("test", w.region, w.season, w.model, w.seed),
        "blocks": [block_file(w, b, "nc") for b in blocks],
        "states": [block_file(w, b, "state.npz") for b in blocks],
    }


def evaluated_models() -> list[str]:
    """evaluation.models in registry order, and the twin's references (ceiling, oracle) when asked."""
    models = registry.order(list(EVAL["models"]))
    if EVAL["oracle"] and DATA["source"] == "synthetic":
        models += registry.of_family("oracle")
    return models


def evaluated_seeds() -> dict[str, list[int]]:
    """The seed indices of every evaluated model (the rule evaluate's params)."""
    return {m: seeds_of(m) for m in evaluated_models()}


def evaluate_inputs(w) -> dict[str, str | list[str]]:
    """The split, the coarse record and every seed's samples of every model, named {model}_s{seed}_{period}."""
    files = {
        "coarse": raw_files("coarse"),
        "fine": f"{SPLIT}/{w.region}/fine.nc",
        "days": f"{SPLIT}/{w.region}/{w.season}/days.json",
    }
    if SPLIT_TRUTH:
        files["truth"] = f"{SPLIT}/{w.region}/truth.nc"
    for model, seeds in evaluated_seeds().items():
        for seed in seeds:
            for period in ("test", "beyond"):
                files[f"{model}_s{seed}_{period}"] = sample_path(
                    period, w.region, w.season, model, seed
                )
    return files


def evaluation_figure(kind: str, title: str):
    return report(
        f"{EVAL_FIGURES}/{{region}}/{{season}}/{kind}.png",
        caption=f"../report/{kind}.rst",
        category="4. Evaluation",
        subcategory=title,
        labels={"region": "{region}", "season": "{season}"},
    )


# ---- new coarse data for the trained models (config apply; rules/apply.smk)

APPLY = config["apply"]
APPLY_DIR = f"{RESULTS}/apply"
# results/downscaled/{region}.{name}.nc beside the product and its aggregates
APPLY_PRODUCT = (
    f"{RESULTS}/downscaled/{{region}}.{{name}}{dio.PRODUCT_FORMATS[PRODUCT_FORMAT]}"
)


def apply_output():
    """The apply_assemble rule's output: a zarr store is a directory."""
    return directory(APPLY_PRODUCT) if PRODUCT_FORMAT == "zarr" else APPLY_PRODUCT


def apply_days(name: str) -> int:
    """The steps of an apply entry (for job sizes): its period, or what its files hold (0 when unreadable)."""
    entry = APPLY[name]
    if "period" in entry:
        return len(timesteps.in_period(*entry["period"], STEP))
    from diffscale.data.sources.local import covered_days

    try:
        return len(
            covered_days(entry["coarse"]["path"], entry["coarse"]["variable"], STEP)
        )
    except dio.DataValidationError:
        return 0  # the job fails with the reason


APPLY_DAYS = {name: apply_days(name) for name in APPLY}


def apply_raw_files(name: str) -> list[str]:
    """An apply entry's coarse input: the user's files, or the MERRA-2 months of its period (source nasa)."""
    entry = APPLY[name]
    if "period" in entry:
        return [
            str(p) for p in dio.month_files(f"{APPLY_DIR}/{name}/raw", *entry["period"])
        ]
    return sorted(glob.glob(os.path.expanduser(entry["coarse"]["path"])))


def apply_description(name: str) -> str:
    """What an apply entry downscales, for the product's attributes."""
    entry = APPLY[name]
    if "period" in entry:
        return f"MERRA-2 {entry['period'][0]}..{entry['period'][1]}"
    return f"{entry['coarse']['path']} (variable {entry['coarse']['variable']})"


def apply_sample_inputs(w) -> dict[str, str]:
    """A season's split files, its seed-0 method model and the new record on the region's fine grid."""
    return split_inputs(w) | {
        "model": model_file(".pt", w.region, w.season, registry.METHOD, 0),
        "coarse": f"{APPLY_DIR}/{w.name}/{w.region}/coarse_on_fine.nc",
    }


# ---- make tune (workflow/rules/tune.smk)

TUNING = f"{RESULTS}/tuning"


def tune_inputs(w) -> dict[str, str]:
    """The split, and the method's encoder and regression part of seed 0 (as train_diffusion reads them)."""
    method = SimpleNamespace(
        region=w.region, season=w.season, model=registry.METHOD, seed=0
    )
    return split_inputs(w) | encoder_input(method) | regressor_input(method)


# ---- memory and run time of the jobs (diffscale.core.resources; README, "Resources")

SIZES = jobsize.Sizes(config)


def job_estimate(step: str, w) -> tuple[float, float]:
    """(held MB, work units) of one job of step, from the config and its wildcards."""
    extra = {}
    if step == "train_baseline":
        extra["train"] = baseline_settings(config["baselines"], config["diffusion"])
    if step.startswith("apply_"):
        extra["days"] = APPLY_DAYS[w.name]
    return SIZES.estimate(step, region=w.get("region"), season=w.get("season"), **extra)


def job_mem_mb(step: str):
    """mem_mb of step's jobs, from the config's estimate or its largest input, grown per attempt."""
    return lambda w, input, attempt: jobsize.mem_mb(
        step,
        jobsize.held(job_estimate(step, w)[0], jobsize.largest_input_mb(input), step),
        attempt,
    )


def job_runtime(step: str):
    """runtime (minutes) of step's jobs, grown per attempt."""
    return lambda w, attempt: jobsize.runtime(step, job_estimate(step, w)[1], attempt)


# ---- the final targets


def all_targets() -> list[str]:
    each = dict(region=REGIONS, season=SEASONS)
    targets = raw_files("coarse") + raw_files("fine") + static_files()
    if DATA["source"] == "synthetic":
        targets += [f"{RAW}/twin.json", f"{RESULTS}/figures/twin_overview.png"]
    targets += expand(
        f"{REGRID}/{{region}}/fine_on_coarse/{Path(raw_files('fine')[-1]).name}",
        region=REGIONS,
    )
    targets += [
        path.format(region=r)
        for path in split_region_outputs().values()
        for r in REGIONS
    ]
    targets += expand(
        f"{SPLIT}/{{region}}/{{season}}/{{name}}.json", **each, name=["days", "scaler"]
    )
    targets += [f"{DOMAIN}/wasserstein.csv"]
    targets += expand(
        f"{DOMAIN}/{{region}}/{{name}}.png",
        region=REGIONS,
        name=["per_day", "pixel_map"],
    )
    targets += [
        sample_path(period, region, season, model, seed)
        for region in REGIONS
        for season in SEASONS
        for model in DIFFUSION_MODELS + BASELINE_MODELS
        for seed in seeds_of(model)
        for period in ("test", "beyond")
    ]
    targets += expand(f"{METHOD_FIGURES}/{{region}}/{{season}}/training.png", **each)
    targets += expand(PRODUCT, region=REGIONS)
    targets += expand(
        f"{RESULTS}/downscaled/{{region}}.{{period}}.nc",
        region=REGIONS,
        period=AGGREGATE_PERIODS,
    )
    targets += expand(
        f"{PRODUCT_FIGURES}/{{region}}_{AGGREGATE_FIGURE}.png", region=REGIONS
    )
    targets += [
        f"{METRICS}/samplers.csv",
        f"{METRICS}/summary.csv",
        f"{METRICS}/comparisons.csv",
    ]
    targets += [f"{METHOD_FIGURES}/members.png"]
    targets += expand(APPLY_PRODUCT, region=REGIONS, name=list(APPLY))
    targets += [
        f"{EVAL_FIGURES}/metrics_test.png",
        f"{EVAL_FIGURES}/metrics_beyond.png",
    ]
    targets += expand(
        f"{EVAL_FIGURES}/{{region}}/{{season}}/{{kind}}.png",
        **each,
        kind=EVAL_FIGURE_KINDS,
    )
    return targets
