# Paths, wildcard constraints, input functions and the final target list. No logic of the
# method lives here, and nothing here imports torch: `snakemake -n` and `--lint` parse
# the workflow without it (the model names come from the torch-free registry).
import glob
import os

from diffscale.core import io as dio
from diffscale.core import registry
from diffscale.core.config import baseline_settings
from diffscale.core.days import beyond_blocks
from diffscale.core.grids import Box

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
BOXES = {name: Box.from_config(box) for name, box in config["regions"].items()}

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


# ---- raw records


def raw_files(field: str) -> list[str]:
    """Monthly files of the coarse or fine record, over the period the source provides.

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
    return [str(p) for p in dio.month_files(f"{RAW}/{field}", *period)]


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
        f["path"], f["variable"], DATA["coarse_period"], DATA["fine_period"]
    )
    return [str(dio.month_file(f"{RAW}/fine", y, m)) for y, m in months]


def local_truth() -> bool:
    """Source local: the user's fine files hold days of coarse_period outside fine_period."""
    from diffscale.data.sources.local import truth_days

    f = DATA["local"]["fine"]
    return (
        len(
            truth_days(
                f["path"], f["variable"], DATA["coarse_period"], DATA["fine_period"]
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
        for name in ("fine", "coarse_on_fine", "elevation")
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


# ---- models, samples


def encoder_input(w) -> dict[str, str]:
    """The pretrained encoder, for the models that condition on it."""
    if registry.entry(w.model).uses_encoder:
        return {"encoder": f"{MODELS}/{w.region}/{w.season}/encoder.pt"}
    return {}


def trained_models() -> list[str]:
    """Every model trained per region and season: the encoder, the diffusion models, the asked baselines."""
    return ["encoder", *DIFFUSION_MODELS, *BASELINE_MODELS]


# The product: {region}.nc, or with product.format zarr the store {region}.zarr.
PRODUCT_FORMAT = config["product"]["format"]
PRODUCT = f"{RESULTS}/downscaled/{{region}}{dio.PRODUCT_FORMATS[PRODUCT_FORMAT]}"


def product_output():
    """The assemble rule's output: a zarr store is a directory."""
    return directory(PRODUCT) if PRODUCT_FORMAT == "zarr" else PRODUCT


def sample_path(region: str, season: str, model: str, period: str) -> str:
    return f"{SAMPLES}/{region}/{season}/{model}/{period}.nc"


# The blocks of each season's beyond run (sampling.block), in order; computed once, since the
# input functions of every block job ask for them (800 jobs in config/paper.yaml).
SEASON_BLOCKS = {
    season: beyond_blocks(DATA["coarse_period"], months, config["sampling"]["block"])
    for season, months in config["seasons"].items()
}


def season_blocks(season: str) -> list[str]:
    return SEASON_BLOCKS[season]


def block_file(w, block: str, suffix: str) -> str:
    return f"{SAMPLES}/{w.region}/{w.season}/{w.model}/beyond/{block}.{suffix}"


def sample_beyond_inputs(w) -> dict[str, str]:
    """A block's inputs: the split files, the model and the state the block before wrote."""
    files = split_inputs(w) | {"model": f"{MODELS}/{w.region}/{w.season}/{w.model}.pt"}
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
        "model": f"{MODELS}/{w.region}/{w.season}/{w.model}.pt",
        "test": sample_path(w.region, w.season, w.model, "test"),
        "blocks": [block_file(w, b, "nc") for b in blocks],
        "states": [block_file(w, b, "state.npz") for b in blocks],
    }


def evaluated_models() -> list[str]:
    """evaluation.models in registry order, and the twin's oracle (the ceiling) when asked."""
    models = registry.order(list(EVAL["models"]))
    if EVAL["oracle"] and DATA["source"] == "synthetic":
        models.append("oracle")
    return models


def evaluate_inputs(w) -> dict[str, str | list[str]]:
    files = {
        "coarse": raw_files("coarse"),
        "fine": f"{SPLIT}/{w.region}/fine.nc",
        "days": f"{SPLIT}/{w.region}/{w.season}/days.json",
    }
    if SPLIT_TRUTH:
        files["truth"] = f"{SPLIT}/{w.region}/truth.nc"
    for model in evaluated_models():
        for period in ("test", "beyond"):
            files[f"{model}_{period}"] = sample_path(w.region, w.season, model, period)
    return files


def evaluation_figure(kind: str, title: str):
    return report(
        f"{EVAL_FIGURES}/{{region}}/{{season}}/{kind}.png",
        caption=f"../report/{kind}.rst",
        category="4. Evaluation",
        subcategory=title,
        labels={"region": "{region}", "season": "{season}"},
    )


# ---- the final targets


def all_targets() -> list[str]:
    each = dict(region=REGIONS, season=SEASONS)
    targets = raw_files("coarse") + raw_files("fine") + [f"{RAW}/elevation.nc"]
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
    targets += expand(
        f"{SAMPLES}/{{region}}/{{season}}/{{model}}/{{name}}.nc",
        **each,
        model=DIFFUSION_MODELS + BASELINE_MODELS,
        name=["test", "beyond"],
    )
    targets += expand(f"{METHOD_FIGURES}/{{region}}/{{season}}/training.png", **each)
    targets += expand(PRODUCT, region=REGIONS)
    targets += [f"{METRICS}/samplers.csv", f"{METRICS}/summary.csv"]
    targets += [f"{METHOD_FIGURES}/members.png"]
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
