"""CF-1.8/ACDD-1.3 metadata, chunking and the product formats (diffscale.core.cf, chunks, io)."""

from __future__ import annotations

import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from cf_checker import assert_compliant, failures, require_checker

from diffscale.core import cf, chunks, io, samples

DUST = "atmosphere_optical_thickness_due_to_dust_ambient_aerosol_particles"
CONFIG = {"data": {"variable": "DUEXTTAU", "standard_name": DUST, "coverage_content_type": "modelResult"},
          "metadata": {"title": "a test", "summary": "what it is", "keywords": ["dust", "test"],
                       "creator_name": "someone", "creator_email": "", "institution": "somewhere"}}
META = cf.Metadata.from_config(CONFIG)
LAT, LON = np.arange(30.0, 31.01, 0.25), np.arange(60.0, 61.6, 0.3125)


def _field(days=5, start="2000-01-30"):
    rng = np.random.default_rng(0)
    data = rng.random((days, LAT.size, LON.size)).astype(np.float32)
    return io.field_dataset(data, pd.date_range(start, periods=days), LAT, LON, "DUEXTTAU",
                            {"units": "1", "long_name": "dust AOD"}, {"source": "a test"})


def _product(members=4, saved=2):
    ens = samples.member_dataset(np.random.default_rng(1).random((members, 5, LAT.size, LON.size)).astype(np.float32),
                                 pd.date_range("2000-01-30", periods=5), LAT, LON, "DUEXTTAU", {"units": "1"})
    v = ens.DUEXTTAU
    attrs = {"units": "1", "long_name": "dust", "standard_name": DUST}
    ds = xr.Dataset({"DUEXTTAU": v.mean("member").assign_attrs(attrs), "DUEXTTAU_spread": v.std("member").assign_attrs(attrs),
                     "DUEXTTAU_members": v[:saved].assign_attrs(attrs),
                     "source": ("time", np.full(5, 2, np.int8), {"long_name": "origin", "flag_meanings": "a b c",
                                                                 "flag_values": np.array([0, 1, 2], np.int8)})})
    return cf.ensemble_statistics(ds, {"DUEXTTAU": "mean", "DUEXTTAU_spread": "standard_deviation"}, members)


# ---- chunking


@pytest.mark.parametrize("t, y, x", [(9132, 227, 322), (9132, 432, 357), (2280, 227, 322), (400, 33, 41)])
def test_chunks_balance_a_days_map_and_a_pixels_series(t, y, x):
    c = chunks.chunk_sizes({"time": t, "lat": y, "lon": x})
    assert c["time"] * c["lat"] * c["lon"] * 4 <= chunks.TARGET_BYTES
    assert chunks.TIME_RANGE[0] <= c["time"] <= chunks.TIME_RANGE[1]
    map_share = c["time"] / t
    series_share = c["lat"] * c["lon"] / (y * x)  # a pixel's record reads its tile over all times
    if t * y * x * 4 > 64 * chunks.TARGET_BYTES:  # a 25-year record: both reads touch a few percent
        assert map_share < 0.05 and series_share < 0.05
    assert 0.2 < map_share / series_share < 5  # balanced


def test_chunks_of_small_arrays_members_and_other_dimensions():
    assert chunks.chunk_sizes({"time": 31, "lat": 20, "lon": 30}) == {"time": 31, "lat": 20, "lon": 30}
    assert chunks.chunk_sizes({"member": 6, "time": 9, "lat": 10, "lon": 12}) == {"member": 1, "time": 9, "lat": 10, "lon": 12}
    big = chunks.chunk_sizes({"time": 9132, "lat": 227, "lon": 322, "bnds": 2})
    assert big["bnds"] == 2 and big["time"] == 181 and (big["lat"], big["lon"]) == (38, 38)
    # a tall narrow domain gives the rows what the columns cannot take
    narrow = chunks.chunk_sizes({"time": 9132, "lat": 2000, "lon": 3})
    assert narrow["lon"] == 3 and narrow["lat"] * narrow["time"] * 3 * 4 <= chunks.TARGET_BYTES
    assert chunks.chunk_sizes({"lat": 4000, "lon": 4000}) == {"lat": 512, "lon": 512}


def test_written_product_is_chunked_as_computed(tmp_path):
    big = io.field_dataset(np.full((400, 64, 80), 0.5, np.float32), pd.date_range("2000-01-01", periods=400),
                           np.arange(64) * 0.0625, np.arange(80) * 0.0625, "DUEXTTAU", {"units": "1"})
    io.write_netcdf(big, tmp_path / "p.nc")
    with netCDF4.Dataset(tmp_path / "p.nc") as nc:
        want = chunks.chunk_sizes(dict(big.DUEXTTAU.sizes))
        assert nc["DUEXTTAU"].chunking() == [want["time"], want["lat"], want["lon"]] and want["time"] < 400
        assert nc["DUEXTTAU"].filters()["zlib"] and nc["DUEXTTAU"].dtype == np.float32


