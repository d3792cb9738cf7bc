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


@pytest.mark.parametrize("codec, level, filter_key", [("zlib", 4, "zlib"), ("zstd", 1, "zstd"), ("none", 4, None)])
def test_the_configs_codec_compresses_every_file_and_its_appended_days(tmp_path, codec, level, filter_key):
    import netCDF4

    from diffscale.core import cf

    files = cf.Metadata.from_config({"netcdf": {"compression": codec, "complevel": level}})
    ds, more = _field(days=3), _field(days=5).isel(time=slice(3, 5))
    path = tmp_path / "a.nc"
    io.write_netcdf(ds, path, metadata=files, unlimited_dims=("time",))
    io.append_steps(path, pd.DatetimeIndex(more.time.values), {"DUEXTTAU": more.DUEXTTAU.values})
    with netCDF4.Dataset(path) as nc:
        filters = nc.variables["DUEXTTAU"].filters()
    if filter_key is None:
        assert not any(v for k, v in filters.items() if k not in ("complevel", "fletcher32", "shuffle"))
    else:
        assert filters[filter_key] and filters["complevel"] == level
    np.testing.assert_array_equal(io.read_field(path, "DUEXTTAU").values, _field(days=5).DUEXTTAU.values)


def test_the_default_codec_is_zlib_level_4_and_an_unknown_one_is_named():
    from diffscale.core import cf

    assert (cf.Metadata.from_config({}).compression, cf.Metadata.from_config({}).complevel) == ("zlib", 4)
    with pytest.raises(ValueError, match="netcdf.compression 'lzma' is not one of zlib, zstd, none"):
        io.codec_encoding("lzma")


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
