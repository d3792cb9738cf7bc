"""Every score of :func:`diffscale.core.metrics.score` as sums over days, for any weighting of the days.

A bootstrap resample of the scored days is a vector of day counts (day t drawn w_t times).
Scoring thousands of resamples with :func:`~diffscale.core.metrics.score` would read the
fields thousands of times (about a second per call for 270 days); here the fields are read
once into per-day sums (counts, sums of squares, per-day SSIM and high-frequency power),
and a resample's scores are weighted sums of those, finished by the same formulas.
With every weight 1 they equal ``score`` (``tests/test_bootstrap.py`` checks every column
``score`` returns, so a score added there without its per-day form here fails that test).

One approximation: ``ssim`` and ``ssim_member`` keep the data range of all scored days
(``score`` takes the range of the days it is given, which a resample may narrow).
"""

from __future__ import annotations

import numpy as np

from diffscale.core.metrics import crps_points, high_frequency_cutoff, power_spectra, ssim

# The fields are read this many days at a time: each day's sums are the same whatever the
# slab, and a season of the paper's 154,000 pixels over 23 years is 2.5 GB a field.
SLAB_DAYS = 32
# Per-pixel sums (for nse) are taken over this many pixels at a time, for every resample at once.
_PIXELS = 4096


def day_spectra(fields: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T, Y, X) -> wavenumbers (K,) and each day's power spectrum (T, K), taken in float64.

    Their mean over days is :func:`~diffscale.core.metrics.power_spectrum` of the days (to rounding).
    """
    return power_spectra(fields)


def _high(k: np.ndarray, rings: np.ndarray, coarse_cell: float) -> np.ndarray:
    """The rings (K,) at wavelengths shorter than a coarse cell, finite on every day."""
    return (k > high_frequency_cutoff(coarse_cell)) & np.all(np.isfinite(rings), axis=0)


def _day_sums(y: np.ndarray, x: np.ndarray, data_range: float) -> dict[str, np.ndarray]:
    """Each day's sums of truth y (T, Y, X) and members x (M, T, Y, X): {name: (T,)}."""
    t, m = y.shape[0], x.shape[0]
    p = x.mean(axis=0)
    yf, pf = y.reshape(t, -1), p.reshape(t, -1)
    ok = np.isfinite(yf) & np.isfinite(pf)
    y0, p0 = np.where(ok, yf, 0.0), np.where(ok, pf, 0.0)
    err = y0 - p0
    # pooled sums over the valid pixels of each day (truth y and ensemble mean p both finite)
    day = {"n": ok.sum(axis=1), "sy": y0.sum(axis=1), "sp": p0.sum(axis=1), "syy": (y0**2).sum(axis=1),
           "spp": (p0**2).sum(axis=1), "syp": (y0 * p0).sum(axis=1), "sse": (err**2).sum(axis=1),
           "sae": np.abs(err).sum(axis=1)}
    for name, fair in (("crps", False), ("crps_fair", True)):
        c = crps_points(y, x, fair).reshape(t, -1)
        day[f"{name}_sum"], day[f"{name}_n"] = np.nansum(c, axis=1), np.isfinite(c).sum(axis=1)
    okm = (np.isfinite(y) & np.all(np.isfinite(x), axis=0)).reshape(t, -1)
    var = np.var(x, axis=0, ddof=1).reshape(t, -1) if m > 1 else np.zeros_like(yf)
    day["var_sum"] = np.where(okm, var, 0.0).sum(axis=1)
    day["sse_m"] = np.where(okm, (yf - pf) ** 2, 0.0).sum(axis=1)
    day["n_m"] = okm.sum(axis=1)
    day["ssim"] = np.array([ssim(y[i:i + 1], p[i:i + 1], data_range) for i in range(t)])
    # One member is its own mean: the member's SSIM is the mean's, not a second pass of the filters.
    day["ssim_member"] = day["ssim"] if m == 1 else np.array(
        [np.mean([ssim(y[i:i + 1], mem[i:i + 1], data_range) for mem in x]) for i in range(t)])
    return day


