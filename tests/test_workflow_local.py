"""The whole workflow on the user's own files (data.source: local), through the report.

The user's files are a real twin run rewritten the way other tools write them: own
variable names, latitude descending, longitude 0..360, 3-hourly fine steps (averaged to
daily means, as the config asks), several
files by glob and an elevation file. Where the fine files reach past data.fine_period,
those days are the beyond truth: scored, never trained on.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from conftest import run_snakemake, tiny_config

from diffscale.core import metrics, transform
from diffscale.evaluation import scores
from diffscale.core import io
from diffscale.evaluation.bicubic import bicubic_record
from diffscale.core.grids import Box
from diffscale.data.sources.synthetic import make_twin

# West of Greenwich, so 0..360 longitudes in the user's files really differ from -180..180.
REGION = {"lat": [33.0, 34.0], "lon": [-65.25, -64.0]}
COARSE = ("2000-01-01", "2000-02-29")
FINE = ("2000-01-15", "2000-02-15")
STEPS_PER_DAY = 8  # 3-hourly


def write_user_file(path: Path, da: xr.DataArray, name: str, steps_per_day: int = 1) -> Path:
    """One of the user's files: variable ``name``, dims (time, latitude, longitude) with latitude
    descending and longitude in 0..360, hours since a reference, ``steps_per_day`` steps a day.

    Sub-daily steps carry a diurnal cycle whose daily mean is exactly the twin's value, so
    the workflow's daily means are the twin's days.
    """
    lat, lon = da.lat.values[::-1], np.mod(da.lon.values, 360.0)
    order = np.argsort(lon)
    values = da.values[:, ::-1][:, :, order] if "time" in da.dims else da.values[::-1][:, order]
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("latitude", lat.size)
        nc.createDimension("longitude", lon.size)
        for dim, v, units in (("latitude", lat, "degrees_north"), ("longitude", lon[order], "degrees_east")):
            c = nc.createVariable(dim, "f8", (dim,))
            c.units = units
            c[:] = v
        if "time" not in da.dims:
            nc.createVariable(name, "f4", ("latitude", "longitude"))[:] = values
            return path
        days = pd.DatetimeIndex(da.time.values)
        hours = (np.asarray((days - pd.Timestamp("1999-12-01")).days)[:, None] * 24
                 + np.arange(steps_per_day)[None, :] * (24 // steps_per_day)).ravel()
        cycle = np.sin(2 * np.pi * np.arange(steps_per_day) / steps_per_day) if steps_per_day > 1 else np.zeros(1)
        nc.createDimension("t", None)
        t = nc.createVariable("t", "f8", ("t",))
        t.units, t.calendar, t.standard_name = "hours since 1999-12-01 00:00:00", "standard", "time"
        t[:] = hours
        v = nc.createVariable(name, "f4", ("t", "latitude", "longitude"), fill_value=np.float32(-9999))
        v[:] = (values[:, None] * (1 + 0.2 * cycle)[None, :, None, None]).reshape(-1, *values.shape[1:])
    return path


def user_files(root: Path, fine_days: tuple[str, str]) -> tuple[Path, dict]:
    """A twin over COARSE written as the user's files; the fine files hold ``fine_days``."""
    twin = root / "twin"
    make_twin([Box.from_config(REGION)], 0.5, COARSE, twin)
    coarse = io.read_record(io.month_files(twin / "coarse", *COARSE), "DUEXTTAU")
    fine = io.read_record(io.month_files(twin / "fine", *COARSE), "DUEXTTAU").sel(time=slice(*fine_days))
    user = root / "user"
    user.mkdir()
    for month, part in coarse.groupby("time.month"):
        write_user_file(user / f"merra_like_{month:02d}.nc", part, "dust_aod")
    half = len(fine.time) // 2  # two fine files, split mid-record
    write_user_file(user / "g5nr_like_a.nc", fine.isel(time=slice(None, half)), "aod_hires", STEPS_PER_DAY)
    write_user_file(user / "g5nr_like_b.nc", fine.isel(time=slice(half, None)), "aod_hires", STEPS_PER_DAY)
    write_user_file(user / "height.nc", io.read_field(twin / "elevation.nc", "elevation", dims=("lat", "lon")), "orog")
    local = {"coarse": {"path": str(user / "merra_like_*.nc"), "variable": "dust_aod"},
             "fine": {"path": str(user / "g5nr_like_*.nc"), "variable": "aod_hires"},
             "elevation": {"path": str(user / "height.nc"), "variable": "orog"}}
    return twin, local


