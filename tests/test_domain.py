"""Wasserstein domain analysis on cases that can be computed by hand."""

from __future__ import annotations

import numpy as np
import ot
import pandas as pd
import pytest

from diffscale.data.domain import (COLUMNS, analyse, joint_minmax, per_day_w1, per_pixel_w1, pooled_w1, sliced_w,
                              standardised_patches, table)


def test_per_day_w1_of_a_shift_is_the_shift():
    rng = np.random.default_rng(0)
    fine = rng.random((5, 6, 7))
    shifts = np.array([0.0, 0.1, 0.2, 0.3, 0.4])
    np.testing.assert_allclose(per_day_w1(fine, fine + shifts[:, None, None]), shifts, atol=1e-12)


def test_per_day_w1_two_point_masses_against_their_middle():
    fine = np.zeros((1, 2, 2))
    fine[0, 0] = 1.0  # half the pixels 0, half 1
    coarse = np.full((1, 2, 2), 0.5)
    assert per_day_w1(fine, coarse)[0] == pytest.approx(0.5)
    # W1 ignores where a value sits: a permuted day is at distance 0.
    assert per_day_w1(fine, fine[:, ::-1, ::-1])[0] == pytest.approx(0.0)


def test_per_pixel_w1_compares_each_pixels_time_series():
    fine = np.zeros((4, 2, 3))
    coarse = np.zeros((4, 2, 3))
    coarse[:, 1, 2] = 0.25  # one pixel off by 0.25 on every day
    coarse[:2, 0, 0] = 1.0  # another off by 1 on half the days
    expected = np.zeros((2, 3))
    expected[1, 2], expected[0, 0] = 0.25, 0.5
    np.testing.assert_allclose(per_pixel_w1(fine, coarse), expected, atol=1e-12)


def test_pooled_w1_with_different_sample_sizes():
    assert pooled_w1(np.array([0.0, 0.0, 1.0, 1.0]), np.array([0.0, 1.0])) == pytest.approx(0.0, abs=1e-6)
    assert pooled_w1(np.array([0.0, 1.0]), np.array([0.5, 0.5, 0.5])) == pytest.approx(0.5, abs=1e-6)


def test_pooled_w1_equals_the_exact_distance_within_a_bin_width():
    rng = np.random.default_rng(5)
    a, b = rng.gamma(2.0, size=30_000), rng.lognormal(0.3, 0.6, size=20_000)
    exact = float(ot.wasserstein_1d(a, b))
    width = (max(a.max(), b.max()) - min(a.min(), b.min())) / 2**20
    assert abs(pooled_w1(a, b) - exact) <= width
    assert abs(pooled_w1(a, b, bins=64) - exact) > width  # coarse bins do move it: the bound is real


def test_joint_minmax_uses_one_range_for_both():
    a, b = joint_minmax(np.array([1.0, 2.0]), np.array([3.0, 5.0]))
    np.testing.assert_allclose(a, [0.0, 0.25])
    np.testing.assert_allclose(b, [0.5, 1.0])


