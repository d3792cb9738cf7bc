"""New coarse data for the trained models (config apply): the checks against the training record, on real files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from conftest import tiny_config

from diffscale.core import io
from diffscale.core.config import ConfigError, validate_config
from diffscale.core.grids import Box
from diffscale.data.apply import read_new_coarse, write_new_coarse
from diffscale.data.sources.synthetic import make_twin

REGION = {"lat": [33.0, 34.0], "lon": [64.0, 65.25]}
MARGIN = 0.5
BOXES = [Box.from_config(REGION)]


@pytest.fixture(scope="module")
def twin(tmp_path_factory) -> tuple[Path, xr.DataArray]:
    """A twin month (the training record's raw coarse file) and its coarse field as a user would have it."""
    root = tmp_path_factory.mktemp("twin")
    make_twin(BOXES, MARGIN, ("2000-01-01", "2000-01-20"), root)
    training = io.month_files(root / "coarse", "2000-01-01", "2000-01-20")[0]
    return training, io.read_field(training, "DUEXTTAU")


def user_file(path: Path, da: xr.DataArray, name: str = "dust", units: str = "1", shift_days: int = 366) -> Path:
    """``da`` as a user's file of later days: variable ``name``, times moved ``shift_days`` on."""
    da = da.assign_coords(time=pd.DatetimeIndex(da.time.values) + pd.Timedelta(days=shift_days))
    ds = da.rename(name).to_dataset()
    ds[name].attrs = {"units": units}
    ds.to_netcdf(path)
    return path


def test_new_coarse_data_on_the_training_grid_are_read_and_written(twin, tmp_path):
    training, coarse = twin
    # The user's file reaches further east than the regions need: cut as the training record is.
    east = coarse.isel(lon=[-1]).assign_coords(lon=coarse.lon.values[-1:] + 0.625)
    path = user_file(tmp_path / "future.nc", xr.concat([coarse, east], dim="lon"))
    out = write_new_coarse(tmp_path / "coarse.nc", training, "DUEXTTAU", {"units": "1"}, BOXES, MARGIN,
                           pattern=str(path), source_variable="dust")
    new = io.read_field(out, "DUEXTTAU")
    assert pd.DatetimeIndex(new.time.values)[0] == pd.Timestamp("2001-01-01")
    assert new.sizes["time"] == 20
    # the training cells around the region, with the user's values on them
    np.testing.assert_array_equal(new.lat.values, coarse.lat.values)
    np.testing.assert_array_equal(new.lon.values, coarse.lon.values)
    np.testing.assert_allclose(new.values, coarse.values, rtol=1e-6)


def test_a_file_without_the_variable_is_refused_naming_it(twin, tmp_path):
    training, coarse = twin
    path = user_file(tmp_path / "future.nc", coarse, name="temperature")
    with pytest.raises(io.DataValidationError, match=r"future\.nc.*variable 'dust' not found.*temperature"):
        read_new_coarse(training, "DUEXTTAU", BOXES, MARGIN, pattern=str(path), source_variable="dust")


def test_other_units_are_refused_naming_both(twin, tmp_path):
    training, coarse = twin
    path = user_file(tmp_path / "future.nc", coarse, units="K")
    with pytest.raises(io.DataValidationError, match=r"future\.nc.*units 'K'.*training coarse record '1'"):
        read_new_coarse(training, "DUEXTTAU", BOXES, MARGIN, pattern=str(path), source_variable="dust")


def test_a_grid_of_another_spacing_is_refused(twin, tmp_path):
    training, coarse = twin
    coarser = coarse.isel(lat=slice(None, None, 2), lon=slice(None, None, 2))
    path = user_file(tmp_path / "future.nc", coarser)
    with pytest.raises(io.DataValidationError, match=r"future\.nc.*grid spacing 1 x 1\.25 deg.*differs.*0\.5 x 0\.625"):
        read_new_coarse(training, "DUEXTTAU", BOXES, MARGIN, pattern=str(path), source_variable="dust")


def test_a_grid_with_other_cell_centres_is_refused(twin, tmp_path):
    training, coarse = twin
    shifted = coarse.assign_coords(lon=coarse.lon.values + 0.3125)  # same spacing, centres half a cell east
    path = user_file(tmp_path / "future.nc", shifted)
    with pytest.raises(io.DataValidationError, match=r"future\.nc: cell centres.*lon 64\.0625\.\.65\.9375.*training.*lon 63\.75\.\.65\.625.*must hold those"):
        read_new_coarse(training, "DUEXTTAU", BOXES, MARGIN, pattern=str(path), source_variable="dust")


def test_a_record_with_missing_days_is_refused_naming_the_first(twin, tmp_path):
    training, coarse = twin
    path = user_file(tmp_path / "future.nc", coarse.drop_sel(time=coarse.time.values[[5, 6]]))
    with pytest.raises(io.DataValidationError, match=r"future\.nc.*2001-01-01\.\.2001-01-20 lack 2 day\(s\), first 2001-01-06"):
        read_new_coarse(training, "DUEXTTAU", BOXES, MARGIN, pattern=str(path), source_variable="dust")


def test_data_that_do_not_reach_the_regions_are_refused(twin, tmp_path):
    training, coarse = twin
    path = user_file(tmp_path / "future.nc", coarse.sel(lat=slice(None, 33.2)))
    with pytest.raises(io.DataValidationError, match=r"future\.nc.*not inside the data"):
        read_new_coarse(training, "DUEXTTAU", BOXES, MARGIN, pattern=str(path), source_variable="dust")
    assert not (tmp_path / "coarse.nc").exists()


@pytest.mark.parametrize("apply, source, message", [
    ({"monthly": {"coarse": {"path": "x.nc", "variable": "v"}}}, "synthetic", r"apply\.monthly: the name is taken"),
    ({"a.b": {"coarse": {"path": "x.nc", "variable": "v"}}}, "synthetic", r"apply.*a\.b"),
    ({"later": {"period": ["2001-01-01", "2001-12-31"]}}, "synthetic", r"apply\.later: give exactly 'coarse'"),
    ({"later": {"coarse": {"path": "x.nc"}}}, "synthetic", r"apply\.later\.coarse\.variable: required"),
    ({"later": {"coarse": {"path": "x.nc", "variable": "v"}}}, "nasa", r"apply\.later: give exactly 'period'"),
    ({"later": {"period": ["2001-12-31", "2001-01-01"]}}, "nasa", r"apply\.later\.period: start 2001-12-31 is after"),
])
def test_bad_apply_entries_are_refused_naming_the_key(apply, source, message):
    config = tiny_config(apply=apply)
    config["data"]["source"] = source
    with pytest.raises(ConfigError, match=message):
        validate_config(config)


def test_the_product_of_new_data_holds_its_days_only_and_copies_no_fine_record(tmp_path):
    """Seasons winter (with new days) and summer (none): winter days sampled, the rest missing, the fine record unused."""
    from diffscale.core.samples import member_dataset
    from diffscale.method.product import SOURCE_FLAGS, assemble_new_files

    lat, lon = np.array([33.0, 33.5]), np.array([64.0, 64.5, 65.0])
    fine_days = pd.date_range("2001-02-15", "2001-02-25")  # overlaps the new days: must not be copied
    fine = tmp_path / "fine.nc"
    io.write_netcdf(io.field_dataset(np.full((len(fine_days), 2, 3), 9.0, np.float32), fine_days, lat, lon, "X",
                                     {"units": "1"}), fine)
    new_days = pd.date_range("2001-02-20", "2001-03-05")
    coarse = tmp_path / "coarse_on_fine.nc"
    io.write_netcdf(io.field_dataset(np.ones((len(new_days), 2, 3), np.float32), new_days, lat, lon, "X", {"units": "1"}),
                    coarse)
    winter_days = new_days[new_days.month == 2]
    rng = np.random.default_rng(0)
    members = rng.random((3, len(winter_days), 2, 3)).astype(np.float32)
    winter, summer = tmp_path / "winter.nc", tmp_path / "summer.nc"
    io.write_netcdf(member_dataset(members, winter_days, lat, lon, "X", {"units": "1"}, {}), winter)
    io.write_netcdf(member_dataset(np.zeros((3, 0, 2, 3), np.float32), pd.DatetimeIndex([]), lat, lon, "X",
                                   {"units": "1"}, {}), summer)
    sampling = {k: 1 for k in ("sampler", "steps", "beyond_members", "halo", "tile", "overlap", "spinup_days", "seed")}
    out = tmp_path / "solo.future.nc"
    assemble_new_files(fine, [winter, summer], ["w.pt", "s.pt"], coarse, "future.nc (variable dust)", "solo", "future",
                       {"winter": [12, 1, 2], "summer": [6, 7, 8]}, "X", 2, sampling, {}, out)
    ds = io.open_product(out)
    assert pd.DatetimeIndex(ds.time.values).equals(new_days)
    sampled = np.isin(new_days, winter_days)
    assert (ds.source.values[sampled] == SOURCE_FLAGS["diffusion_ensemble"]).all()
    assert (ds.source.values[~sampled] == SOURCE_FLAGS["no_model"]).all()
    np.testing.assert_allclose(ds["X"].values[sampled], members.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(ds["X_members"].values[:, sampled], members[:2], rtol=1e-6)
    assert np.isnan(ds["X"].values[~sampled]).all() and not (ds["X"].values == 9.0).any()
    assert ds.attrs["apply"] == "future" and ds.attrs["coarse_input"] == "future.nc (variable dust)"
