"""The trained models over new coarse data (config apply), end to end at test size.

The new data are a twin's coarse days after data.coarse_period, written as a user's file
(own variable name). The product covers exactly those days, from the models the main
run trained; a later entry samples its days and trains nothing.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from cf_checker import assert_compliant, require_checker
from conftest import run_snakemake, tiny_config

from diffscale.core import io
from diffscale.core.grids import Box
from diffscale.data.sources.synthetic import make_twin
from diffscale.method.product import SOURCE_FLAGS

NEW_DAYS = ("2000-12-20", "2001-01-10")  # after coarse_period (2000-01-01..2000-02-29), in the winter season


def new_coarse_file(root: Path, days: tuple[str, str], name: str) -> Path:
    """The twin's coarse days ``days`` as one user file, variable ``dust``."""
    config = tiny_config()
    region = config["regions"]["solo"]
    make_twin([Box.from_config(region)], config["data"]["margin_deg"], days, root / f"twin_{name}")
    coarse = io.read_record(io.month_files(root / f"twin_{name}" / "coarse", *days), "DUEXTTAU").sel(time=slice(*days))
    path = root / f"{name}.nc"
    coarse.rename("dust").to_dataset().to_netcdf(path)
    return path


@pytest.fixture(scope="module")
def applied(tmp_path_factory):
    root = tmp_path_factory.mktemp("apply")
    future = new_coarse_file(root, NEW_DAYS, "future")
    work = root / "wf"
    work.mkdir()
    config = tiny_config(apply={"future": {"coarse": {"path": str(future), "variable": "dust"}}})
    run_snakemake(work, config, "results/downscaled/solo.future.nc")
    return root, work, config


@pytest.mark.slow
def test_the_product_of_new_coarse_data_covers_exactly_its_days(applied):
    root, work, config = applied
    ds = io.open_product(work / "results/downscaled/solo.future.nc")
    days = pd.DatetimeIndex(ds.time.values)
    assert days.equals(pd.date_range(*NEW_DAYS, freq="D"))
    assert (ds.source.values == SOURCE_FLAGS["diffusion_ensemble"]).all()  # every day sampled, none copied
    members = ds["DUEXTTAU_members"]
    assert members.sizes["member"] == config["sampling"]["members_saved"]
    assert np.isfinite(members.values).all() and np.isfinite(ds["DUEXTTAU"].values).all()
    assert (ds["DUEXTTAU_spread"].values > 0).any()  # members differ: an ensemble, not a copy
    np.testing.assert_allclose(ds["DUEXTTAU"].values, members.mean("member").values, rtol=1e-4, atol=1e-7)
    # on the region's fine grid
    fine = io.read_field(work / "results/split/solo/fine.nc", "DUEXTTAU")
    np.testing.assert_array_equal(ds.lat.values, fine.lat.values)
    np.testing.assert_array_equal(ds.lon.values, fine.lon.values)
    # provenance: the input and the trained models
    assert ds.attrs["apply"] == "future" and str(root / "future.nc") in ds.attrs["coarse_input"]
    assert "models/solo/winter/diffusion.s0.pt" in ds.attrs["model_checkpoints"]
    samples = xr.open_dataset(work / "results/apply/future/solo/samples/winter.nc")
    assert samples.attrs["coarse_input"].endswith("results/apply/future/solo/coarse_on_fine.nc")
    samples.close()
    require_checker()
    assert_compliant(work / "results/downscaled/solo.future.nc")


@pytest.mark.slow
def test_a_new_entry_samples_its_days_and_trains_nothing(applied):
    root, work, config = applied
    later = new_coarse_file(root, ("2001-01-05", "2001-01-12"), "later")
    config = config | {"apply": config["apply"] | {"later": {"coarse": {"path": str(later), "variable": "dust"}}}}
    models = sorted((work / "results/models").rglob("*.pt"))
    mtimes = {p: p.stat().st_mtime_ns for p in models}
    plan = run_snakemake(work, config, "-n", "results/downscaled/solo.later.nc").stdout
    jobs = set(re.findall(r"^rule (\w+):", plan, flags=re.MULTILINE))
    assert jobs == {"apply_coarse", "apply_regrid", "apply_sample", "apply_assemble"}, plan[-3000:]
    run_snakemake(work, config, "results/downscaled/solo.later.nc")
    assert {p: p.stat().st_mtime_ns for p in models} == mtimes
    ds = io.open_product(work / "results/downscaled/solo.later.nc")
    assert pd.DatetimeIndex(ds.time.values).equals(pd.date_range("2001-01-05", "2001-01-12", freq="D"))


@pytest.mark.slow
def test_new_data_on_another_grid_fail_naming_the_file_and_leave_no_output(applied):
    root, work, config = applied
    coarse = xr.open_dataset(root / "future.nc")
    bad = root / "other_grid.nc"
    coarse.isel(lat=slice(None, None, 2)).to_netcdf(bad)
    coarse.close()
    config = config | {"apply": {"other": {"coarse": {"path": str(bad), "variable": "dust"}}}}
    proc = run_snakemake(work, config, "results/downscaled/solo.other.nc", check=False)
    assert proc.returncode != 0
    log = (work / "results/logs/apply_coarse/other.log").read_text()
    assert re.search(r"other_grid\.nc: grid spacing 1 x 0\.625 deg \(lat x lon\) differs from the training coarse "
                     r"grid's 0\.5 x 0\.625", log)
    assert not (work / "results/apply/other/coarse.nc").exists()
    assert not (work / "results/downscaled/solo.other.nc").exists()