def local_config(local: dict) -> dict:
    config = tiny_config(evaluation={"models": ["bicubic", "diffusion"], "variogram_pairs": 2000})
    # the fine files are 3-hourly: their daily means are asked for
    config["data"] = config["data"] | {"source": "local", "local": local | {"subdaily": "mean"}, "coarse_period": list(COARSE),
                                       "fine_period": list(FINE)}
    config["regions"] = {"solo": REGION}
    return config


def run_to_report(work: Path, config: dict) -> str:
    proc = run_snakemake(work, config)
    run_snakemake(work, config, "--report", str(work / "results/report.html"))
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def beyond_run(tmp_path_factory):
    """Fine files from 10 January to 20 February: five days of truth on each side of the fine record."""
    root = tmp_path_factory.mktemp("local_beyond")
    twin, local = user_files(root, ("2000-01-10", "2000-02-20"))
    work = root / "wf"
    work.mkdir()
    run_to_report(work, local_config(local))
    return twin, work


@pytest.mark.slow
def test_local_files_are_scored_beyond_the_fine_record_where_they_reach(beyond_run):
    twin, work = beyond_run
    summary = pd.read_csv(work / "results/metrics/summary.csv")
    assert set(summary["model"]) == {"bicubic", "diffusion"}  # no oracle without the twin
    assert set(zip(summary["model"], summary["period"])) == {(m, p) for m in ("bicubic", "diffusion")
                                                           for p in ("test", "beyond")}
    truth_days = pd.date_range("2000-01-10", "2000-01-14").append(pd.date_range("2000-02-16", "2000-02-20"))
    beyond = summary[summary["period"] == "beyond"].set_index("model")
    assert (beyond["days"] == len(truth_days)).all()
    assert beyond[["r2", "rmse", "crps"]].notna().all().all()

    # truth.nc holds exactly the days the user's files cover outside the fine period.
    truth = io.read_field(work / "results/split/solo/truth.nc", "DUEXTTAU")
    assert list(pd.DatetimeIndex(truth.time.values)) == list(truth_days)
    days = json.loads((work / "results/split/solo/winter/days.json").read_text())
    assert len(days["beyond"]) == 28  # every beyond day of the season is reconstructed, 10 are scored
    selfcheck = json.loads((work / "results/samples/solo/winter/diffusion/s0/selfcheck.json").read_text())
    assert selfcheck["days"]["beyond_scored"] == len(truth_days) and np.isfinite(selfcheck["beyond"]["rmse"])

    # The bicubic beyond RMSE, computed here from the twin the user's files came from.
    lat, lon = truth.lat.values, truth.lon.values
    fine = io.read_record(io.month_files(twin / "fine", *COARSE), "DUEXTTAU").sel(time=truth_days)
    np.testing.assert_allclose(truth.values, fine.sel(lat=lat, lon=lon).values, rtol=1e-5)
    guess = bicubic_record(io.month_files(twin / "coarse", *COARSE), "DUEXTTAU", [str(d.date()) for d in truth_days],
                           lat, lon, True, 1e-6)["DUEXTTAU"].values[0]
    expected = metrics.rmse(transform.to_metric_space(fine.sel(lat=lat, lon=lon).values, True, 1e-6),
                       transform.to_metric_space(guess, True, 1e-6))
    assert beyond.loc["bicubic", "rmse"] == pytest.approx(expected, rel=1e-4)