def test_standardised_patches():
    x = np.arange(2 * 5 * 6, dtype=float).reshape(2, 5, 6)
    p = standardised_patches(x, 2)
    assert p.shape == (2 * 2 * 3, 4)  # the last row (5 // 2 = 2) is dropped
    np.testing.assert_allclose(p.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(p.std(axis=1), 1, atol=1e-12)
    # The first patch holds x[0, 0:2, 0:2] = 0, 1, 6, 7, z-scored.
    raw = np.array([0.0, 1.0, 6.0, 7.0])
    np.testing.assert_allclose(p[0], (raw - raw.mean()) / raw.std())
    assert (standardised_patches(np.ones((1, 4, 4)), 2) == 0).all()


def test_sliced_w_zero_for_same_texture_positive_for_different():
    rng = np.random.default_rng(1)
    rough = rng.normal(size=(20, 16, 16))
    # Same texture at another level and scale: standardised patches are identical.
    assert sliced_w(rough, 3 * rough + 7, 4, 32, [0, 1], 10_000) == pytest.approx([0.0, 0.0], abs=1e-9)
    smooth = np.cumsum(np.cumsum(rng.normal(size=(20, 16, 16)), axis=1), axis=2)
    values = sliced_w(rough, smooth, 4, 32, [0, 1, 2], 10_000)
    assert (values > 0.1).all() and values.std() > 0  # seeds give a spread


def test_analyse_recovers_a_known_log_shift():
    days = pd.date_range("2001-01-01", "2001-12-31")
    rng = np.random.default_rng(2)
    log_fine = rng.uniform(-3, -1, size=(days.size, 8, 8))
    log_fine[0, 0, 0], log_fine[0, 0, 1] = -3.0, -1.0  # pin the joint range: -3 .. -0.9
    fine, coarse = 10 ** log_fine, 10 ** (log_fine + 0.1)
    results = analyse(fine, days, coarse, days, {"DJF": [12, 1, 2], "JJA": [6, 7, 8]}, True, 1e-6, 4, 16, [0, 1], 1000)
    assert [r.season for r in results] == ["DJF", "JJA", "all"]
    expected = 0.1 / 2.1  # the shift in log10 over the joint range
    for r in results:
        np.testing.assert_allclose(r.per_day, expected, rtol=1e-9)
        np.testing.assert_allclose(r.pixel_map, expected, rtol=1e-9)
        assert r.pooled == pytest.approx(expected, abs=1e-6)  # histogram pooled: one bin width
        np.testing.assert_allclose(r.sliced, 0.0, atol=1e-9)  # a level shift leaves the texture alone
    df = table("area0", results)
    assert list(df.columns) == COLUMNS and df.loc[2, "days"] == 365 and df.loc[0, "days"] == 31 + 28 + 31
    assert df.loc[2, "median"] == pytest.approx(expected)


def test_analyse_refuses_fine_days_missing_from_the_coarse_record():
    days = pd.date_range("2001-01-01", periods=10)
    x = np.ones((10, 4, 4))
    with pytest.raises(ValueError, match="lacks 1 fine day"):
        analyse(x, days, x[:9], days[:9], {"w": [1]}, True, 1e-6, 2, 4, [0], 100)


def test_float32_records_give_the_float64_distances():
    rng = np.random.default_rng(3)
    days = pd.date_range("2001-01-01", periods=20)
    fine = np.exp(rng.normal(-4, 1, size=(20, 8, 8)))
    coarse = np.exp(rng.normal(-3.8, 0.5, size=(20, 8, 8)))
    args = ({"w": [1]}, True, 1e-6, 4, 8, [0], 100)
    r64 = analyse(fine, days, coarse, days, *args)[0]
    r32 = analyse(fine.astype(np.float32), days, coarse.astype(np.float32), days, *args)[0]
    np.testing.assert_allclose(r32.per_day, r64.per_day, rtol=1e-4)
    assert r32.pooled == pytest.approx(r64.pooled, rel=1e-4)


def test_pooled_distance_of_a_million_float32_values_is_exact():
    rng = np.random.default_rng(4)
    a = rng.random(1_000_000).astype(np.float32)
    b = a + np.float32(0.05)  # a pure shift: W1 = 0.05
    assert pooled_w1(a, b) == pytest.approx(0.05, rel=1e-5)


def _record_files(tmp_path, years: int, seed: int = 5):
    """fine.nc (Feb 2001 - Jan 2002) and coarse_on_fine.nc (``years`` from 2000) on a 24 x 24 grid, as rule split_region writes them."""
    from diffscale.core import io

    rng = np.random.default_rng(seed)
    lat, lon = np.linspace(30, 31.5, 24), np.linspace(60, 61.5, 24)
    fine_days = pd.date_range("2001-02-01", "2002-01-31")
    coarse_days = pd.date_range("2000-01-01", f"{2000 + years - 1}-12-31")
    coarse = np.exp(rng.normal(-3.8, 0.5, size=(coarse_days.size, 24, 24))).astype(np.float32)
    fine = (coarse[coarse_days.get_indexer(fine_days)] * np.exp(rng.normal(0, 0.3, size=(fine_days.size, 24, 24)))
            ).astype(np.float32)
    paths = {}
    for name, values, days in (("fine", fine, fine_days), ("coarse_on_fine", coarse, coarse_days)):
        paths[name] = io.write_netcdf(io.field_dataset(values, days, lat, lon, "AOD", {"units": "1"}),
                                      tmp_path / f"{name}.nc", chunks={"time": 1})
    return paths, (fine, fine_days, coarse, coarse_days)


SEASONS = {"DJF": [12, 1, 2], "JJA": [6, 7, 8]}


def test_the_files_coarse_record_read_in_slabs_gives_the_in_memory_distances_to_the_bit(tmp_path):
    from diffscale.data.domain import analyse_files

    paths, (fine, fine_days, coarse, coarse_days) = _record_files(tmp_path, 4)
    args = (SEASONS, True, 1e-6, 8, 16, [0, 1], 200)
    streamed = analyse_files(str(paths["fine"]), str(paths["coarse_on_fine"]), "AOD", "r", *args,
                             str(tmp_path / "w.csv"))[0]
    held = analyse(fine, fine_days, coarse, coarse_days, *args)
    assert [r.season for r in streamed] == ["DJF", "JJA", "all"]
    for a, b in zip(streamed, held):
        assert a.pooled == b.pooled and np.array_equal(a.per_day, b.per_day)
        assert np.array_equal(a.pixel_map, b.pixel_map) and np.array_equal(a.sliced, b.sliced)
    # the pooled distance really is the whole record's: other than the fine days' alone
    alone = analyse(fine, fine_days, coarse[coarse_days.get_indexer(fine_days)], fine_days, *args)
    assert all(a.pooled != b.pooled for a, b in zip(streamed, alone))


def test_the_domain_rules_memory_does_not_grow_with_the_coarse_records_length(tmp_path):
    """Nine years of coarse record cost what three cost: the rule holds the fine record and slabs of the coarse one."""
    import tracemalloc

    from diffscale.data.domain import analyse_files

    peaks = {}
    for years in (3, 9):
        (tmp_path / str(years)).mkdir()
        paths = _record_files(tmp_path / str(years), years)[0]
        tracemalloc.start()
        analyse_files(str(paths["fine"]), str(paths["coarse_on_fine"]), "AOD", "r", SEASONS, True, 1e-6, 8, 16, [0],
                      200, str(tmp_path / f"{years}.csv"))
        peaks[years] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    six_years = 6 * 365 * 24 * 24 * 4  # bytes of the longer record's extra float32 values
    assert peaks[9] - peaks[3] < 0.1 * six_years, peaks  # holding the record would add them once at least
