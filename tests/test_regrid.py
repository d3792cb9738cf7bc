"""Regridder: conservation, agreement with xarray-regrid and scipy, weight files, NaNs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.interpolate import RegularGridInterpolator

from diffscale.core.grids import Box, Grid, g5nr_grid, merra2_grid, regular_grid
from diffscale.core.io import DataValidationError
from diffscale.data.regrid import Regridder, builtin_weights, read_weights, write_weights, xesmf_available


def nested_grids() -> tuple:
    """A fine grid whose cells tile the coarse cells exactly (8 x 10 fine cells per coarse cell)."""
    coarse = regular_grid(Box((30.0, 33.5), (60.0, 64.5)), 0.5, 0.5)  # 8 x 10 centres
    fine = Grid(29.75 + 0.0625 * (np.arange(64) + 0.5), 59.75 + 0.05 * (np.arange(100) + 0.5), 0.0625, 0.05)
    assert fine.lat_bounds[0] == pytest.approx(coarse.lat_bounds[0])
    assert fine.lon_bounds[-1] == pytest.approx(coarse.lon_bounds[-1])
    return coarse, fine


def field(grid, n_time=3, seed=0) -> xr.DataArray:
    rng = np.random.default_rng(seed)
    values = np.exp(rng.normal(size=(n_time, *grid.shape)))
    return xr.DataArray(values, dims=("time", "lat", "lon"), name="DUEXTTAU",
                        coords={"time": pd.date_range("2001-01-01", periods=n_time), "lat": grid.lat, "lon": grid.lon},
                        attrs={"units": "1", "long_name": "dust"})


def integral(da: xr.DataArray, grid) -> np.ndarray:
    return (da.values * grid.cell_area()).sum(axis=(-2, -1))


@pytest.mark.parametrize("direction", ["fine_to_coarse", "coarse_to_fine"])
def test_conservative_keeps_area_weighted_integral(direction):
    coarse, fine = nested_grids()
    src, dst = (fine, coarse) if direction == "fine_to_coarse" else (coarse, fine)
    da = field(src)
    out = Regridder(src, dst, "conservative", backend="builtin")(da)
    np.testing.assert_allclose(integral(out, dst), integral(da, src), rtol=1e-6)
    assert out.dims == da.dims and out.name == da.name
    assert out.attrs["units"] == "1" and out.attrs["regrid_backend"] == "builtin"
    assert (out.time.values == da.time.values).all()


def test_conservative_equals_xarray_regrid():
    xarray_regrid = pytest.importorskip("xarray_regrid")  # noqa: F841 - registers the .regrid accessor
    coarse, fine = nested_grids()
    da = field(fine, n_time=4)
    ours = Regridder(fine, coarse, "conservative", backend="builtin")(da)
    target = xr.Dataset(coords={"lat": coarse.lat, "lon": coarse.lon})
    theirs = da.regrid.conservative(target, latitude_coord="lat")
    np.testing.assert_allclose(ours.values, theirs.transpose(*ours.dims).values, rtol=1e-6, atol=0)


def test_bilinear_equals_regular_grid_interpolator():
    src = merra2_grid(Box((32.0, 36.0), (63.0, 68.0)))
    dst = g5nr_grid(Box((33.0, 35.0), (64.0, 66.5)))
    da = field(src, n_time=2)
    out = Regridder(src, dst, "bilinear", backend="builtin")(da)
    yy, xx = np.meshgrid(dst.lat, dst.lon, indexing="ij")
    for t in range(2):
        ref = RegularGridInterpolator((src.lat, src.lon), da.values[t], method="linear")((yy, xx))
        np.testing.assert_allclose(out.values[t], ref, rtol=1e-12, atol=1e-12)


def test_bilinear_outside_the_source_is_nan():
    src = merra2_grid(Box((33.0, 35.0), (64.0, 66.0)))
    dst = g5nr_grid(Box((32.5, 35.0), (64.5, 65.5)))
    r = Regridder(src, dst, "bilinear", backend="builtin")
    out = r(field(src, 1)).values[0]
    below = dst.lat < src.lat[0] - 1e-9
    assert below.any() and np.isnan(out[below]).all() and np.isfinite(out[~below]).all()
    assert r.unmapped == below.sum() * dst.lon.size and r.partial == 0


def test_partly_covered_conservative_target_is_the_mean_of_its_covered_part():
    coarse, fine = nested_grids()
    inner = Grid(fine.lat[4:], fine.lon, fine.dlat, fine.dlon)  # first coarse row: only its upper 4 of 8 fine rows
    r = Regridder(inner, coarse, "conservative", backend="builtin")
    assert r.partial == coarse.lon.size and r.unmapped == 0
    da = field(inner, 1)
    out = r(da).values[0]
    area = inner.cell_area()[:4, :10]
    np.testing.assert_allclose(out[0, 0], (da.values[0, :4, :10] * area).sum() / area.sum(), rtol=1e-12)


def test_nearest_copies_the_closest_coarse_cell():
    coarse, fine = nested_grids()
    da = field(coarse, 1)
    out = Regridder(coarse, fine, "nearest", backend="builtin")(da).values[0]
    # Every fine cell lies inside exactly one coarse cell: it takes that cell's value.
    iy = np.searchsorted(coarse.lat_bounds, fine.lat, side="right") - 1
    ix = np.searchsorted(coarse.lon_bounds, fine.lon, side="right") - 1
    np.testing.assert_array_equal(out, da.values[0][np.ix_(iy, ix)])
    assert set(np.unique(out)) <= set(np.unique(da.values))


def test_dataset_keeps_other_variables_dims_and_attrs():
    coarse, fine = nested_grids()
    da = field(fine, 2).expand_dims(member=[0, 1]).transpose("time", "member", "lat", "lon")
    ds = xr.Dataset({"DUEXTTAU": da, "label": ("time", np.array([1, 2]))}, attrs={"source": "test"})
    out = Regridder(fine, coarse, "conservative", backend="builtin")(ds)
    assert out["DUEXTTAU"].dims == ("time", "member", "lat", "lon")
    assert out["DUEXTTAU"].shape == (2, 2, *coarse.shape)
    np.testing.assert_array_equal(out["label"].values, [1, 2])
    assert out.attrs["source"] == "test" and out.attrs["regrid_method"] == "conservative"
    np.testing.assert_allclose(out.lat.values, coarse.lat)


def test_wrong_grid_is_refused_with_a_clear_error():
    coarse, fine = nested_grids()
    r = Regridder(fine, coarse, "conservative", backend="builtin")
    with pytest.raises(ValueError, match="does not match the regridder's source grid"):
        r(field(coarse))


def test_weight_file_round_trip_and_reuse(tmp_path):
    coarse, fine = nested_grids()
    path = tmp_path / "w.nc"
    made = Regridder(fine, coarse, "conservative", backend="builtin", weights_path=path)
    assert path.exists()
    with xr.open_dataset(path) as ds:
        assert ds.sizes["n_a"] == fine.lat.size * fine.lon.size and ds.sizes["n_b"] == coarse.lat.size * coarse.lon.size
        assert ds["row"].min() == 1 and ds["col"].min() == 1  # ESMF indices are 1-based
    reused = Regridder(fine, coarse, "conservative", backend="builtin", weights_path=path)
    assert (reused.weights != made.weights).nnz == 0
    da = field(fine)
    # The file is applied as one sparse matrix, the fresh built-in regridder as its two
    # factors: the same weights, summed in another order.
    np.testing.assert_allclose(reused(da).values, made(da).values, rtol=1e-14)
    assert reused.backend == "builtin"


def test_weights_written_by_xesmf_layout_apply(tmp_path):
    """xESMF's own files carry only row/col/S (no n_a/n_b/centres); they must still load."""
    coarse, fine = nested_grids()
    w = builtin_weights(fine, coarse, "conservative").tocoo()
    path = tmp_path / "xesmf_style.nc"
    xr.Dataset({"row": ("n_s", w.row + 1), "col": ("n_s", w.col + 1), "S": ("n_s", w.data)}).to_netcdf(path)
    loaded, creator = read_weights(path, fine, coarse)
    assert creator == "xesmf" and (loaded != w.tocsr()).nnz == 0