# ---- attributes and bounds


def test_written_file_has_cf_bounds_and_no_fill_on_coordinates(tmp_path):
    path = io.write_netcdf(_field(), tmp_path / "a.nc", metadata=META, history="made by a test")
    with netCDF4.Dataset(path) as nc:
        for name in ("lat", "lon", "time", "lat_bnds", "lon_bnds", "time_bnds"):
            assert "_FillValue" not in nc[name].ncattrs(), name
        assert np.isnan(nc["DUEXTTAU"]._FillValue)
    ds = xr.open_dataset(path)
    np.testing.assert_array_equal(ds.time_bnds.values[:, 0], ds.time.values)  # the stamp is the start of the day
    assert (ds.time_bnds.values[:, 1] - ds.time.values == np.timedelta64(1, "D")).all()
    assert (pd.DatetimeIndex(ds.time.values) == pd.DatetimeIndex(ds.time.values).normalize()).all()
    np.testing.assert_allclose(ds.lat_bnds.values[:, 1] - ds.lat_bnds.values[:, 0], 0.25)
    np.testing.assert_allclose(ds.lon_bnds.values.mean(axis=1), LON)
    v = ds.DUEXTTAU
    assert v.attrs["cell_methods"] == "time: mean" and v.attrs["standard_name"] == DUST
    assert v.attrs["coverage_content_type"] == "modelResult" and v.dtype == np.float32
    g = ds.attrs
    assert g["Conventions"] == "CF-1.8, ACDD-1.3" and g["title"] == "a test" and g["keywords"] == "dust, test"
    assert g["creator_name"] == "someone" and "creator_email" not in g and g["source"] == "a test"
    assert "made by a test" in g["history"] and g["history"].startswith(g["date_created"])
    assert g["diffscale_version"] == cf.software()["diffscale_version"]
    assert (g["geospatial_lat_min"], g["geospatial_lon_max"]) == (30.0, LON[-1])
    assert (g["time_coverage_start"], g["time_coverage_end"]) == ("2000-01-30T00:00:00Z", "2000-02-03T00:00:00Z")


def test_rewriting_a_file_keeps_its_history_and_renews_its_extents(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "946684800")
    first = io.write_netcdf(_field(), tmp_path / "a.nc", metadata=META, history="first")
    ds = xr.open_dataset(first).isel(time=slice(1, 3), lat=slice(0, 3)).load()
    io.write_netcdf(ds, tmp_path / "b.nc", metadata=META, history="second")
    back = xr.open_dataset(tmp_path / "b.nc")
    lines = back.attrs["history"].splitlines()
    assert lines[0].startswith("2000-01-01T00:00:00Z: second") and "first" in lines[1]
    assert back.attrs["time_coverage_start"] == "2000-01-31T00:00:00Z" and back.sizes["time"] == back.time_bnds.shape[0]
    assert back.attrs["geospatial_lat_max"] == LAT[2] and back.DUEXTTAU.attrs["cell_methods"] == "time: mean"


def test_members_are_a_realization_axis_named_member(tmp_path):
    ds = samples.member_dataset(np.ones((3, 2, LAT.size, LON.size), np.float32), pd.date_range("2000-01-01", periods=2),
                                LAT, LON, "DUEXTTAU", {"units": "1"})
    back = xr.open_dataset(io.write_netcdf(ds, tmp_path / "s.nc"))
    assert back.DUEXTTAU.dims == samples.DIMS
    assert {"standard_name": "realization", "units": "1", "long_name": "ensemble member"}.items() <= back.member.attrs.items()


def test_ensemble_statistics_name_a_scalar_realization_coordinate(tmp_path):
    back = xr.open_dataset(io.write_netcdf(_product(members=4), tmp_path / "p.nc"))
    assert float(back.realization) == 1.5 and list(back.realization_bnds.values) == [0.0, 3.0]
    assert back.DUEXTTAU.attrs["cell_methods"] == "time: mean realization: mean"
    assert back.DUEXTTAU_spread.attrs["cell_methods"] == "time: mean realization: standard_deviation"
    assert back.DUEXTTAU_members.attrs["cell_methods"] == "time: mean"
    assert back.source.attrs["coverage_content_type"] == "auxiliaryInformation"
    with netCDF4.Dataset(tmp_path / "p.nc") as nc:
        assert nc["DUEXTTAU"].coordinates == "realization" and "coordinates" not in nc["DUEXTTAU_members"].ncattrs()
        assert "coordinates" not in nc.ncattrs()


