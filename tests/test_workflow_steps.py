"""The whole workflow on the user's monthly and annual files (data.source: local, data.step month / year).

The files are written through xarray as climate tools write them: a month stamped mid-month,
a year stamped mid-year, a model calendar for the annual run. The field is a smooth large
scale, which the coarse file holds as cell means, plus fine detail that changes from step
to step and persists over a few steps, so the history carries information.
"""

from __future__ import annotations

import json
from pathlib import Path

import cftime
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from conftest import run_snakemake, tiny_config

from diffscale.core import io, steps

REGION = {"lat": [33.0, 34.0], "lon": [-65.25, -64.0]}
FINE_LAT, FINE_LON = np.arange(32.03125, 35.0, 0.0625), np.arange(-65.96875, -62.5, 0.0625)
COARSE_LAT, COARSE_LON = np.arange(31.25, 36.0, 0.5), np.arange(-67.25, -62.0, 0.5)


def fine_field(times: pd.DatetimeIndex, seed: int = 0) -> np.ndarray:
    """(T, lat, lon) positive values: a seasonal large scale and AR(1) fine detail."""
    rng = np.random.default_rng(seed)
    n = len(times)
    a = np.zeros(n)
    for t in range(1, n):
        a[t] = 0.7 * a[t - 1] + rng.normal(0, 0.3)
    y, x = np.meshgrid(FINE_LAT, FINE_LON, indexing="ij")
    phase = 2 * np.pi * (times.month.values - 1) / 12
    large = 0.3 * np.sin(phase)[:, None, None] + 0.2 * np.sin(y / 1.5 + x / 2.0)[None]
    detail = a[:, None, None] * np.sin(3 * np.pi * y)[None] * np.cos(3 * np.pi * x)[None] * 0.2
    return (0.2 * np.exp(large + detail)).astype(np.float32)


def coarse_of(fine: np.ndarray) -> np.ndarray:
    """Means of the fine cells in each 0.5-degree cell (8 x 8 fine cells), NaN-free over the fine extent."""
    out = np.empty((fine.shape[0], COARSE_LAT.size, COARSE_LON.size), np.float32)
    for i, la in enumerate(COARSE_LAT):
        for j, lo in enumerate(COARSE_LON):
            ys = np.abs(FINE_LAT - la) < 0.25
            xs = np.abs(FINE_LON - lo) < 0.25
            # cells past the fine extent copy the nearest fine cells' mean
            ys = ys if ys.any() else np.abs(FINE_LAT - la) == np.abs(FINE_LAT - la).min()
            xs = xs if xs.any() else np.abs(FINE_LON - lo) == np.abs(FINE_LON - lo).min()
            out[:, i, j] = fine[:, ys][:, :, xs].mean(axis=(1, 2))
    return out


def write(path: Path, name: str, stamps, values: np.ndarray, lat, lon, calendar: str = "standard") -> Path:
    times = xr.coding.cftimeindex.CFTimeIndex([cftime.datetime(t.year, t.month, t.day, calendar=calendar) for t in stamps])
    ds = xr.Dataset({name: (("time", "latitude", "longitude"), values)},
                    coords={"time": times, "latitude": ("latitude", lat, {"units": "degrees_north"}),
                            "longitude": ("longitude", lon, {"units": "degrees_east"})})
    ds.to_netcdf(path, encoding={"time": {"units": "days since 1850-01-01", "calendar": calendar}})
    return path


def user_files(root: Path, starts: pd.DatetimeIndex, fine_span: tuple[str, str], stamp_offset: pd.Timedelta,
               calendar: str) -> dict:
    """The user's coarse file over ``starts``, fine files over ``fine_span`` and an elevation file."""
    user = root / "user"
    user.mkdir()
    fine = fine_field(starts)
    stamps = starts + stamp_offset
    write(user / "coarse.nc", "tos_coarse", stamps, coarse_of(fine), COARSE_LAT, COARSE_LON, calendar)
    keep = (starts >= pd.Timestamp(fine_span[0])) & (starts <= pd.Timestamp(fine_span[1]))
    half = int(keep.sum()) // 2
    idx = np.flatnonzero(keep)
    for part, sel in (("a", idx[:half]), ("b", idx[half:])):  # two fine files, joined by glob
        write(user / f"fine_{part}.nc", "tos", stamps[sel], fine[sel], FINE_LAT, FINE_LON, calendar)
    xr.Dataset({"orog": (("lat", "lon"), np.zeros((FINE_LAT.size, FINE_LON.size)))},
               coords={"lat": FINE_LAT, "lon": FINE_LON}).to_netcdf(user / "orog.nc")
    return {"coarse": {"path": str(user / "coarse.nc"), "variable": "tos_coarse"},
            "fine": {"path": str(user / "fine_*.nc"), "variable": "tos"},
            "elevation": {"path": str(user / "orog.nc"), "variable": "orog"}}


