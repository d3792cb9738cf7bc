import numpy as np
import pandas as pd
import pytest
import xarray as xr

from diffscale.core import io


def _field(days=3, lat=(30.0, 30.5, 31.0), lon=(60.0, 60.625)):
    rng = np.random.default_rng(0)
    times = pd.date_range("2000-01-30", periods=days, freq="D")
    data = rng.random((days, len(lat), len(lon))).astype(np.float32)
    return io.field_dataset(data, times, np.array(lat), np.array(lon), "DUEXTTAU", {"units": "1", "long_name": "dust AOD"})


def test_roundtrip_keeps_cf_metadata_and_values(tmp_path):
    ds = _field()
    io.write_netcdf(ds, tmp_path / "a.nc")
    back = io.read_field(tmp_path / "a.nc", "DUEXTTAU")
    np.testing.assert_array_equal(back.values, ds.DUEXTTAU.values)
    assert back.attrs["units"] == "1" and back.lat.attrs["units"] == "degrees_north"
    assert np.issubdtype(back.time.dtype, np.datetime64)


def test_complevel_zero_writes_the_same_values_uncompressed(tmp_path):
    import netCDF4

    ds = _field()
    for level in (0, 4):
        io.write_netcdf(ds, tmp_path / f"l{level}.nc", complevel=level)
        with netCDF4.Dataset(tmp_path / f"l{level}.nc") as nc:
            assert nc.variables["DUEXTTAU"].filters()["zlib"] is (level > 0)
        np.testing.assert_array_equal(io.read_field(tmp_path / f"l{level}.nc", "DUEXTTAU").values, ds.DUEXTTAU.values)


def test_write_monthly_splits_by_calendar_month(tmp_path):
    paths = io.write_monthly(_field(days=5), tmp_path)
    assert [p.name for p in paths] == ["2000-01.nc", "2000-02.nc"]
    rec = io.read_record(paths, "DUEXTTAU", "2000-01-30", "2000-02-03")
    assert rec.sizes["time"] == 5


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    ds = _field()
    ds["bad"] = ("x", np.array([object()], dtype=object))  # netCDF cannot store it
    with pytest.raises(Exception):
        io.write_netcdf(ds, tmp_path / "out.nc")
    assert list(tmp_path.iterdir()) == []


def test_missing_variable_names_file_and_variables(tmp_path):
    io.write_netcdf(_field(), tmp_path / "a.nc")
    with pytest.raises(io.DataValidationError, match=r"a\.nc: variable 'AOD' not found \(variables present: DUEXTTAU\)"):
        io.read_field(tmp_path / "a.nc", "AOD")


def test_truncated_file_is_named(tmp_path):
    io.write_netcdf(_field(), tmp_path / "a.nc")
    raw = (tmp_path / "a.nc").read_bytes()
    (tmp_path / "a.nc").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(io.DataValidationError, match=r"a\.nc: cannot be read as netCDF"):
        io.read_field(tmp_path / "a.nc", "DUEXTTAU")


def test_non_monotonic_latitude_is_named(tmp_path):
    io.write_netcdf(_field(lat=(30.0, 31.0, 30.5)), tmp_path / "a.nc")
    with pytest.raises(io.DataValidationError, match=r"coordinate 'lat' must be strictly increasing"):
        io.read_field(tmp_path / "a.nc", "DUEXTTAU")


def test_record_with_missing_days_is_refused(tmp_path):
    paths = io.write_monthly(_field(days=5), tmp_path)
    with pytest.raises(io.DataValidationError, match=r"lacks 2 day\(s\) of 2000-01-30..2000-02-05, first 2000-02-04"):
        io.read_record(paths, "DUEXTTAU", "2000-01-30", "2000-02-05")


def test_months_in_covers_partial_months():
    assert io.months_in("2005-05-15", "2005-07-01") == [(2005, 5), (2005, 6), (2005, 7)]
    assert len(io.month_files("x", "2000-01-01", "2024-12-31")) == 300
