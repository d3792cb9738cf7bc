"""The real Snakemake chain make_synthetic -> regrid -> split -> domain on a tiny config."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from diffscale.core import io as dio
from diffscale.core.days import DaySplit
from diffscale.core.grids import Box, grid_of
from diffscale.core.transform import Scaler
from diffscale.data.regrid import Regridder

ROOT = Path(__file__).resolve().parents[1]

CONFIG = {
    "data": {"source": "synthetic", "coarse_period": ["2000-01-01", "2000-03-31"],
             "fine_period": ["2000-01-15", "2000-03-10"], "margin_deg": 1.0},
    "regions": {"solo": {"lat": [33.0, 34.0], "lon": [64.0, 65.25]}},
    "seasons": {"winter": [1, 2]},
    "split": {"buffer_days": 5, "test_fraction": 0.1, "seed": 7},
    "encoder": {"history": 4},
    "domain": {"patch_size": 4, "projections": 8, "seeds": [0, 1], "max_patches": 100},
}


def run(workdir: Path, *targets: str) -> subprocess.CompletedProcess:
    (workdir / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    # Targets first: --configfile takes several values and would swallow them.
    cmd = [sys.executable, "-m", "snakemake", *targets, "--snakefile", str(ROOT / "Snakefile"),
           "--directory", str(workdir), "--cores", "2", "--configfile", str(workdir / "config.yaml")]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True)
    assert proc.returncode == 0, f"snakemake failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc


@pytest.mark.slow
def test_regrid_split_domain_chain(tmp_path):
    split = "results/split/solo"
    run(tmp_path, f"{split}/truth.nc", f"{split}/winter/days.json", "results/domain/wasserstein.csv",
        "results/regrid/solo/fine_on_coarse/2000-03.nc")
    raw = tmp_path / "results/data/raw"

    # Region files: periods as the contract says, the coarse record regridded bilinearly.
    fine = dio.read_field(tmp_path / split / "fine.nc", "DUEXTTAU")
    times = pd.DatetimeIndex(fine.time.values)
    assert times[0] == pd.Timestamp("2000-01-15") and times[-1] == pd.Timestamp("2000-03-10")
    region = grid_of(dio.read_field(raw / "fine/2000-01.nc", "DUEXTTAU")).crop(Box((33.0, 34.0), (64.0, 65.25)))
    np.testing.assert_allclose(fine.lat.values, region.lat)
    np.testing.assert_allclose(fine.lon.values, region.lon)
    cof = dio.read_field(tmp_path / split / "coarse_on_fine.nc", "DUEXTTAU")
    assert cof.sizes["time"] == 91 and cof.shape[1:] == fine.shape[1:]
    coarse = dio.read_record(sorted((raw / "coarse").glob("*.nc")), "DUEXTTAU")
    expected = Regridder(grid_of(coarse), region, "bilinear", backend="builtin")(coarse)
    np.testing.assert_allclose(cof.values, expected.values, rtol=1e-6)  # float32 on disk
    truth = dio.read_field(tmp_path / split / "truth.nc", "DUEXTTAU")
    ttimes = pd.DatetimeIndex(truth.time.values)
    assert ttimes.size == 91 - times.size and not ttimes.isin(times).any()
    assert dio.read_field(tmp_path / split / "elevation.nc", "elevation", dims=("lat", "lon")).shape == fine.shape[1:]

    # Day lists and the scaler: no leakage, fitted on the training days only.
    days = DaySplit.from_json(tmp_path / split / "winter/days.json")
    assert days.core.equals(pd.date_range("2000-01-15", "2000-02-29"))
    assert not set(days.train) & set(days.test)
    for day in days.train:
        assert not any(day - pd.Timedelta(days=k) in set(days.test) for k in range(1, 5))
    assert days.beyond.equals(pd.date_range("2000-01-01", "2000-01-14"))
    scaler = Scaler.from_json(tmp_path / split / "winter/scaler.json")
    assert scaler == Scaler.fit(fine.sel(time=days.train).values, True, 1e-6)

    # The fine record on the coarse grid, with its provenance.
    foc = dio.open_dataset(tmp_path / "results/regrid/solo/fine_on_coarse/2000-03.nc")
    assert foc.attrs["regrid_method"] == "conservative" and foc.attrs["regrid_backend"] in ("builtin", "xesmf")
    assert list((tmp_path / "resources/weights").glob("conservative_*.nc"))

    # The domain table: one row for the season and one for all days, finite distances.
    table = pd.read_csv(tmp_path / "results/domain/wasserstein.csv")
    assert list(table.season) == ["winter", "all"] and (table.region == "solo").all()
    assert table.loc[0, "days"] == 46 and table.loc[1, "days"] == times.size
    assert np.isfinite(table[["mean", "median", "p10", "p90", "pooled", "sliced_mean", "sliced_std"]].values).all()
    assert (tmp_path / "results/domain/solo/per_day.png").stat().st_size > 0
    assert json.loads((tmp_path / split / "winter/days.json").read_text())["test"]

    # Every heavy job of the chain wrote its Snakemake benchmark file: wall time and peak memory.
    bench = tmp_path / "results/benchmarks"
    for rule, name in (("regrid", "solo"), ("regrid_fine_to_coarse", "solo"), ("split_region", "solo"),
                       ("split", "solo_winter"), ("domain", "solo")):
        record = pd.read_csv(bench / rule / f"{name}.tsv", sep="\t")
        assert {"s", "max_rss"} <= set(record.columns) and len(record) == 1, rule
        assert record.loc[0, "s"] > 0 and record.loc[0, "max_rss"] > 0, rule