def step_config(local: dict, step: str, coarse: tuple[str, str], fine: tuple[str, str], seasons: dict,
                block: int) -> dict:
    config = tiny_config(evaluation={"models": ["bicubic", "diffusion"], "variogram_pairs": 2000,
                                     "acf_lags": 5, "persistence_lags": 3})
    config["data"] = config["data"] | {"source": "local", "local": local, "step": step, "coarse_period": list(coarse),
                                       "fine_period": list(fine)}
    config["regions"] = {"solo": REGION}
    config["seasons"] = seasons
    config["split"] = {"test_fraction": 0.15, "val_fraction": 0.1}
    config["sampling"] = config["sampling"] | {"block": block}
    return config


def check_product(work: Path, step: str, coarse: tuple[str, str]) -> xr.Dataset:
    """The product: one value per step of the coarse period, stamped at its start, bounds one step long."""
    with xr.open_dataset(work / "results/downscaled/solo.nc") as ds:
        ds = ds.load()
    times = pd.DatetimeIndex(ds.time.values)
    assert list(times) == list(steps.in_period(*coarse, step))
    np.testing.assert_array_equal(pd.DatetimeIndex(ds.time_bnds.values[:, 1]), steps.shift(times, 1, step))
    return ds


@pytest.mark.slow
def test_monthly_files_run_end_to_end(tmp_path):
    """Monthly steps, stamped mid-month; one winter season taken from the steps' months; fine
    files reach a year before the fine period, so those months are scored beyond it."""
    coarse, fine = ("1995-01-01", "2004-12-31"), ("2001-01-01", "2004-12-31")
    local = user_files(tmp_path, steps.in_period(*coarse, "month"), ("2000-01-01", "2004-12-31"),
                       pd.Timedelta(days=14), "standard")
    work = tmp_path / "wf"
    work.mkdir()
    run_snakemake(work, step_config(local, "month", coarse, fine, {"winter": [12, 1, 2]}, block=60))
    check_monthly_run(work, coarse)


def check_monthly_run(work: Path, coarse: tuple[str, str]) -> None:
    days = json.loads((work / "results/split/solo/winter/days.json").read_text())
    core = pd.to_datetime(days["core"])
    assert set(core.month) == {12, 1, 2} and (core.day == 1).all() and len(core) == 12
    assert len(days["beyond"]) == 18  # the winter months of 1995..2000
    product = check_product(work, "month", coarse)
    beyond = pd.DatetimeIndex(days["beyond"])
    assert np.isfinite(product["DUEXTTAU"].sel(time=beyond).values).all()
    assert np.isnan(product["DUEXTTAU"].sel(time="1996-06-01").values).all()  # no season, no model

    summary = pd.read_csv(work / "results/metrics/summary.csv").set_index(["model", "period"])
    assert summary.loc[("diffusion", "beyond"), "days"] == 3  # Jan, Feb, Dec 2000: the truth the fine files hold
    assert np.isfinite(summary.loc[("diffusion", "test"), ["rmse", "crps"]].astype(float)).all()

    annual = xr.open_dataset(work / "results/downscaled/solo.annual.nc")
    assert list(pd.DatetimeIndex(annual.time.values).year) == list(range(1995, 2005))
    # the annual mean of a monthly record is the mean of its (winter) months
    members = product["DUEXTTAU_members"].sel(time="1997")
    np.testing.assert_allclose(annual["DUEXTTAU_members"].sel(time="1997-01-01").values,
                               members.mean("time", skipna=True).values, rtol=1e-5)
    assert (work / "results/figures/product/solo_monthly.png").stat().st_size > 0


@pytest.mark.slow
def test_annual_files_run_end_to_end(tmp_path):
    """Annual steps in a noleap calendar, stamped mid-year; the one season ALL; history in years."""
    coarse, fine = ("1941-01-01", "2000-12-31"), ("1961-01-01", "2000-12-31")
    local = user_files(tmp_path, steps.in_period(*coarse, "year"), fine, pd.Timedelta(days=182), "noleap")
    work = tmp_path / "wf"
    work.mkdir()
    run_snakemake(work, step_config(local, "year", coarse, fine, {"ALL": list(range(1, 13))}, block=30))
    check_annual_run(work, coarse)


def check_annual_run(work: Path, coarse: tuple[str, str]) -> None:

    assert sorted(p.name for p in (work / "results/data/raw/fine").glob("*.nc"))[:2] == ["1961-01.nc", "1962-01.nc"]
    days = json.loads((work / "results/split/solo/ALL/days.json").read_text())
    assert len(days["core"]) == 40 and len(days["beyond"]) == 20
    check_product(work, "year", coarse)
    summary = pd.read_csv(work / "results/metrics/summary.csv").set_index(["model", "period"])
    assert np.isfinite(summary.loc[("diffusion", "test"), ["rmse", "crps"]].astype(float)).all()
    # an annual record has annual aggregates only, and their figure
    assert (work / "results/downscaled/solo.annual.nc").exists()
    assert not (work / "results/downscaled/solo.monthly.nc").exists()
    assert (work / "results/figures/product/solo_annual.png").stat().st_size > 0
