"""The twin's references, regenerated: they reproduce the written files; the oracle misses only the
noise, the ceiling also what the coarse record cannot show."""

import numpy as np
import pandas as pd
import pytest
from split_fixture import write_split

from diffscale.core import grids, io, registry
from diffscale.core.days import DaySplit
from diffscale.core.grids import Box, g5nr_grid
from diffscale.core.samples import read_members
from diffscale.data.sources.synthetic import TransportParameters, TwinParameters, make_twin, twin_references
from diffscale.evaluation.references import reference_samples

BOX = Box((33.0, 34.0), (64.0, 65.25))
PERIOD = ["2000-01-01", "2000-02-29"]
CONFIG = {"data": {"coarse_period": PERIOD, "fine_period": ["2000-01-15", "2000-02-15"]},
          "regions": {"solo": {"lat": [33.0, 34.0], "lon": [64.0, 65.25]}}, "seasons": {"winter": [12, 1, 2]}}


def r2(truth: np.ndarray, prediction: np.ndarray) -> float:
    t, p = np.log10(truth), np.log10(prediction)
    return float(1 - np.square(t - p).sum() / np.square(t - t.mean()).sum())


@pytest.mark.parametrize("params", [TwinParameters(), TransportParameters()], ids=["ar1", "transport"])
def test_twin_references_reproduce_the_files_and_the_ceiling_lies_between_bicubic_and_the_oracle(tmp_path, params):
    make_twin([BOX], 0.5, tuple(PERIOD), tmp_path, params=params)
    grid = g5nr_grid(BOX)
    days = pd.date_range(*PERIOD).strftime("%Y-%m-%d").tolist()
    out = twin_references([BOX], 0.5, tuple(PERIOD), params,
                          {"a": (grid.lat, grid.lon, days), "none": (grid.lat, grid.lon, [])})
    fine, oracle, ceiling = out["a"]["fine"], out["a"]["oracle"], out["a"]["ceiling"]
    assert oracle.shape == ceiling.shape == fine.shape == (len(days), *grid.shape)
    written = io.read_record(io.month_files(tmp_path / "fine", *PERIOD), "DUEXTTAU")
    np.testing.assert_array_equal(fine, written.sel(lat=grid.lat, lon=grid.lon, time=pd.to_datetime(days)).values)
    noise = np.log10(fine) - np.log10(oracle)
    assert noise.std() == pytest.approx(params.noise.std, rel=0.15)
    # on the twin's own data: bicubic of the coarse record < ceiling < oracle
    coarse = io.read_record(io.month_files(tmp_path / "coarse", *PERIOD), "DUEXTTAU")
    interpolated = 10.0 ** grids.bicubic(np.log10(coarse.values.astype(np.float64)), coarse.lat.values,
                                         coarse.lon.values, grid.lat, grid.lon)
    assert r2(fine, interpolated) < r2(fine, ceiling) < r2(fine, oracle)
    assert out["none"]["oracle"].shape == out["none"]["ceiling"].shape == (0, *grid.shape)


def test_twin_references_refuse_days_outside_the_period_and_foreign_grids():
    grid = g5nr_grid(BOX)
    with pytest.raises(ValueError, match="inside the twin's period"):
        twin_references([BOX], 0.5, ("2000-01-01", "2000-01-31"), TwinParameters(), {"a": (grid.lat, grid.lon, ["2000-02-01"])})
    with pytest.raises(ValueError, match="not part of the twin's fine grid"):
        twin_references([BOX], 0.5, ("2000-01-01", "2000-01-31"), TwinParameters(), {"a": (grid.lat + 0.01, grid.lon, ["2000-01-02"])})


def write_references(root, fine_file):
    outputs = {name: [root / f"{name}/test.nc", root / f"{name}/beyond.nc"] for name in ("oracle", "ceiling")}
    reference_samples(root / "raw/twin.json", CONFIG["regions"], 0.5, PERIOD, regions=["solo"], seasons=["winter"],
                   days_files=[root / "split/solo/winter/days.json"], fine_files=[fine_file],
                   truth_files=[root / "split/solo/truth.nc"], truth_index=[0], variable="DUEXTTAU",
                   attrs={"units": "1", "long_name": "dust extinction"}, outputs=outputs)
    return outputs


def test_reference_samples_write_one_member_per_period_and_check_the_split_files(tmp_path):
    make_twin([BOX], 0.5, tuple(PERIOD), tmp_path / "raw")
    write_split(tmp_path / "raw", tmp_path / "split", CONFIG)
    days = DaySplit.from_json(tmp_path / "split/solo/winter/days.json")
    outputs = write_references(tmp_path, tmp_path / "split/solo/fine.nc")
    # written a month at a time, the files hold what the twin gives for the same days, to the bit
    fine = io.read_field(tmp_path / "split/solo/fine.nc", "DUEXTTAU")
    held = twin_references([BOX], 0.5, tuple(PERIOD), TwinParameters(),
                           {p: (fine.lat.values, fine.lon.values, list(getattr(days, p).strftime("%Y-%m-%d")))
                            for p in ("test", "beyond")})
    for name, paths in outputs.items():
        for period, path in zip(("test", "beyond"), paths):
            assert np.array_equal(read_members(path, "DUEXTTAU").values[0], held[period][name])
    for name, (test, beyond) in outputs.items():
        for path, times, truth in ((test, days.test, "fine"), (beyond, days.beyond, "truth")):
            da = read_members(path, "DUEXTTAU", times)
            assert da.sizes["member"] == 1 and da.attrs["long_name"] == "dust extinction"
            with io.open_dataset(path) as ds:
                assert ds.attrs["model"] == name and ds.attrs["method"] == registry.entry(name).description
            written = io.read_field(tmp_path / f"split/solo/{truth}.nc", "DUEXTTAU").sel(time=times).values
            miss = np.log10(written) - np.log10(da.values[0])
            if name == "oracle":
                assert miss.std() == pytest.approx(TwinParameters().noise.std, rel=0.3)
            else:  # the ceiling also misses the AR(1) anomaly
                assert miss.std() == pytest.approx(np.hypot(TwinParameters().noise.std, TwinParameters().anomaly.std),
                                                   rel=0.3)
    # A fine record that the twin does not reproduce has no oracle.
    fine = io.read_field(tmp_path / "split/solo/fine.nc", "DUEXTTAU")
    other = io.write_netcdf(io.field_dataset(fine.values * 1.01, pd.DatetimeIndex(fine.time.values), fine.lat.values,
                                             fine.lon.values, "DUEXTTAU", {"units": "1"}), tmp_path / "other.nc")
    for paths in outputs.values():
        for path in paths:
            path.unlink()
    with pytest.raises(io.DataValidationError, match="other.nc.*does not reproduce"):
        write_references(tmp_path, other)
    assert not any(path.exists() for paths in outputs.values() for path in paths)  # nothing half-written