@pytest.mark.slow
def test_local_run_has_no_twin_outputs_and_writes_the_report(beyond_run):
    _, work = beyond_run
    results = work / "results"
    assert not (results / "data/raw/twin.json").exists()
    assert not (results / "figures/twin_overview.png").exists()
    assert not (results / "samples/solo/winter/oracle").exists()
    for period in ("test", "beyond"):
        assert (results / f"figures/evaluation/metrics_{period}.png").stat().st_size > 5000
    assert (results / "figures/evaluation/solo/winter/drift.png").stat().st_size > 5000
    html = (results / "report.html").read_text()
    assert "summary.csv" in html and "metrics_beyond.png" in html


@pytest.mark.slow
def test_local_files_within_the_fine_period_give_no_beyond_scores(tmp_path):
    _, local = user_files(tmp_path, FINE)
    work = tmp_path / "wf"
    work.mkdir()
    config = local_config(local)
    # The evaluation's targets with bicubic alone: the method's beyond run is covered above.
    config["evaluation"]["models"] = ["bicubic"]
    proc = run_snakemake(work, config, "-n", "results/metrics/summary.csv")
    assert "truth.nc" not in proc.stdout and "pretrain_encoder" not in proc.stdout
    run_snakemake(work, config, "results/metrics/summary.csv", "results/figures/evaluation/metrics_beyond.png",
                  "results/figures/evaluation/solo/winter/drift.png")
    assert not (work / "results/split/solo/truth.nc").exists()
    summary = pd.read_csv(work / "results/metrics/summary.csv")
    assert list(zip(summary["model"], summary["period"])) == [("bicubic", "test")]
    log = (work / "results/logs/evaluate/solo/winter.log").read_text()
    assert re.search(r"beyond: 28 day\(s\) reconstructed but unscored \(no fine truth", log)
    assert (work / "results/samples/solo/winter/bicubic/beyond.nc").exists()  # reconstructed all the same


@pytest.mark.slow
def test_local_files_without_elevation_run_to_the_report(tmp_path):
    """No data.local.elevation: the user's files (written by xarray, own variable names) have no elevation.
    No elevation file anywhere, models without that channel, and the report and product say so."""
    twin = tmp_path / "twin"
    make_twin([Box.from_config(REGION)], 0.5, COARSE, twin)
    user = tmp_path / "user"
    user.mkdir()
    for field, days, name in (("coarse", COARSE, "aod_coarse"), ("fine", FINE, "aod_fine")):
        record = io.read_record(io.month_files(twin / field, *COARSE), "DUEXTTAU").sel(time=slice(*days))
        record.rename(name).to_netcdf(user / f"{field}.nc")
    local = {field: {"path": str(user / f"{field}.nc"), "variable": f"aod_{field}"} for field in ("coarse", "fine")}
    work = tmp_path / "wf"
    work.mkdir()
    run_to_report(work, local_config(local))
    results = work / "results"
    assert not list(results.rglob("elevation*"))  # no raw, split or log file of it
    assert xr.open_dataset(results / "split/solo/fine.nc").attrs["static_fields"] == ""
    for model in ("diffusion", "transfer_unet"):  # the method and its regression part
        saved = torch.load(results / f"models/solo/winter/{model}.s0.pt", map_location="cpu", weights_only=False)
        assert tuple(saved["spec"]["static"]) == ()
    product = io.open_dataset(results / "downscaled/solo.nc")
    assert product.attrs["static_fields"] == "" and np.isfinite(product["DUEXTTAU"].values).any()
    summary = pd.read_csv(results / "metrics/summary.csv")
    assert set(summary["model"]) == {"bicubic", "diffusion"} and summary["rmse"].notna().all()
    html = (results / "report.html").read_text()
    assert "latitude and longitude (scaled to [-1, 1] over the region) only: no elevation was given" in html
