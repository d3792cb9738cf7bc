import datetime as dt
import re
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, run_snakemake, tiny_config
from diffscale.core.config import (KEYS_MARKER, ConfigError, load_config, schema_markdown, static_fields,
                                   validate_config)


def test_defaults_are_filled_in_and_dates_become_iso_strings():
    cfg = validate_config({
        "data": {"coarse_period": [dt.date(2000, 1, 1), dt.date(2000, 12, 31)], "fine_period": ["2000-03-01", "2000-05-31"]},
        "regions": {"r": {"lat": [30, 31], "lon": [60, 61]}},
        "seasons": {"MAM": [3, 4, 5]},
    })
    assert cfg["data"]["coarse_period"] == ["2000-01-01", "2000-12-31"]
    assert cfg["data"]["source"] == "synthetic"
    assert cfg["split"]["buffer_days"] == 45
    assert cfg["transform"] == {"log10": True, "floor": 1e-6}
    assert cfg["data"]["synthetic"]["seed"] == 20051515  # nested defaults too


@pytest.mark.parametrize("patch, key", [
    ({"split": {"buffer_days": -3}}, "split.buffer_days"),
    ({"split": {"buffer_dys": 3}}, "split.buffer_dys"),
    ({"data": {"source": "ftp"}}, "data.source"),
    ({"data": {"coarse_period": ["2000-01-01"]}}, "data.coarse_period"),
    ({"data": {"fine_period": ["2000-13-01", "2000-14-01"]}}, "data.fine_period"),
    ({"regions": {"r": {"lat": [31, 30], "lon": [60, 61]}}}, "regions.r.lat"),
    ({"regions": {"r": {"lat": [30, 31]}}}, "regions.r.lon"),
    ({"regions": {"r": {"lat": [30, 31], "lon": [60, 60]}}}, "regions.r.lon"),
    ({"regions": {"r": {"lat": [30, 31], "lon": [60, 370]}}}, "regions.r.lon.1"),
    ({"data": {"source": "nasa"}, "regions": {"r": {"lat": [30, 31], "lon": [179, -179]}}}, "regions"),
    ({"seasons": {"MAM": [3, 4, 13]}}, "seasons.MAM.2"),
    ({"seasons": {"A": [1, 2], "B": [2, 3]}}, "seasons.B"),
    ({"data": {"fine_period": ["1999-01-01", "2000-02-01"]}}, "data.fine_period"),
    ({"encoder": {"history": "forty"}}, "encoder.history"),
    ({"data": {"source": "local"}}, "data.local.coarse"),
    ({"transform": {"log10": True, "floor": 0}}, "transform.floor"),
])
def test_schema_errors_name_the_key(patch, key):
    cfg = {
        "data": {"coarse_period": ["2000-01-01", "2000-12-31"], "fine_period": ["2000-03-01", "2000-05-31"]},
        "regions": {"r": {"lat": [30, 31], "lon": [60, 61]}},
        "seasons": {"MAM": [3, 4, 5]},
    }
    for section, value in patch.items():
        if section == "data":
            cfg[section] = cfg[section] | value
        else:
            cfg[section] = value
    with pytest.raises(ConfigError, match=r"config key " + re.escape(key) + r"\b"):
        validate_config(cfg)


def test_missing_regions_is_named():
    with pytest.raises(ConfigError, match=r"config key regions: required but missing"):
        validate_config({"data": {}, "seasons": {"A": [1]}})


def test_shipped_configs_are_valid():
    demo = load_config(ROOT / "config" / "config.yaml")
    paper = load_config(ROOT / "config" / "paper.yaml")
    assert demo["data"]["source"] == "synthetic" and len(demo["regions"]) >= 1 and len(demo["seasons"]) >= 2
    assert paper["data"]["source"] == "nasa"
    assert paper["data"]["coarse_period"] == ["2000-01-01", "2024-12-31"]
    assert paper["data"]["fine_period"] == ["2005-05-15", "2007-06-16"]
    assert paper["regions"]["area0"] == {"lat": [29.223, 43.406], "lon": [60.308, 80.427]}
    assert paper["regions"]["area1"] == {"lat": [10.650, 37.643], "lon": [34.275, 56.601]}
    assert set(paper["seasons"]) == {"DJF", "MAM", "JJA", "SON"}