def test_stale_weight_file_is_refused(tmp_path):
    coarse, fine = nested_grids()
    path = tmp_path / "w.nc"
    write_weights(path, builtin_weights(fine, coarse, "conservative"), fine, coarse, "conservative", "builtin")
    other = regular_grid(Box((30.0, 33.5), (60.5, 65.0)), 0.5, 0.5)
    with pytest.raises(DataValidationError, match="other target grid centres"):
        read_weights(path, fine, other)


@pytest.mark.parametrize("method", ["conservative", "bilinear"])
def test_missing_renormalise_and_propagate(method):
    coarse, fine = nested_grids()
    if method == "conservative":
        src, dst = fine, coarse
    else:  # the fine grid inside the coarse centres, so every target is mapped
        src, dst = merra2_grid(Box((32.0, 36.0), (63.0, 68.0))), g5nr_grid(Box((33.0, 35.0), (64.0, 66.5)))
    da = field(src, 1)
    holed = da.copy()
    holed.values[0, 2, 3] = np.nan
    full = Regridder(src, dst, method, backend="builtin", missing="renormalise")(da).values[0]
    renorm = Regridder(src, dst, method, backend="builtin", missing="renormalise")(holed).values[0]
    prop = Regridder(src, dst, method, backend="builtin", missing="propagate")(holed).values[0]
    touched = np.isnan(prop)
    assert touched.sum() >= (4 if method == "bilinear" else 1)
    # Renormalised, a target is NaN only when nothing valid contributes: for bilinear the
    # one fine centre that coincides with the missing coarse centre, for conservative none.
    lost = np.argwhere(np.isnan(renorm))
    if method == "bilinear":
        assert lost.tolist() == [[int(np.argmin(abs(dst.lat - src.lat[2]))), int(np.argmin(abs(dst.lon - src.lon[3])))]]
    else:
        assert lost.size == 0
    np.testing.assert_allclose(prop[~touched], full[~touched], rtol=1e-12)
    np.testing.assert_allclose(renorm[~touched], full[~touched], rtol=1e-12)
    assert np.isfinite(renorm[touched]).sum() == touched.sum() - len(lost)
    if method == "conservative":
        # The coarse cell holding the hole is the area mean of its 79 valid fine cells.
        iy, ix = np.argwhere(touched)[0]
        block = holed.values[0, 8 * iy:8 * iy + 8, 10 * ix:10 * ix + 10]
        area = fine.cell_area()[8 * iy:8 * iy + 8, 10 * ix:10 * ix + 10]
        ok = ~np.isnan(block)
        assert renorm[iy, ix] == pytest.approx((block[ok] * area[ok]).sum() / area[ok].sum(), rel=1e-12)


