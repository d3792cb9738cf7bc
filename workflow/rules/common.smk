# Paths and small helpers shared by the rules. No logic of the method lives here.
from diffscale import io as dio
from diffscale.grids import Box

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
    return targets


# ---- regrid, split, domain (issue 4)
REGRID = f"{RESULTS}/regrid"
SPLIT = f"{RESULTS}/split"
DOMAIN = f"{RESULTS}/domain"
# Only the synthetic twin writes fine files outside data.fine_period (see raw_files), and
# there is truth to write only where the coarse period reaches beyond the fine one.
SPLIT_TRUTH = DATA["source"] == "synthetic" and (
    DATA["coarse_period"][0] < DATA["fine_period"][0] or DATA["coarse_period"][1] > DATA["fine_period"][1]
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


def model_targets() -> list[str]:
    return (expand(f"{SAMPLES}/{{region}}/{{season}}/diffusion/{{name}}.nc", region=REGIONS, season=SEASONS, name=["test", "beyond"])
            + expand(f"{RESULTS}/downscaled/{{region}}.nc", region=REGIONS)
            + [f"{RESULTS}/metrics/samplers.csv"])