def test_the_ablation_overlay_adds_only_the_ablation_model():
    from snakemake.utils import update_config

    overlay = yaml.safe_load((ROOT / "config" / "ablation.yaml").read_text())
    assert set(overlay) == {"evaluation"} and set(overlay["evaluation"]) == {"models"}
    for name in ("config.yaml", "paper.yaml"):
        base = yaml.safe_load((ROOT / "config" / name).read_text())
        merged = yaml.safe_load((ROOT / "config" / name).read_text())
        update_config(merged, overlay)  # what Snakemake does with several --configfile files
        cfg = validate_config(merged)
        plain = validate_config(base)
        assert cfg["evaluation"]["models"] == [*plain["evaluation"]["models"], "diffusion_no_transfer",
                                                "diffusion_from_coarse"]
        assert cfg["diffusion"] == plain["diffusion"] and cfg["regions"] == plain["regions"]


def test_the_seeds_overlay_sets_three_seeds_and_seed_k_adds_k():
    from snakemake.utils import update_config

    from diffscale.core.config import with_seed

    overlay = yaml.safe_load((ROOT / "config" / "seeds.yaml").read_text())
    assert overlay == {"evaluation": {"seeds": 3}}
    merged = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    update_config(merged, overlay)
    cfg = validate_config(merged)
    assert cfg["evaluation"]["seeds"] == 3 and validate_config(tiny_config())["evaluation"]["seeds"] == 1
    # Seed 0 is the section as configured (a one-seed run is unchanged); seed k adds k.
    assert with_seed(cfg["diffusion"], 0) == cfg["diffusion"]
    assert with_seed(cfg["sampling"], 2) == {**cfg["sampling"], "seed": cfg["sampling"]["seed"] + 2}
    with pytest.raises(ConfigError, match="evaluation.seeds: 0 is less than the minimum of 1"):
        validate_config(tiny_config(evaluation={"seeds": 0}))


def test_the_removed_use_encoder_key_is_named():
    # the model name decides now (diffusion / diffusion_no_transfer)
    with pytest.raises(ConfigError, match=r"config key diffusion.use_encoder: unknown key"):
        validate_config(tiny_config(diffusion={"use_encoder": False}))


def test_elevation_is_optional_for_local_files_and_a_bad_path_names_its_key(tmp_path):
    for name in ("coarse.nc", "fine.nc", "dem.nc"):
        (tmp_path / name).touch()
    local = {f: {"path": str(tmp_path / f"{f}.nc"), "variable": "v"} for f in ("coarse", "fine")}
    cfg = tiny_config()
    cfg["data"] |= {"source": "local", "local": local}
    assert static_fields(validate_config(cfg)) == []  # absent: no elevation channel
    cfg["data"]["local"] = local | {"elevation": {"path": str(tmp_path / "dem.nc"), "variable": "z"}}
    assert static_fields(validate_config(cfg)) == ["elevation"]
    assert static_fields(validate_config(tiny_config())) == ["elevation"]  # the twin always has it
    cfg["data"]["local"]["elevation"]["path"] = str(tmp_path / "dme.nc")
    with pytest.raises(ConfigError, match=r"config key data.local.elevation.path: no file matches '.*dme.nc'"):
        validate_config(cfg)
    cfg["data"]["local"]["elevation"] = {"path": str(tmp_path / "dem.nc")}
    with pytest.raises(ConfigError, match=r"config key data.local.elevation.variable: required but missing"):
        validate_config(cfg)


def test_config_readme_documents_every_schema_key():
    """The key table in config/README.md is the one generated from the schema (make config-docs)."""
    readme = (ROOT / "config" / "README.md").read_text()
    assert KEYS_MARKER in readme
    assert readme.split(KEYS_MARKER, 1)[1].strip() == schema_markdown().strip(), "run `make config-docs`"
    for key in ("data.source", "data.local.fine.path", "regions.<name>.lat", "split.buffer_days", "encoder.history"):
        assert f"| `{key}` |" in readme


@pytest.mark.slow
def test_snakemake_stops_on_a_bad_config_before_any_job(tmp_path):
    bad = tiny_config(split={"buffer_days": -3})
    proc = run_snakemake(tmp_path, bad, "-n", check=False)
    assert proc.returncode != 0
    assert "config key split.buffer_days" in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_user_configfile_replaces_the_demo_regions_and_seasons(tmp_path):
    """Snakemake merges config dicts recursively: the demo must not leak into a user's run."""
    run_snakemake(tmp_path, tiny_config())
    import xarray as xr

    fine = xr.open_dataset(tmp_path / "results/data/raw/fine/2000-01.nc")
    # the twin covers the user's one region (+0.5 deg margin), not the demo's 64..69 E span
    assert float(fine.lon.max()) < 66.0 and float(fine.lat.max()) < 35.0
    assert sorted(p.name for p in (tmp_path / "results/data/raw/fine").iterdir()) == ["2000-01.nc", "2000-02.nc"]