def test_all_nan_source_gives_nan_target():
    coarse, fine = nested_grids()
    da = field(fine, 1)
    da.values[0, :8, :10] = np.nan  # the whole first coarse cell
    out = Regridder(fine, coarse, "conservative", backend="builtin")(da).values[0]
    assert np.isnan(out[0, 0]) and np.isfinite(out).sum() == out.size - 1


@pytest.mark.skipif(not xesmf_available(), reason="xesmf/esmpy not installed (conda-forge only; see envs/regrid.yaml)")
@pytest.mark.parametrize("method", ["conservative", "bilinear"])
def test_xesmf_and_builtin_weights_agree(tmp_path, method):  # pragma: no cover - needs esmpy
    coarse, fine = nested_grids()
    src, dst = (fine, coarse) if method == "conservative" else (coarse, fine)
    ours = Regridder(src, dst, method, backend="builtin")
    esmf = Regridder(src, dst, method, backend="xesmf", weights_path=tmp_path / "esmf.nc")
    da = field(src, 1)
    tol = 1e-9 if method == "conservative" else 1e-3  # ESMF interpolates bilinearly on great circles
    np.testing.assert_allclose(esmf(da).values, ours(da).values, rtol=tol)
    again = Regridder(src, dst, method, backend="builtin", weights_path=tmp_path / "esmf.nc")
    assert again.backend == "xesmf"
    np.testing.assert_array_equal(again(da).values, esmf(da).values)


def test_bad_method_backend_and_missing_are_named():
    coarse, fine = nested_grids()
    with pytest.raises(ValueError, match="method 'cubic'"):
        Regridder(fine, coarse, "cubic")
    with pytest.raises(ValueError, match="missing 'drop'"):
        Regridder(fine, coarse, "conservative", missing="drop")
    with pytest.raises(ValueError, match="backend 'esmf'"):
        Regridder(fine, coarse, "conservative", backend="esmf")
    if not xesmf_available():
        with pytest.raises(ImportError, match="conda-forge"):
            Regridder(fine, coarse, "conservative", backend="xesmf")
        assert Regridder(fine, coarse, "conservative", backend="auto").backend == "builtin"


def test_spatial_dims_first_are_kept_in_place():
    coarse, fine = nested_grids()
    da = field(fine, 2).transpose("lat", "lon", "time")
    out = Regridder(fine, coarse, "conservative", backend="builtin")(da)
    assert out.dims == ("lat", "lon", "time") and out.shape == (*coarse.shape, 2)
    ref = Regridder(fine, coarse, "conservative", backend="builtin")(field(fine, 2))
    np.testing.assert_allclose(out.transpose("time", "lat", "lon").values, ref.values, rtol=1e-12)


@pytest.mark.parametrize("method", ["conservative", "bilinear", "nearest"])
def test_factored_and_full_matrix_give_the_same_result_with_nans(tmp_path, method):
    src, dst = merra2_grid(Box((32.0, 36.0), (63.0, 68.0))), g5nr_grid(Box((33.0, 35.0), (64.0, 66.5)))
    if method == "conservative":
        src, dst = dst, merra2_grid(Box((33.5, 34.5), (64.5, 65.7)))
    da = field(src, 3).astype(np.float32)
    da.values[1, 4, 5] = np.nan
    for missing in ("renormalise", "propagate"):
        factored = Regridder(src, dst, method, backend="builtin", missing=missing, weights_path=tmp_path / f"{missing}.nc")
        full = Regridder(src, dst, method, backend="builtin", missing=missing, weights_path=tmp_path / f"{missing}.nc")
        a, b = factored(da), full(da)
        assert a.dtype == np.float32 and np.isnan(a.values).sum() == np.isnan(b.values).sum()
        np.testing.assert_allclose(a.values, b.values, rtol=1e-6)