def test_metadata_from_a_config_leaves_empty_keys_out():
    meta = cf.Metadata.from_config({"data": {"variable": "AOD", "standard_name": None}, "metadata": {"title": "t",
                                                                                                    "creator_name": ""}})
    assert meta.attrs == {"title": "t"} and meta.variables["AOD"] == {}
    assert meta.variables["elevation"]["standard_name"] == "surface_altitude"


@pytest.mark.parametrize("argv0, name", [("/x/.snakemake/scripts/tmpa1b_2c.sample.py", "sample.py"),
                                         ("/venv/lib/pytest/__main__.py", "pytest"), ("", "python")])
def test_history_names_the_script(monkeypatch, argv0, name):
    monkeypatch.setattr("sys.argv", [argv0])
    assert cf.program() == name


def test_software_names_the_version_and_the_commit_of_a_checkout():
    soft = cf.software()
    assert soft["diffscale_version"] == "0.1.0"
    if (cf.ROOT / ".git").exists():
        assert len(soft.get("diffscale_git_commit", "").removesuffix("-dirty")) == 40


def test_append_days_extends_time_bounds_and_coverage(tmp_path):
    ds = _field(days=3)
    path = io.write_netcdf(ds, tmp_path / "r.nc", chunks={"time": 1}, unlimited_dims=("time",))
    more = pd.date_range("2000-02-02", periods=2)
    io.append_days(path, "DUEXTTAU", more, np.zeros((2, LAT.size, LON.size), np.float32))
    back = xr.open_dataset(path)
    assert back.sizes["time"] == 5 and back.attrs["time_coverage_end"] == "2000-02-03T00:00:00Z"
    assert (back.time_bnds.values[:, 1] - back.time.values == np.timedelta64(1, "D")).all()


# ---- the product's formats


@pytest.mark.parametrize("fmt", ["netcdf", "zarr"])
def test_product_formats_hold_the_same_data_and_metadata(tmp_path, fmt):
    ds = _product()
    path = io.write_product(ds, tmp_path / f"p{io.PRODUCT_FORMATS[fmt]}", fmt, metadata=META)
    io.write_product(ds, path, fmt, metadata=META)  # an existing product is replaced whole
    back = xr.open_zarr(path) if fmt == "zarr" else xr.open_dataset(path)
    for name in ("DUEXTTAU", "DUEXTTAU_spread", "DUEXTTAU_members", "source"):
        np.testing.assert_array_equal(back[name].values, ds[name].values)
        assert back[name].dtype == ds[name].dtype
    assert back.DUEXTTAU.attrs["cell_methods"] == "time: mean realization: mean" and "realization" in back.DUEXTTAU.coords
    assert back.attrs["title"] == "a test" and back.member.attrs["standard_name"] == "realization"
    assert (back.time_bnds.values[:, 0] == back.time.values).all()
    assert not list(tmp_path.glob(".*part"))
    if fmt == "zarr":
        assert back.DUEXTTAU.encoding["chunks"] == tuple(chunks.chunk_sizes(dict(ds.DUEXTTAU.sizes)).values())


def test_unknown_product_format_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown product format 'grib'"):
        io.write_product(_product(), tmp_path / "p.grib", "grib")


# ---- the checker itself


def test_written_files_pass_the_cf_and_acdd_checkers(tmp_path):
    require_checker()
    assert_compliant(io.write_netcdf(_field(), tmp_path / "raw.nc", metadata=META))
    assert_compliant(io.write_netcdf(io.field_dataset(np.ones((LAT.size, LON.size), np.float32), None, LAT, LON,
                                                      "elevation", {"units": "m", "long_name": "elevation"}),
                                     tmp_path / "elevation.nc", metadata=META))
    ens = samples.member_dataset(np.ones((2, 3, LAT.size, LON.size), np.float32), pd.date_range("2000-01-01", periods=3),
                                 LAT, LON, "DUEXTTAU", {"units": "1", "long_name": "dust"})
    assert_compliant(io.write_netcdf(ens, tmp_path / "samples.nc", metadata=META))
    assert_compliant(io.write_product(_product(), tmp_path / "product.nc", metadata=META))


def test_the_checker_catches_the_errors_this_project_had(tmp_path):
    """The test above proves something only if the checker fails a file with the old faults."""
    require_checker()
    ds = _field()
    ds.to_netcdf(tmp_path / "fill.nc", encoding={"lat": {"_FillValue": np.nan}})  # the old writer's coordinates
    found = failures(tmp_path / "fill.nc")
    assert any("coordinate variable 'lat' must not have the _FillValue" in m for msgs in found.values() for m in msgs)
    good = io.write_netcdf(ds, tmp_path / "good.nc", metadata=META)
    bad = xr.open_dataset(good).load()
    bad.DUEXTTAU.attrs.pop("standard_name")
    bad.to_netcdf(tmp_path / "no_standard_name.nc")
    assert any("standard_name" in m for msgs in failures(tmp_path / "no_standard_name.nc").values() for m in msgs)
