import numpy as np
import pytest

from diffscale.core.grids import (Box, Grid, region_boxes, conservative_matrices, covering_fine_grid, g5nr_grid,
                             merra2_grid, overlap_weights_1d)


def test_merra2_grid_centres_follow_the_product_convention():
    g = merra2_grid(Box((29.223, 43.406), (60.308, 80.427)))
    i = (g.lat + 90.0) / 0.5
    j = (g.lon + 180.0) / 0.625
    np.testing.assert_allclose(i, np.round(i), atol=1e-12)
    np.testing.assert_allclose(j, np.round(j), atol=1e-12)
    # first/last centres inside the box, none missed at either end
    assert g.lat[0] == 29.5 and g.lat[-1] == 43.0
    assert g.lon[0] == 60.625 and g.lon[-1] == 80.0
    np.testing.assert_allclose(np.diff(g.lat), 0.5)
    np.testing.assert_allclose(np.diff(g.lon), 0.625)


def test_g5nr_grid_is_a_0p0625_lattice_from_minus_90_and_minus_180():
    g = g5nr_grid(Box((33.0, 34.0), (64.0, 65.0)))
    assert g.lat[0] == 33.0 and g.lat[-1] == 34.0 and g.lat.size == 17
    np.testing.assert_allclose((g.lon + 180.0) / 0.0625 % 1, 0.0, atol=1e-9)


def test_covering_fine_grid_spans_every_coarse_cell():
    coarse = merra2_grid(Box((33.0, 35.0), (64.0, 66.5)))
    fine = covering_fine_grid(coarse)
    # MERRA-2 edges (centre +- 0.25 / 0.3125) fall on G5NR centres: both edge cells are kept
    assert fine.lat[0] == coarse.lat[0] - 0.25 and fine.lat[-1] == coarse.lat[-1] + 0.25
    assert fine.lon[0] == coarse.lon[0] - 0.3125 and fine.lon[-1] == coarse.lon[-1] + 0.3125


def test_overlap_weights_are_fractions_that_sum_to_one_inside():
    src = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    dst = np.array([0.5, 2.0, 4.0])
    w = overlap_weights_1d(src, dst)
    np.testing.assert_allclose(w, [[1 / 3, 2 / 3, 0, 0], [0, 0, 0.5, 0.5]])
    np.testing.assert_allclose(w.sum(axis=1), 1.0)


def test_conservative_matrices_preserve_the_area_integral():
    coarse = merra2_grid(Box((30.0, 40.0), (60.0, 70.0)))
    fine = covering_fine_grid(coarse)
    rng = np.random.default_rng(1)
    field = rng.random(fine.shape)
    wy, wx = conservative_matrices(fine, coarse)
    coarse_field = wy @ field @ wx.T
    # the covering fine cells stick out of the coarse domain by half a cell: count only the inside
    sin_lat = np.sin(np.deg2rad(fine.lat_bounds))
    extent_lat = np.sin(np.deg2rad(coarse.lat_bounds[[0, -1]]))
    inside_y = overlap_weights_1d(extent_lat, sin_lat)[:, 0]
    inside_x = overlap_weights_1d(coarse.lon_bounds[[0, -1]], fine.lon_bounds)[:, 0]
    inside = np.outer(inside_y, inside_x)
    assert inside.min() == pytest.approx(0.25, abs=1e-3) and inside.max() == 1.0  # corners: quarter cells
    np.testing.assert_allclose((coarse_field * coarse.cell_area()).sum(),
                               (field * fine.cell_area() * inside).sum(), rtol=1e-12)
    # a constant stays constant
    np.testing.assert_allclose(wy @ np.ones(fine.shape) @ wx.T, 1.0, rtol=1e-12)


def test_box_rejects_reversed_ranges_with_the_values():
    with pytest.raises(ValueError, match=r"latitude range \[35.0, 33.0\]"):
        Box((35.0, 33.0), (60.0, 61.0))


@pytest.mark.parametrize("given, kept", [
    ((60.0, 61.0), (60.0, 61.0)),
    ((200.0, 220.0), (-160.0, -140.0)),  # 0..360
    ((350.0, 10.0), (-10.0, 10.0)),  # 0..360 across Greenwich
    ((170.0, -170.0), (170.0, 190.0)),  # across the antimeridian, west > east
    ((170.0, 190.0), (170.0, 190.0)),  # across the antimeridian, 0..360
])
def test_box_longitudes_in_either_convention(given, kept):
    box = Box.from_config({"lat": [0, 1], "lon": list(given)})
    assert box.lon == kept
    assert box.crosses_antimeridian == (kept[1] > 180)


def test_regions_on_both_sides_of_the_antimeridian_share_one_frame():
    boxes = region_boxes({"a": {"lat": [0, 1], "lon": [175, 180]}, "b": {"lat": [0, 1], "lon": [-180, -176]},
                          "c": {"lat": [0, 1], "lon": [-179, -170]}})
    assert [b.lon for b in boxes.values()] == [(175.0, 180.0), (180.0, 184.0), (181.0, 190.0)]
    assert Box.union(list(boxes.values())).lon == (175.0, 190.0)
    g = merra2_grid(boxes["b"])
    np.testing.assert_allclose(g.lon, 180.0 + 0.625 * np.arange(7))  # the lattice continues past 180


def test_regions_apart_keep_their_own_longitudes():
    boxes = region_boxes({"a": {"lat": [0, 1], "lon": [-10, 5]}, "b": {"lat": [0, 1], "lon": [350, 355]}})
    assert [b.lon for b in boxes.values()] == [(-10.0, 5.0), (-10.0, -5.0)]


def test_grid_cell_area_sums_to_the_sphere():
    lat = -90 + 0.5 * np.arange(361)
    lon = -180 + 0.625 * np.arange(576)
    g = Grid(lat, lon, 0.5, 0.625)
    np.testing.assert_allclose(g.cell_area().sum(), 4 * np.pi, rtol=1e-12)
