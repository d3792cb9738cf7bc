"""The paper's diagnostics on cases with known answers."""

import numpy as np
import pandas as pd
import pytest
from statsmodels.tsa.stattools import acf as sm_acf, pacf as sm_pacf

from diffscale.core.metrics import SLAB_DAYS
from diffscale.evaluation import diagnostics as dg


def test_haversine_one_degree_of_latitude_is_111_km():
    assert dg.haversine_km(0.0, 0.0, 1.0, 0.0) == pytest.approx(111.19, abs=0.01)
    # A degree of longitude shrinks with cos(lat).
    assert dg.haversine_km(60.0, 0.0, 60.0, 1.0) == pytest.approx(111.19 * 0.5, rel=1e-3)


def test_white_noise_variogram_is_flat_at_the_variance():
    rng = np.random.default_rng(0)
    lat = np.arange(30, 36, 0.0625)
    lon = np.arange(60, 66, 0.0625)
    fields = 2.0 * rng.normal(size=(10, lat.size, lon.size))  # variance 4
    v = dg.semivariogram(fields, lat, lon, n_pairs=20000, max_km=600, n_bins=24)
    ok = v["pairs"] > 2000
    assert ok.sum() >= 10
    assert np.allclose(v["gamma"][ok], 4.0, rtol=0.1)
    # Distances beyond the region's diagonal (~900 km here) are empty only past it.
    assert v["distance"].size == 24 and v["distance"][-1] < 600


def test_spherical_fit_recovers_a_known_model():
    h = np.linspace(12.5, 587.5, 24)
    gamma = dg.spherical(h, 0.1, 0.5, 300.0)
    fit = dg.fit_spherical(h, gamma, np.full(h.size, 1000))
    assert fit["nugget"] == pytest.approx(0.1, abs=1e-3)
    assert fit["sill"] == pytest.approx(0.6, abs=1e-3)
    assert fit["range_km"] == pytest.approx(300.0, rel=1e-2)


def test_smooth_field_variogram_rises_with_distance():
    lat = np.arange(30, 34, 0.0625)
    lon = np.arange(60, 64, 0.0625)
    field = np.sin(np.deg2rad(lat))[:, None] * 50 + 0 * lon[None, :]
    v = dg.semivariogram(field, lat, lon, max_km=400, n_bins=8)
    g = v["gamma"][np.isfinite(v["gamma"])]
    assert np.all(np.diff(g) > 0)


