"""The paper's spatial and temporal diagnostics of a daily record of fields.

These compare statistics rather than day-by-day values, so they also judge a
reconstruction where no truth exists (beyond the fine record, against the statistics
of the fine record itself):

* semivariogram gamma(h) = 0.5 E[(Z(s) - Z(s+h))^2] from random pixel pairs, haversine
  distance, 24 bins up to 600 km, with a spherical model fit;
* ACF and PACF (30 lags) of the area-mean daily series, on the calendar: gaps between
  seasons' days are missing values, never joined into false neighbours (the PACF by
  statsmodels' Durbin-Levinson recursion);
* lag persistence curves: RMSE and R2 between the field on day t and on day t - lag;
* drift: daily RMSE/R2 against the distance in days from the fine record.

Fields are (T, Y, X) in metric space (see diffscale.evaluation.scores); ``times`` are daily dates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import curve_fit
from statsmodels.tsa.stattools import acf, levinson_durbin

from diffscale.core import steps
from diffscale.core.metrics import SLAB_DAYS

EARTH_RADIUS_KM = 6371.0088


def haversine_km(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    """Great-circle distance in km between points given in degrees."""
    p1, p2 = np.deg2rad(lat1), np.deg2rad(lat2)
    dp, dl = p2 - p1, np.deg2rad(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def semivariogram(fields: np.ndarray, lat: np.ndarray, lon: np.ndarray, n_pairs: int = 20000,
                  max_km: float = 600.0, n_bins: int = 24, seed: int = 0) -> dict[str, np.ndarray]:
    """Empirical semivariogram pooled over days, from the same random pixel pairs every day.

    fields (T, Y, X) or (Y, X), read SLAB_DAYS days at a time. Returns {"distance": bin
    centres (km), "gamma": (n_bins,), "pairs": valid squared differences per bin}; bins with
    no pair hold NaN.
    """
    f = np.asarray(fields, dtype=np.float64)
    if f.ndim == 2:
        f = f[None]
    _, ny, nx = f.shape
    rng = np.random.default_rng(seed)
    a = rng.integers(0, ny * nx, size=n_pairs)
    b = rng.integers(0, ny * nx, size=n_pairs)
    keep = a != b
    a, b = a[keep], b[keep]
    glat, glon = np.meshgrid(np.asarray(lat, float), np.asarray(lon, float), indexing="ij")
    d = haversine_km(glat.ravel()[a], glon.ravel()[a], glat.ravel()[b], glon.ravel()[b])
    edges = np.linspace(0.0, max_km, n_bins + 1)
    which = np.digitize(d, edges[1:-1])
    inside = d < max_km
    flat = f.reshape(f.shape[0], -1)
    sums, counts = np.zeros(n_bins), np.zeros(n_bins, dtype=np.int64)
    for start in range(0, flat.shape[0], SLAB_DAYS):  # days at a time: (T, pairs) of 23 years is GBs
        sq = (flat[start:start + SLAB_DAYS, a] - flat[start:start + SLAB_DAYS, b]) ** 2  # (days, pairs)
        valid = np.isfinite(sq) & inside[None]
        sums += np.bincount(np.broadcast_to(which, sq.shape)[valid], weights=sq[valid], minlength=n_bins)
        counts += np.bincount(np.broadcast_to(which, sq.shape)[valid], minlength=n_bins)
    with np.errstate(invalid="ignore"):
        gamma = 0.5 * sums / counts
    return {"distance": 0.5 * (edges[1:] + edges[:-1]), "gamma": gamma, "pairs": counts}


def spherical(h: np.ndarray, nugget: float, psill: float, range_km: float) -> np.ndarray:
    """Spherical variogram model: nugget + psill (1.5 h/a - 0.5 (h/a)^3) up to the range a, then the sill."""
    r = np.minimum(np.asarray(h, dtype=np.float64) / range_km, 1.0)
    return nugget + psill * (1.5 * r - 0.5 * r**3)


def fit_spherical(distance: np.ndarray, gamma: np.ndarray, pairs: np.ndarray | None = None) -> dict[str, float]:
    """Least-squares spherical fit (weighted by pair counts) -> nugget, psill, sill, range_km."""
    ok = np.isfinite(gamma)
    h, g = np.asarray(distance)[ok], np.asarray(gamma)[ok]
    nan = {"nugget": float("nan"), "psill": float("nan"), "sill": float("nan"), "range_km": float("nan")}
    if h.size < 3:
        return nan
    sigma = None if pairs is None else 1.0 / np.sqrt(np.maximum(np.asarray(pairs)[ok], 1))
    top = float(np.max(g))
    p0 = [max(float(g[0]) * 0.5, 0.0), max(top - float(g[0]) * 0.5, 1e-12), float(h[len(h) // 2])]
    bounds = ([0.0, 0.0, 1e-3], [max(top, 1e-12) * 2, max(top, 1e-12) * 2, float(h.max()) * 10])
    try:
        (nugget, psill, rng_km), _ = curve_fit(spherical, h, g, p0=p0, sigma=sigma, bounds=bounds, maxfev=20000)
    except (RuntimeError, ValueError):
        return nan
    return {"nugget": float(nugget), "psill": float(psill), "sill": float(nugget + psill), "range_km": float(rng_km)}


def daily_series(values: np.ndarray, times: pd.DatetimeIndex, step: str = "day") -> pd.Series:
    """Values per step (day, month or year) on the full calendar from the first to the last, NaN where absent."""
    times = pd.DatetimeIndex(times).normalize()
    s = pd.Series(np.asarray(values, dtype=np.float64), index=times)
    return s.reindex(steps.in_period(times.min(), times.max(), step))


def area_mean_series(fields: np.ndarray, times: pd.DatetimeIndex, step: str = "day") -> pd.Series:
    """Area mean of (T, Y, X) fields per step, on the full calendar (gaps = NaN).

    A slab of days at a time, NaN-aware only where a slab has NaN: ``np.nanmean`` copies its
    input whole (2.6 GB for a season of area1 over 23 years).
    """
    f = np.asarray(fields)
    means = np.empty(len(f))
    for start in range(0, len(f), SLAB_DAYS):
        slab = np.asarray(f[start:start + SLAB_DAYS], dtype=np.float64)
        mean = np.nanmean if np.isnan(slab).any() else np.mean
        means[start:start + SLAB_DAYS] = mean(slab, axis=(1, 2))
    return daily_series(means, times, step)


def acf_pacf(series: pd.Series, nlags: int = 30, min_pairs: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """ACF of a daily series with gaps, and the PACF derived from it.

    The ACF is statsmodels' ``acf(adjusted=True, missing="conservative")``: for each lag
    the products of the centred values are averaged over the pairs of days that are both
    present, so the gaps between seasons are never joined into false neighbours and never
    dilute the correlation. The PACF follows by statsmodels' Durbin-Levinson recursion
    (the Yule-Walker PACF). Both arrays have nlags + 1 values, lag 0 first. Lags with
    fewer than ``min_pairs`` pairs of days are NaN, and so is the PACF from the first lag
    where it is undefined (a pairwise ACF over gaps need not be positive definite; the
    recursion then gives |PACF| >= 1).
    """
    x = np.asarray(series, dtype=np.float64)
    valid = np.isfinite(x)
    rho = np.full(nlags + 1, np.nan)
    lags = min(nlags, x.size - 1)
    if lags >= 0 and valid.sum() >= 2 and np.nanvar(x) > 0:
        rho[: lags + 1] = acf(x, nlags=lags, adjusted=True, missing="conservative", fft=False)
        pairs = np.array([np.sum(valid[k:] & valid[: x.size - k]) for k in range(lags + 1)])
        rho[: lags + 1][pairs < max(min_pairs, 2)] = np.nan
    finite = np.isfinite(rho)
    n_ok = int(np.argmin(finite)) if not finite.all() else rho.size
    pacf = np.full(rho.shape, np.nan)
    if n_ok >= 2:
        pacf[:n_ok] = levinson_durbin(rho[:n_ok], nlags=n_ok - 1, isacov=True)[2]
        bad = np.flatnonzero(np.abs(pacf[1:n_ok]) >= 1.0)
        if bad.size:
            pacf[1 + bad[0]:] = np.nan
    return rho, pacf


def lag_curves(fields: np.ndarray, times: pd.DatetimeIndex, lags: range = range(1, 11),
               step: str = "day") -> dict[str, np.ndarray]:
    """RMSE and R2 (1 - SSE/SST) of the field on step t - lag as a guess of step t (lags in steps).

    Only pairs of days both present are used, so the seasons' gaps never pair unrelated days.
    Returns {"lag", "rmse", "r2", "pairs"}. At a region's size over 23 years this reads the
    season's fields once per lag, SLAB_DAYS pairs at a time: each day's sums are taken once
    (:func:`_day_moments`), and a slab whose days have no NaN adds only its squared
    differences; a slab with NaNs masks pixel by pixel.
    """
    f = np.asarray(fields)
    index = {d: i for i, d in enumerate(pd.DatetimeIndex(times).normalize())}
    moments = _day_moments(f)
    out = {"lag": np.array(list(lags)), "rmse": [], "r2": [], "pairs": []}
    for lag in lags:
        pairs = np.array([(index[d], index[steps.shift(d, -lag, step)]) for d in index
                          if steps.shift(d, -lag, step) in index], dtype=int).reshape(-1, 2)
        n, s1, s2, sse = 0, 0.0, 0.0, 0.0
        # Slabs end where the rows stop being consecutive (a season's gap), so that each is a
        # view of the fields, not a copy.
        breaks = np.flatnonzero((np.diff(pairs[:, 0]) != 1) | (np.diff(pairs[:, 1]) != 1)) + 1
        bounds = [(a, min(a + SLAB_DAYS, b)) for a0, b in zip(np.r_[0, breaks], np.r_[breaks, len(pairs)])
                  for a in range(a0, b, SLAB_DAYS)]
        for start, stop in bounds:
            now_rows, before_rows = pairs[start:stop, 0], pairs[start:stop, 1]
            now, before = _rows(f, now_rows), _rows(f, before_rows)
            if moments.finite[now_rows].all() and moments.finite[before_rows].all():
                d = (now - before).ravel()
                sse += float(np.dot(d, d))
                n += now.size
                s1 += float(moments.s1[now_rows].sum())
                s2 += float(moments.s2[now_rows].sum())
                continue
            ok = np.isfinite(now) & np.isfinite(before)
            y = np.where(ok, now - moments.shift, 0.0)
            n += int(ok.sum())
            s1 += float(y.sum())
            s2 += float(np.square(y).sum())
            sse += float(np.square(np.where(ok, now - before, 0.0)).sum())
        if not n:
            out["rmse"].append(np.nan); out["r2"].append(np.nan); out["pairs"].append(len(pairs))  # noqa: E702
            continue
        sst = s2 - s1 * s1 / n  # about the mean: sums were taken about a shift near it, so nothing cancels
        out["rmse"].append(float(np.sqrt(sse / n)))
        out["r2"].append(float(1 - sse / sst) if sst > 0 else np.nan)
        out["pairs"].append(len(pairs))
    return {k: np.asarray(v) for k, v in out.items()}


@dataclass(frozen=True)
class _DayMoments:
    """Per day of (T, ...) fields: no NaN anywhere (finite), and sum and sum of squares of field - shift."""

    shift: float
    finite: np.ndarray
    s1: np.ndarray
    s2: np.ndarray


def _day_moments(f: np.ndarray) -> _DayMoments:
    """:class:`_DayMoments` of ``f``, read SLAB_DAYS days at a time; the shift is the first finite value."""
    first = np.flatnonzero(np.isfinite(f[:1]).ravel()) if len(f) else []
    shift = float(f[:1].ravel()[first[0]]) if len(first) else 0.0
    t = len(f)
    finite, s1, s2 = np.zeros(t, dtype=bool), np.zeros(t), np.zeros(t)
    for start in range(0, t, SLAB_DAYS):
        y = np.asarray(f[start:start + SLAB_DAYS], dtype=np.float64).reshape(min(SLAB_DAYS, t - start), -1) - shift
        s1[start:start + len(y)] = y.sum(axis=1)
        s2[start:start + len(y)] = np.einsum("ij,ij->i", y, y)
        finite[start:start + len(y)] = np.isfinite(s2[start:start + len(y)])
    return _DayMoments(shift, finite, s1, s2)


def _rows(f: np.ndarray, index: np.ndarray) -> np.ndarray:
    """f[index] as float64: a view where the rows are consecutive (most pairs), a copy otherwise."""
    if len(index) and index[-1] - index[0] == len(index) - 1 and np.all(np.diff(index) == 1):
        return np.asarray(f[index[0]:index[-1] + 1], dtype=np.float64)
    return np.asarray(f[index], dtype=np.float64)


def days_from_record(times: pd.DatetimeIndex, fine_period: tuple[str, str]) -> np.ndarray:
    """Signed distance in days to the fine record: negative before its start, positive after its end."""
    t = pd.DatetimeIndex(times).normalize()
    start, end = pd.Timestamp(fine_period[0]), pd.Timestamp(fine_period[1])
    after = (t - end).days.values
    before = (t - start).days.values
    return np.where(t > end, after, np.where(t < start, before, 0)).astype(int)


def drift(truth: np.ndarray, pred: np.ndarray, times: pd.DatetimeIndex, fine_period: tuple[str, str]) -> pd.DataFrame:
    """Per-day RMSE and R2 (spatial) against the signed distance from the fine record.

    Also gives ``trend_rmse_per_year``: the least-squares slope of the daily RMSE against
    |days from record| in years (in ``DataFrame.attrs``), positive = error grows with lead.
    """
    rows = []
    # A day at a time in float64: not float64 copies of a season's float32 fields (2.6 GB each at area1 over 23 years)
    for t, yt, pt in zip(pd.DatetimeIndex(times), truth, pred):
        yt, pt = np.asarray(yt, dtype=np.float64), np.asarray(pt, dtype=np.float64)
        ok = np.isfinite(yt) & np.isfinite(pt)
        a, b = yt[ok], pt[ok]
        sst = np.sum((a - a.mean()) ** 2)
        rows.append({"time": t, "rmse": float(np.sqrt(np.mean((a - b) ** 2))),
                     "r2": float(1 - np.sum((a - b) ** 2) / sst) if sst > 0 else np.nan})
    df = pd.DataFrame(rows)
    df["days_from_record"] = days_from_record(df["time"], fine_period) if len(df) else []
    lead = np.abs(df["days_from_record"].to_numpy(dtype=float)) / 365.25
    ok = np.isfinite(df["rmse"].to_numpy()) if len(df) else np.array([], bool)
    df.attrs["trend_rmse_per_year"] = float(np.polyfit(lead[ok], df["rmse"].to_numpy()[ok], 1)[0]) \
        if ok.sum() >= 3 and np.ptp(lead[ok]) > 0 else float("nan")
    return df