def _floating(values: np.ndarray) -> np.ndarray:
    """``values`` as they are if floating point (no copy), else as float64."""
    values = np.asarray(values)
    return values if np.issubdtype(values.dtype, np.floating) else values.astype(np.float64)


class DayScores:
    """Per-day sums of one model's members against the truth, scored for any day weights.

    truth (T, Y, X) and members (M, T, Y, X) in metric space, as for ``score``. The fields
    are read :data:`SLAB_DAYS` days at a time and kept (not copied) for the per-pixel sums
    of nse, so memory beyond them is a slab's, not a multiple of the season's. Every sum is
    taken in float64; float32 fields are converted a slab at a time, not copied whole
    (evaluate's metric-space fields are float64 already and are not copied at all).

    truth_spectra: :func:`day_spectra` of ``truth`` when the caller has them (evaluate scores
    every model against the same truth: its spectra are taken once, not once a model).
    """

    def __init__(self, truth: np.ndarray, members: np.ndarray, coarse_cell: float,
                 truth_spectra: tuple[np.ndarray, np.ndarray] | None = None):
        y, x = _floating(truth), _floating(members)
        if x.ndim != 4 or x.shape[1:] != y.shape:
            raise ValueError(f"members {x.shape} do not match truth {y.shape} (expected (M, T, Y, X))")
        self.members, self.days = x.shape[0], x.shape[1]
        self._y, self._x = y, x
        data_range = float(np.nanmax(y)) - float(np.nanmin(y))
        slabs = [slice(a, a + SLAB_DAYS) for a in range(0, self.days, SLAB_DAYS)]
        parts = [_day_sums(np.asarray(y[s], dtype=np.float64), np.asarray(x[:, s], dtype=np.float64), data_range)
                 for s in slabs]
        self.day = {k: np.concatenate([part[k] for part in parts]) for k in parts[0]}
        # The high-wavenumber rings are those finite on every day, known once all days are read.
        k, truth_rings = truth_spectra if truth_spectra is not None else day_spectra(y)
        if truth_rings.shape[0] != self.days:
            raise ValueError(f"truth spectra of {truth_rings.shape[0]} days for {self.days} days of fields")
        member_rings = [day_spectra(mem)[1] for mem in x]
        # Each member's mean spectrum over the days (K,): the diagnostics' curve of the model.
        self.member_spectra = np.asarray([r.mean(axis=0) for r in member_rings])
        high_truth = _high(k, truth_rings, coarse_cell)
        self.day["power_truth"] = truth_rings[:, high_truth].sum(axis=1)
        self.day["power_members"] = np.mean([r[:, _high(k, r, coarse_cell)].sum(axis=1) for r in member_rings], axis=0)
        self.has_high = bool(high_truth.any())

    def score_row(self) -> dict[str, float]:
        """Every column of :func:`diffscale.core.metrics.score` on every day once (members and days included)."""
        return {k: float(v[0]) for k, v in self.scores().items()} | {"members": self.members, "days": self.days}

    def scores(self, weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Every score for each row of ``weights`` (R, T) (day t counted w_t times); None = every day once.

        Returns {score: (R,)} (R = 1 for None), the columns of ``score`` but members and days.
        """
        w = np.ones((1, self.days)) if weights is None else np.atleast_2d(np.asarray(weights, dtype=np.float64))
        if w.shape[1] != self.days:
            raise ValueError(f"weights cover {w.shape[1]} days, the scores {self.days}")
        s = {k: w @ v for k, v in self.day.items()}
        with np.errstate(invalid="ignore", divide="ignore"):
            n = s["n"]
            my, mp = s["sy"] / n, s["sp"] / n
            vy, vp = s["syy"] / n - my**2, s["spp"] / n - mp**2
            cov = s["syp"] / n - my * mp
            # Sums of squares minus squared sums leave rounding, not zero, for a constant field.
            vy = np.where(vy > 1e-12 * s["syy"] / n, vy, 0.0)
            vp = np.where(vp > 1e-12 * s["spp"] / n, vp, 0.0)
            r = np.where((vy > 0) & (vp > 0), cov / np.sqrt(vy * vp), np.nan)
            rmse = np.sqrt(s["sse"] / n)
            kge_r = np.where(vp > 0, r, 0.0)
            kge = np.where((vy > 0) & (my != 0),
                           1 - np.sqrt((kge_r - 1) ** 2 + (np.sqrt(vp / vy) - 1) ** 2 + (mp / my - 1) ** 2), np.nan)
            m = self.members
            spread = (np.sqrt((m + 1) / m * s["var_sum"] / s["n_m"]) / np.sqrt(s["sse_m"] / s["n_m"])
                      if m > 1 else np.full(len(w), np.nan))
            out = {
                "r2": np.where(vy > 0, 1 - s["sse"] / (n * vy), np.nan),
                "r2_pearson": r**2,
                "rmse": rmse,
                "mae": s["sae"] / n,
                "nse": self._nse(w),
                "kge": kge,
                "crps": s["crps_sum"] / s["crps_n"],
                "crps_fair": s["crps_fair_sum"] / s["crps_fair_n"],
                "spread_skill": spread,
                "ssim": s["ssim"] / w.sum(axis=1),
                "spectral_ratio": (s["power_members"] / s["power_truth"] if self.has_high
                                   else np.full(len(w), np.nan)),
                "ssim_member": s["ssim_member"] / w.sum(axis=1),
            }
        return out

    def _nse(self, w: np.ndarray) -> np.ndarray:
        """Mean over pixels of each pixel's own NSE, for each row of weights (R, T): sums a block of pixels at a time.

        One row (the score itself) is summed in float64; many (the bootstrap's resamples) in
        float32, which halves the products' time (a fifth of evaluate's at the paper twin's
        size) for about 6 significant digits, more than an interval's bounds carry. Each
        pixel's values are centred on their mean first, so no digit is lost to cancellation.
        """
        t, r = self.days, len(w)
        dtype = np.float64 if r == 1 else np.float32
        wd = w.astype(dtype)
        y = self._y.reshape(t, -1)
        x = self._x.reshape(self.members, t, -1)
        total, count = np.zeros(r), np.zeros(r)
        for start in range(0, y.shape[1], _PIXELS):
            yb = np.asarray(y[:, start:start + _PIXELS], dtype=np.float64)
            pb = np.asarray(x[:, :, start:start + _PIXELS], dtype=np.float64).mean(axis=0)
            ok = np.isfinite(yb) & np.isfinite(pb)
            gaps = not ok.all()
            # (T, 3, pixels): each pixel's centred values, their squares and the squared errors,
            # written in place (at 23 years a block's temporaries cost more than its products)
            terms = np.empty((t, 3, yb.shape[1]), dtype)
            if gaps:
                yb, pb = np.where(ok, yb, 0.0), np.where(ok, pb, 0.0)
                with np.errstate(invalid="ignore", divide="ignore"):
                    centre = np.nan_to_num(yb.sum(axis=0) / ok.sum(axis=0))
                terms[:, 0] = np.where(ok, yb - centre, 0.0)
            else:
                np.subtract(yb, yb.mean(axis=0), out=terms[:, 0], casting="same_kind")
            np.square(terms[:, 0], out=terms[:, 1])
            np.subtract(yb, pb, out=terms[:, 2], casting="same_kind")
            np.square(terms[:, 2], out=terms[:, 2])
            part = (wd @ terms.reshape(t, -1)).astype(np.float64).reshape(r, 3, -1)
            sy, syy, sse = part[:, 0], part[:, 1], part[:, 2]
            # Each pixel's weighted count: with no gap in the block (the usual case) it is the
            # resample's total weight, not a fourth product of the size of the others.
            n = np.broadcast_to(w.sum(axis=1)[:, None], sy.shape) if not gaps else w @ ok
            with np.errstate(invalid="ignore", divide="ignore"):
                sst = syy - sy**2 / n
                good = (n >= 2) & (sst > 1e-12 * syy)
                total += np.where(good, 1 - sse / sst, 0.0).sum(axis=1)
            count += good.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 0, total / count, np.nan)