def _ar1(phi: float, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.zeros(n)
    for t in range(1, n):
        x[t] = phi * x[t - 1] + rng.normal()
    return x


def test_acf_and_pacf_of_an_ar1_series():
    x = _ar1(0.7, 20000, 1)
    times = pd.date_range("2000-01-01", periods=x.size, freq="D")
    acf, pacf = dg.acf_pacf(dg.daily_series(x, times), nlags=30)
    assert acf.size == 31 and acf[0] == 1.0
    assert np.allclose(acf[1:5], 0.7 ** np.arange(1, 5), atol=0.03)
    assert pacf[1] == pytest.approx(0.7, abs=0.03)
    assert np.all(np.abs(pacf[2:]) < 0.05)
    # Without gaps it is statsmodels' adjusted ACF, and the PACF its Yule-Walker PACF of that ACF.
    assert np.allclose(acf, sm_acf(x, nlags=30, adjusted=True, fft=False))
    assert np.allclose(pacf, sm_pacf(x, nlags=30, method="ywadjusted"), atol=1e-8)


def test_acf_skips_gaps_instead_of_joining_seasons():
    # Many short AR(1) seasons (5 days, phi 0.8) 40 days apart. Joined end to end, a fifth of
    # the lag-1 pairs would be unrelated days and the ACF would read 0.64; on the calendar it is 0.8.
    rng = np.random.default_rng(0)
    phi, values, times = 0.8, [], []
    for b in range(3000):
        x = np.zeros(5)
        x[0] = rng.normal() / np.sqrt(1 - phi**2)
        for t in range(1, 5):
            x[t] = phi * x[t - 1] + rng.normal()
        values.append(x)
        times.append(pd.date_range(pd.Timestamp("2000-01-01") + pd.Timedelta(days=40 * b), periods=5))
    series = dg.daily_series(np.concatenate(values), times[0].append(times[1:]))
    acf, pacf = dg.acf_pacf(series, nlags=6)
    assert acf[1] == pytest.approx(0.8, abs=0.03)
    assert acf[2] == pytest.approx(0.64, abs=0.04)
    assert pacf[1] == pytest.approx(0.8, abs=0.03) and abs(pacf[2]) < 0.06
    assert np.isnan(acf[5]) and np.isnan(acf[6])  # no pair of days 5 or 6 apart exists


def test_acf_needs_enough_pairs_and_pacf_stops_where_it_is_undefined():
    # Pairs two days apart exist only 3 times here: too few for an estimate.
    times = pd.to_datetime(["2000-01-01", "2000-01-03", "2000-02-01", "2000-02-03", "2000-03-01", "2000-03-03"])
    acf, _ = dg.acf_pacf(dg.daily_series(np.arange(6.0), times), nlags=3, min_pairs=4)
    assert np.isnan(acf[1]) and np.isnan(acf[2])
    # Two short random walks 30 days apart: their pairwise ACF is not positive definite at
    # lag 14 (the raw recursion gives a PACF of -3.9 there); the PACF is cut from that lag.
    rng = np.random.default_rng(0)
    t = pd.date_range("2000-01-01", periods=20).append(pd.date_range("2000-01-31", periods=20))
    x = np.concatenate([np.cumsum(rng.normal(size=20)), np.cumsum(rng.normal(size=20))])
    acf, pacf = dg.acf_pacf(dg.daily_series(x, t), nlags=15, min_pairs=2)
    from statsmodels.tsa.stattools import levinson_durbin
    raw = levinson_durbin(acf, nlags=15, isacov=True)[2]
    assert abs(raw[14]) >= 1 and np.all(np.abs(raw[1:14]) < 1)
    assert np.allclose(pacf[:14], raw[:14]) and np.isnan(pacf[14:]).all()


def test_semivariogram_read_in_slabs_of_days_pools_every_day():
    """More days than one slab: the same pairs, counts and (to rounding) squared differences as all days at once."""
    rng = np.random.default_rng(1)
    lat, lon = np.linspace(30, 34, 21), np.linspace(60, 65, 26)
    fields = rng.normal(size=(2 * SLAB_DAYS + 7, 21, 26)).cumsum(axis=2)
    fields[3, 4, 5] = np.nan
    got = dg.semivariogram(fields, lat, lon, n_pairs=3000, max_km=400, n_bins=8, seed=2)
    pick = np.random.default_rng(2)
    a, b = pick.integers(0, 21 * 26, 3000), pick.integers(0, 21 * 26, 3000)
    a, b = a[a != b], b[a != b]
    glat, glon = np.meshgrid(lat, lon, indexing="ij")
    d = dg.haversine_km(glat.ravel()[a], glon.ravel()[a], glat.ravel()[b], glon.ravel()[b])
    which = np.digitize(d, np.linspace(0, 400, 9)[1:-1])
    flat = fields.reshape(len(fields), -1)
    sq = (flat[:, a] - flat[:, b]) ** 2
    valid = np.isfinite(sq) & (d < 400)[None]
    counts = np.bincount(np.broadcast_to(which, sq.shape)[valid], minlength=8)
    gamma = 0.5 * np.bincount(np.broadcast_to(which, sq.shape)[valid], sq[valid], minlength=8) / counts
    assert np.array_equal(got["pairs"], counts)
    np.testing.assert_allclose(got["gamma"], gamma, rtol=1e-12)


def test_lag_curves_read_in_slabs_of_pairs_are_those_of_all_pairs_at_once():
    """Two DJF seasons: pairs never cross the gap, and the slabs' sums give the whole's RMSE and R2."""
    rng = np.random.default_rng(0)
    times = pd.DatetimeIndex([*pd.date_range("2000-12-01", "2001-02-28"), *pd.date_range("2001-12-01", "2002-02-28")])
    fields = rng.normal(size=(len(times), 7, 9)).cumsum(axis=0)
    fields[5, 3, 3] = np.nan
    curves = dg.lag_curves(fields, times, lags=range(1, 4))
    assert len(times) - 2 > SLAB_DAYS  # more pairs than one slab
    for i, lag in enumerate(range(1, 4)):
        now = np.concatenate([fields[lag:90], fields[90 + lag:]])
        before = np.concatenate([fields[:90 - lag], fields[90:-lag]])
        ok = np.isfinite(now) & np.isfinite(before)
        y, p = now[ok], before[ok]
        assert curves["pairs"][i] == 2 * (90 - lag)
        assert curves["rmse"][i] == pytest.approx(np.sqrt(np.mean((y - p) ** 2)), rel=1e-12)
        assert curves["r2"][i] == pytest.approx(1 - np.sum((y - p) ** 2) / np.sum((y - y.mean()) ** 2), rel=1e-12)


def test_area_mean_series_and_lag_curves():
    rng = np.random.default_rng(4)
    times = pd.to_datetime(["2001-01-01", "2001-01-02", "2001-01-03", "2001-01-05"])
    fields = rng.normal(size=(4, 3, 3))
    s = dg.area_mean_series(fields, times)
    assert len(s) == 5 and np.isnan(s["2001-01-04"]) and s.iloc[0] == pytest.approx(fields[0].mean())
    curves = dg.lag_curves(fields, times, lags=range(1, 4))
    # lag 1: (2->1), (3->2); lag 2: (3->1), (5->3); lag 3: (5->2)
    assert list(curves["pairs"]) == [2, 2, 1]
    expected = np.sqrt(np.mean((fields[3] - fields[1]) ** 2))
    assert curves["rmse"][2] == pytest.approx(expected)
    # A frozen field is its own perfect persistence forecast.
    frozen = np.repeat(fields[:1], 4, axis=0)
    assert np.allclose(dg.lag_curves(frozen, times, lags=range(1, 4))["rmse"], 0.0)


def test_area_mean_series_reads_slabs_and_skips_gaps_where_they_are():
    rng = np.random.default_rng(5)
    times = pd.date_range("2001-01-01", periods=2 * SLAB_DAYS + 3)
    fields = rng.normal(size=(len(times), 4, 5))
    fields[SLAB_DAYS + 1, 2, 2] = np.nan  # one slab NaN-aware, the others plain means
    np.testing.assert_array_equal(dg.area_mean_series(fields, times).values, np.nanmean(fields, axis=(1, 2)))


def test_days_from_record_and_drift_trend():
    times = pd.to_datetime(["2000-12-30", "2000-12-31", "2002-03-01", "2002-03-03"])
    d = dg.days_from_record(times, ("2001-01-01", "2002-02-28"))
    assert list(d) == [-2, -1, 1, 3]
    # Error that grows by 0.1 per day of lead: slope 36.5 per year.
    rng = np.random.default_rng(5)
    days = pd.date_range("2002-03-01", periods=20, freq="D")
    truth = rng.normal(size=(20, 4, 4))
    pred = truth + (0.1 * np.arange(1, 21))[:, None, None]
    df = dg.drift(truth, pred, days, ("2001-01-01", "2002-02-28"))
    assert list(df["days_from_record"]) == list(range(1, 21))
    assert df["rmse"].to_numpy() == pytest.approx(0.1 * np.arange(1, 21))
    assert df.attrs["trend_rmse_per_year"] == pytest.approx(36.525)
