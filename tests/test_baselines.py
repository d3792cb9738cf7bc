"""The bicubic baseline: exact on cubic fields, and its samples follow the sample contract."""

import numpy as np
import pytest
from split_fixture import write_split

from diffscale.core import io
from diffscale.core.days import DaySplit
from diffscale.core.grids import Box, bicubic, g5nr_grid, merra2_grid
from diffscale.core.samples import read_members
from diffscale.data.sources.synthetic import make_twin
from diffscale.evaluation.bicubic import bicubic_record, bicubic_samples


def test_bicubic_reproduces_a_cubic_surface_and_rejects_tiny_grids():
    coarse = merra2_grid(Box((30.0, 34.0), (60.0, 65.0)))
    fine = g5nr_grid(Box((31.0, 33.0), (61.0, 64.0)))
    f = lambda la, lo: 0.01 * (la - 32) ** 3 - 0.2 * (lo - 62) ** 2 * (la - 31) + lo  # noqa: E731
    values = f(coarse.lat[:, None], coarse.lon[None, :])[None]
    out = bicubic(values, coarse.lat, coarse.lon, fine.lat, fine.lon)
    assert out.shape == (1, *fine.shape)
    np.testing.assert_allclose(out[0], f(fine.lat[:, None], fine.lon[None, :]), atol=1e-9)
    with pytest.raises(ValueError, match="4 x 4"):
        bicubic(values[:, :3, :3], coarse.lat[:3], coarse.lon[:3], fine.lat, fine.lon)


@pytest.fixture(scope="module")
def twin(tmp_path_factory):
    root = tmp_path_factory.mktemp("twin")
    config = {"data": {"coarse_period": ["2000-01-01", "2000-02-29"], "fine_period": ["2000-01-15", "2000-02-15"]},
              "regions": {"solo": {"lat": [33.0, 34.0], "lon": [64.0, 65.25]}}, "seasons": {"winter": [12, 1, 2]}}
    scores = make_twin([Box((33.0, 34.0), (64.0, 65.25))], 0.5, ("2000-01-01", "2000-02-29"), root / "raw")
    write_split(root / "raw", root / "split", config)
    return root, scores


def test_bicubic_record_writes_the_sample_contract_and_matches_the_twin_reference(twin):
    root, scores = twin
    days = DaySplit.from_json(root / "split/solo/winter/days.json")
    fine = io.read_field(root / "split/solo/fine.nc", "DUEXTTAU")
    coarse_files = io.month_files(root / "raw/coarse", "2000-01-01", "2000-02-29")
    ds = bicubic_record(coarse_files, "DUEXTTAU", days.beyond, fine.lat.values, fine.lon.values, True, 1e-6)
    path = io.write_netcdf(ds, root / "beyond.nc")
    da = read_members(path, "DUEXTTAU", days.beyond)
    assert da.dims == ("member", "time", "lat", "lon") and da.sizes["member"] == 1
    assert da.attrs["units"] == "1" and float(da.min()) > 0
    # Against the twin's own bicubic (on the full coarse grid): the same R2 up to the crop and float32.
    truth = np.log10(io.read_field(root / "split/solo/truth.nc", "DUEXTTAU").sel(time=days.beyond).values)
    pred = np.log10(da.values[0])
    r2 = 1 - np.sum((truth - pred) ** 2) / np.sum((truth - truth.mean()) ** 2)
    assert r2 == pytest.approx(scores.bicubic_r2, abs=0.1)
    with pytest.raises(io.DataValidationError, match="expected the"):
        read_members(path, "DUEXTTAU", days.beyond[1:])


def test_no_days_give_an_empty_file_of_the_contract(twin):
    root, _ = twin
    fine = io.read_field(root / "split/solo/fine.nc", "DUEXTTAU")
    files = io.month_files(root / "raw/coarse", "2000-01-01", "2000-02-29")
    ds = bicubic_record(files, "DUEXTTAU", [], fine.lat.values, fine.lon.values, True, 1e-6)
    path = io.write_netcdf(ds, root / "empty.nc")
    with io.open_dataset(path) as back:
        assert back["DUEXTTAU"].dims == ("member", "time", "lat", "lon") and back.sizes["time"] == 0


def test_bicubic_record_names_a_missing_day(twin):
    root, _ = twin
    fine = io.read_field(root / "split/solo/fine.nc", "DUEXTTAU")
    files = io.month_files(root / "raw/coarse", "2000-01-01", "2000-01-31")
    with pytest.raises(io.DataValidationError, match="lacks 1 requested day"):
        bicubic_record(files, "DUEXTTAU", ["2000-01-31", "2000-02-01"], fine.lat.values, fine.lon.values, True, 1e-6)


def test_bicubic_samples_write_each_period_of_the_day_lists(twin):
    root, _ = twin
    days = DaySplit.from_json(root / "split/solo/winter/days.json")
    files = io.month_files(root / "raw/coarse", "2000-01-01", "2000-02-29")
    outs = {"test": root / "rule/test.nc", "beyond": root / "rule/beyond.nc"}
    bicubic_samples(files, root / "split/solo/fine.nc", root / "split/solo/winter/days.json", "DUEXTTAU", True, 1e-6, outs)
    fine = io.read_field(root / "split/solo/fine.nc", "DUEXTTAU")
    for period, path in outs.items():
        da = read_members(path, "DUEXTTAU", getattr(days, period))
        expected = bicubic_record(files, "DUEXTTAU", getattr(days, period), fine.lat.values, fine.lon.values, True, 1e-6)
        np.testing.assert_array_equal(da.values, expected["DUEXTTAU"].values)
        assert da.attrs["units"] == "1"
