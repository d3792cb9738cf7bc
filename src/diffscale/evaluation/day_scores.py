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

from diffscale.core.metrics import crps_points, high_frequency_cutoff, power_spectrum, ssim

# Pooled sums over the valid pixels of each day (truth y and ensemble mean p both finite).
_POOLED = ("n", "sy", "sp", "syy", "spp", "syp", "sse", "sae")
# Sums over replicates are done this many at a time: per-pixel sums of a large region
# (the paper's 154,000 pixels) times a thousand replicates would not fit in memory.
_CHUNK = 64


def _high_power(fields: np.ndarray, coarse_cell: float) -> tuple[np.ndarray, bool]:
    """(T, Y, X) -> (T,): each day's power at wavelengths shorter than a coarse cell; whether any ring is there."""
    spectra = [power_spectrum(field) for field in fields]
    k, rings = spectra[0][0], np.asarray([ring for _, ring in spectra])
    high = (k > high_frequency_cutoff(coarse_cell)) & np.all(np.isfinite(rings), axis=0)
    return rings[:, high].sum(axis=1), bool(high.any())


class DayScores:
    """Per-day sums of one model's members against the truth, scored for any day weights.

    truth (T, Y, X) and members (M, T, Y, X) in metric space, as for ``score``.
    """

    def __init__(self, truth: np.ndarray, members: np.ndarray, coarse_cell: float):
        y = np.asarray(truth, dtype=np.float64)
        x = np.asarray(members, dtype=np.float64)
        if x.ndim != 4 or x.shape[1:] != y.shape:
            raise ValueError(f"members {x.shape} do not match truth {y.shape} (expected (M, T, Y, X))")
        self.members, self.days = x.shape[0], x.shape[1]
        p = x.mean(axis=0)
        t = self.days
        yf, pf = y.reshape(t, -1), p.reshape(t, -1)
        ok = np.isfinite(yf) & np.isfinite(pf)
        y0, p0 = np.where(ok, yf, 0.0), np.where(ok, pf, 0.0)
        err = y0 - p0
        pooled = {"n": ok, "sy": y0, "sp": p0, "syy": y0**2, "spp": p0**2, "syp": y0 * p0, "sse": err**2,
                  "sae": np.abs(err)}
        self.day = {k: v.sum(axis=1) for k, v in pooled.items()}  # name -> (T,)
        # Per-pixel sums for nse (each pixel's own series).
        self.pixel = np.stack([ok, y0, y0**2, err**2], axis=1).astype(np.float64)  # (T, 4, P)
        for name, fair in (("crps", False), ("crps_fair", True)):
            c = crps_points(y, x, fair).reshape(t, -1)
            self.day[f"{name}_sum"], self.day[f"{name}_n"] = np.nansum(c, axis=1), np.isfinite(c).sum(axis=1)
        okm = (np.isfinite(y) & np.all(np.isfinite(x), axis=0)).reshape(t, -1)
        var = np.var(x, axis=0, ddof=1).reshape(t, -1) if self.members > 1 else np.zeros_like(yf)
        self.day["var_sum"] = np.where(okm, var, 0.0).sum(axis=1)
        self.day["sse_m"] = np.where(okm, (yf - pf) ** 2, 0.0).sum(axis=1)
        self.day["n_m"] = okm.sum(axis=1)
        data_range = float(np.nanmax(y) - np.nanmin(y))
        self.day["ssim"] = np.array([ssim(y[i:i + 1], p[i:i + 1], data_range) for i in range(t)])
        self.day["ssim_member"] = np.array([np.mean([ssim(y[i:i + 1], m[i:i + 1], data_range) for m in x])
                                            for i in range(t)])
        self.day["power_truth"], has_high = _high_power(y, coarse_cell)
        member_power = [_high_power(m, coarse_cell)[0] for m in x]
        self.day["power_members"] = np.mean(member_power, axis=0)
        self.has_high = has_high

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
        out = np.empty(len(w))
        for start in range(0, len(w), _CHUNK):
            part = np.einsum("rt,tkp->rkp", w[start:start + _CHUNK], self.pixel)
            n, sy, syy, sse = part[:, 0], part[:, 1], part[:, 2], part[:, 3]
            with np.errstate(invalid="ignore", divide="ignore"):
                sst = syy - sy**2 / n
                good = (n >= 2) & (sst > 1e-12 * syy)
                per_pixel = np.where(good, 1 - sse / sst, 0.0)
                out[start:start + _CHUNK] = np.where(good.any(axis=1), per_pixel.sum(axis=1) / good.sum(axis=1),
                                                     np.nan)
        return out
