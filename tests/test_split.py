"""Split: seeded day lists without leakage, the scaler, and the region files of the contract."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from diffscale.core import io as dio
from diffscale.core.grids import Box, g5nr_grid
from diffscale.core.days import DaySplit
from diffscale.core.transform import Scaler
from diffscale.data.split import fit_scaler, make_split, static_fields, write_region

FINE = ("2001-03-01", "2002-02-28")
COARSE = ("2000-01-01", "2003-12-31")
DJF = (12, 1, 2)


def split(seed=0, history=8, months=DJF, **kw):
    args = dict(buffer_days=45, test_fraction=0.1, val_fraction=0.1) | kw
    return make_split(months, FINE, COARSE, seed=seed, history=history, **args)


def test_day_lists_follow_the_contract():
    s = split()
    days = pd.date_range(*FINE)
    assert s.core.equals(days[days.month.isin(DJF)])  # Dec 2001 + Jan/Feb 2002 (Jan/Feb 2001 are outside)
    assert s.core.size == 31 + 31 + 28
    assert s.test.size == 9 and s.val.size == 9
    assert set(s.test) <= set(s.core) and set(s.val) <= set(s.core) and not set(s.test) & set(s.val)
    assert s.pool.min() == pd.Timestamp("2001-12-01") - pd.Timedelta(days=45)
    assert set(s.core) <= set(s.pool) and s.pool.max() <= pd.Timestamp(FINE[1])
    assert set(s.train) <= set(s.pool) and not set(s.train) & (set(s.test) | set(s.val))
    beyond = pd.date_range(*COARSE)
    beyond = beyond[beyond.month.isin(DJF) & ((beyond < FINE[0]) | (beyond > FINE[1]))]
    assert s.beyond.equals(beyond)


@pytest.mark.parametrize("history", [1, 8, 40])
def test_no_training_window_holds_a_test_day(history):
    s = split(history=history)
    test = set(s.test)
    for day in s.train:
        window = {day - pd.Timedelta(days=k) for k in range(1, history + 1)}
        assert not window & test, f"{day.date()} sees a test day in its history"
    # and only those days were dropped: every other non-test, non-val pool day trains
    dropped = set(s.pool) - set(s.train) - test - set(s.val)
    assert all(any(d - pd.Timedelta(days=k) in test for k in range(1, history + 1)) for d in dropped)


def test_same_seed_same_split_other_seed_other_test_days():
    a, b, c = split(seed=3), split(seed=3), split(seed=4)
    for name in ("core", "pool", "train", "val", "test", "beyond"):
        assert getattr(a, name).equals(getattr(b, name))
    assert not a.test.equals(c.test)


def test_day_lists_json_round_trip(tmp_path):
    s = split()
    s.to_json(tmp_path / "days.json")
    data = json.loads((tmp_path / "days.json").read_text())
    assert sorted(data) == sorted(["core", "pool", "train", "val", "test", "beyond"])
    assert data["test"][0] == s.test[0].strftime("%Y-%m-%d")
    back = DaySplit.from_json(tmp_path / "days.json")
    assert back.train.equals(s.train) and back.beyond.equals(s.beyond)


def test_season_outside_the_fine_period_is_refused():
    with pytest.raises(ValueError, match="inside data.fine_period"):
        make_split([6], ("2001-01-01", "2001-03-31"), COARSE, 45, 0.1, 0.1, 0, 8)


def test_scaler_forward_inverse_and_json(tmp_path):
    x = np.array([1e-9, 1e-4, 1e-2, 0.5])
    s = Scaler.fit(x, log10=True, floor=1e-6)
    assert (s.lo, s.hi) == pytest.approx((-6.0, np.log10(0.5)))
    y = s.forward(x)
    assert y.min() == pytest.approx(0.0) and y.max() == pytest.approx(1.0)
    np.testing.assert_allclose(s.inverse(y), np.maximum(x, 1e-6), rtol=1e-12)
    s.to_json(tmp_path / "scaler.json")
    assert Scaler.from_json(tmp_path / "scaler.json") == s
    lin = Scaler.fit(x, log10=False, floor=1e-6)
    np.testing.assert_allclose(lin.inverse(lin.forward(x)), x, rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match="constant"):
        Scaler.fit(np.ones(4), log10=True, floor=1e-6)


def _fine_file(path, days, rng, value_for=None):
    grid = g5nr_grid(Box((33.0, 33.5), (64.0, 64.5)))
    data = np.exp(rng.normal(-4, 1, size=(days.size, *grid.shape))).astype(np.float32)
    if value_for is not None:
        for day, value in value_for.items():
            data[days.get_loc(day)] = value
    dio.write_netcdf(dio.field_dataset(data, days, grid.lat, grid.lon, "DUEXTTAU", {"units": "1"}), path)


def test_scaler_never_sees_test_days(tmp_path):
    s = split()
    days = pd.date_range(*FINE)
    _fine_file(tmp_path / "a.nc", days, np.random.default_rng(1))
    # The same data but every test day (and every val day) set to extremes.
    extremes = {d: (10.0 if i % 2 else 1e-12) for i, d in enumerate(s.test.append(s.val))}
    _fine_file(tmp_path / "b.nc", days, np.random.default_rng(1), extremes)
    a = fit_scaler(tmp_path / "a.nc", "DUEXTTAU", s.train, True, 1e-6)
    b = fit_scaler(tmp_path / "b.nc", "DUEXTTAU", s.train, True, 1e-6)
    assert a == b
    # ...while changing one training day does move it (the test can fail).
    _fine_file(tmp_path / "c.nc", days, np.random.default_rng(1), {s.train[0]: 10.0})
    assert fit_scaler(tmp_path / "c.nc", "DUEXTTAU", s.train, True, 1e-6) != a


def _raw(tmp_path, start, end):
    """Monthly fine files on a grid larger than the region, coarse-on-fine files on the region grid."""
    box = Box((33.0, 33.5), (64.0, 64.5))
    big = g5nr_grid(box.padded(0.25))
    region = g5nr_grid(box)
    days = pd.date_range(start, end)
    t = np.arange(days.size, dtype=np.float32)[:, None, None]
    fine = (1 + t + big.lat[None, :, None] * 0 + big.lon[None, None, :] * 0).astype(np.float32)
    dio.write_monthly(dio.field_dataset(fine, days, big.lat, big.lon, "DUEXTTAU", {"units": "1", "long_name": "dust"}),
                      tmp_path / "fine")
    coarse = np.broadcast_to(-t, (days.size, *region.shape)).astype(np.float32)
    dio.write_monthly(dio.field_dataset(coarse, days, region.lat, region.lon, "DUEXTTAU", {"units": "1"}),
                      tmp_path / "cof")
    elev = np.add.outer(big.lat, big.lon).astype(np.float32)
    dio.write_netcdf(dio.field_dataset(elev, None, big.lat, big.lon, "elevation", {"units": "m"}), tmp_path / "elev.nc")
    return box, region


def test_write_region_contract_files(tmp_path):
    box, region = _raw(tmp_path, "2000-01-01", "2000-04-30")
    fine_period, coarse_period = ("2000-02-01", "2000-02-29"), ("2000-01-01", "2000-04-30")
    out = {k: str(tmp_path / "split" / f"{k}.nc") for k in ("fine", "coarse_on_fine", "elevation", "truth")}
    counts = write_region(box, "DUEXTTAU", sorted(map(str, (tmp_path / "fine").glob("*.nc"))),
                          sorted(map(str, (tmp_path / "cof").glob("*.nc"))), {"elevation": str(tmp_path / "elev.nc")},
                          fine_period, coarse_period, out["fine"], out["coarse_on_fine"], {"elevation": out["elevation"]},
                          out["truth"])
    assert counts == {"fine": 29, "coarse_on_fine": 121, "truth": 121 - 29}
    fine = dio.read_field(out["fine"], "DUEXTTAU")
    assert fine.shape == (29, *region.shape) and fine.attrs["units"] == "1"
    np.testing.assert_array_equal(fine.lat.values, region.lat)
    assert pd.Timestamp(fine.time.values[0]) == pd.Timestamp("2000-02-01")
    np.testing.assert_array_equal(fine.values[:, 0, 0], 1 + np.arange(31, 60))  # day index + 1
    cof = dio.read_field(out["coarse_on_fine"], "DUEXTTAU")
    assert cof.sizes["time"] == 121 and float(cof[-1, 0, 0]) == -120
    truth = dio.read_field(out["truth"], "DUEXTTAU")
    times = pd.DatetimeIndex(truth.time.values)
    assert not ((times >= "2000-02-01") & (times <= "2000-02-29")).any() and times.size == 92
    elev = dio.read_field(out["elevation"], "elevation", dims=("lat", "lon"))
    np.testing.assert_allclose(elev.values, np.add.outer(region.lat, region.lon), rtol=1e-6)
    assert static_fields(out["fine"]) == ("elevation",)  # what the models will condition on


def test_truth_where_held_keeps_only_the_days_the_fine_files_hold(tmp_path):
    # The user's fine files (source local) reach 10 days past the fine period, not the whole coarse period.
    box, region = _raw(tmp_path, "2000-01-01", "2000-04-30")
    for month in ("2000-01", "2000-04"):
        (tmp_path / "fine" / f"{month}.nc").unlink()
    march = dio.open_dataset(tmp_path / "fine/2000-03.nc").isel(time=slice(0, 10)).load()
    dio.write_netcdf(march, tmp_path / "fine/2000-03.nc")
    fine_paths = sorted(map(str, (tmp_path / "fine").glob("*.nc")))
    args = (box, "DUEXTTAU", fine_paths, sorted(map(str, (tmp_path / "cof").glob("*.nc"))), {},
            ("2000-02-01", "2000-02-29"), ("2000-01-01", "2000-04-30"),
            *(str(tmp_path / "split" / f"{k}.nc") for k in ("fine", "coarse_on_fine")), {},
            str(tmp_path / "split" / "truth.nc"))
    with pytest.raises(dio.DataValidationError, match="lacks 82 of the 92 days"):
        write_region(*args)  # the twin's contract: every day outside the fine period
    assert write_region(*args, truth_where_held=True)["truth"] == 10
    # No static field given: none written, and fine.nc says so.
    assert static_fields(tmp_path / "split/fine.nc") == () and not (tmp_path / "split/elevation.nc").exists()
    truth = dio.read_field(tmp_path / "split/truth.nc", "DUEXTTAU")
    assert list(pd.DatetimeIndex(truth.time.values)) == list(pd.date_range("2000-03-01", "2000-03-10"))
    np.testing.assert_array_equal(truth.values[:, 0, 0], 1 + np.arange(60, 70))  # day index + 1, no NaN days
    march.close()


def test_write_region_refuses_a_short_fine_record(tmp_path):
    box, _ = _raw(tmp_path, "2000-01-01", "2000-02-29")
    with pytest.raises(dio.DataValidationError, match=r"fine/2000-01.nc: .* lacks 31 of the 60 days"):
        write_region(box, "DUEXTTAU", sorted(map(str, (tmp_path / "fine").glob("*.nc"))),
                     sorted(map(str, (tmp_path / "cof").glob("*.nc"))), {"elevation": str(tmp_path / "elev.nc")},
                     ("2000-02-01", "2000-03-31"), ("2000-01-01", "2000-02-29"),
                     str(tmp_path / "f.nc"), str(tmp_path / "c.nc"), {"elevation": str(tmp_path / "e.nc")})
    assert not (tmp_path / "f.nc").exists() and not list(tmp_path.glob(".f.nc*"))  # no half-written file


def test_broken_scaler_and_day_files_name_the_file(tmp_path):
    (tmp_path / "scaler.json").write_text('{"log10": true, "floor": 1e-6, "lo": 0.0}')
    with pytest.raises(dio.DataValidationError, match=r"scaler.json.*'hi'"):
        Scaler.from_json(tmp_path / "scaler.json")
    (tmp_path / "days.json").write_text("{not json")
    with pytest.raises(dio.DataValidationError, match="days.json: not valid JSON"):
        DaySplit.from_json(tmp_path / "days.json")


def test_write_region_refuses_nan_in_the_coarse_record(tmp_path):
    box, region = _raw(tmp_path, "2000-01-01", "2000-01-31")
    cof = dio.open_dataset(tmp_path / "cof/2000-01.nc")
    cof["DUEXTTAU"].values[3, 0, 0] = np.nan  # a coarse cell the regridding could not fill
    dio.write_netcdf(cof, tmp_path / "cof/2000-01.nc")
    with pytest.raises(dio.DataValidationError, match="missing values inside the region on 1 day.*margin_deg"):
        write_region(box, "DUEXTTAU", [str(tmp_path / "fine/2000-01.nc")], [str(tmp_path / "cof/2000-01.nc")],
                     {"elevation": str(tmp_path / "elev.nc")}, ("2000-01-10", "2000-01-20"), ("2000-01-01", "2000-01-31"),
                     str(tmp_path / "f.nc"), str(tmp_path / "c.nc"), {"elevation": str(tmp_path / "e.nc")})
    assert not (tmp_path / "c.nc").exists()
