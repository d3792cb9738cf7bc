"""Scores of a downscaled record against the fine truth.

Every metric works in *metric space*: log10(max(x, floor)) when ``transform.log10`` is
on (the paper's choice for optical depth), else the variable itself
(:func:`to_metric_space`). Shapes: ``truth`` is (T, Y, X); ``members`` is (M, T, Y, X),
M = 1 for a deterministic model. Point scores (rmse, mae, r2, ...) judge the ensemble
mean; crps, spread_skill and the rank histogram judge the ensemble; spectral_ratio
judges the members' texture. NaN pixels (in truth or prediction) are left out.

Definitions (all pooled over every pixel and day unless said otherwise):

* ``r2`` = 1 - SSE/SST with SST around the pooled mean of the truth (the summary.csv contract);
* ``r2_pearson`` = squared Pearson correlation (the paper's R2);
* ``nse`` = Nash-Sutcliffe efficiency of each pixel's time series (SST around that
  pixel's own temporal mean), averaged over pixels: it asks whether the day-to-day
  variation at a place is reproduced, which r2 (dominated by the spatial pattern) does not;
* ``kge`` = Kling-Gupta efficiency (Gupta et al. 2009), 1 - sqrt((r-1)^2 + (a-1)^2 + (b-1)^2),
  a = std ratio, b = mean ratio (in log10 space both means are negative; b is still 1
  for an unbiased prediction);
* ``crps`` = the CRPS of the ensemble as issued (its empirical distribution, the
  definition of properscoring's ``crps_ensemble``); it falls as members are added, so it
  compares only ensembles of one size;
* ``crps_fair`` = the *fair* ensemble CRPS (Ferro 2014), unbiased for the CRPS of the
  ensemble's underlying distribution whatever the number of members: the one to compare
  across models and periods. With one member (a deterministic model) both are the MAE;
* skill scores (:func:`skill_score`) = 1 - score / the reference's score in the same
  region, season and period (``crpss_*`` from ``crps_fair``, ``rmse_ss_*`` from ``rmse``):
  0 is the reference's skill, 1 a perfect prediction, negative worse than the reference;
* ``spread_skill`` = sqrt((M+1)/M * mean ensemble variance (ddof=1)) / RMSE of the
  ensemble mean (Fortin et al. 2014): 1 for a calibrated ensemble of any size;
* ``ssim`` = structural similarity (scikit-image) of the ensemble mean and the truth per
  day, averaged over days, with ``data_range`` = the truth's range over the period;
* ``spectral_ratio`` = power of the members at wavelengths shorter than the coarse cell,
  over that of the truth, from radially averaged power spectra (:func:`power_spectrum`);
* coarse consistency: the prediction, conservatively averaged (in physical units, as
  the coarse model averages the load) onto the coarse cells the region covers fully,
  against the coarse input (:func:`coarse_consistency`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from skimage.metrics import structural_similarity

from diffscale.core.grids import Grid, conservative_matrices
from diffscale.core.transform import to_metric_space

METRIC_COLUMNS = ["r2", "r2_pearson", "rmse", "mae", "nse", "kge", "crps", "crps_fair", "spread_skill", "ssim",
                  "spectral_ratio"]


def _ensemble(members: np.ndarray) -> np.ndarray:
    members = np.asarray(members, dtype=np.float64)
    if members.ndim < 1:
        raise ValueError(f"members must have a leading member axis, got shape {members.shape}")
    return members


def _pair(truth: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flattened truth and prediction where both are finite."""
    truth = np.asarray(truth, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    if truth.shape != pred.shape:
        raise ValueError(f"truth {truth.shape} and prediction {pred.shape} differ in shape")
    ok = np.isfinite(truth) & np.isfinite(pred)
    return truth[ok], pred[ok]


def r2(truth: np.ndarray, pred: np.ndarray) -> float:
    """1 - SSE/SST over all pixels and days (SST around the pooled truth mean)."""
    y, p = _pair(truth, pred)
    sst = np.sum((y - y.mean()) ** 2)
    return float(1.0 - np.sum((y - p) ** 2) / sst) if sst > 0 else float("nan")


def r2_pearson(truth: np.ndarray, pred: np.ndarray) -> float:
    y, p = _pair(truth, pred)
    if y.std() == 0 or p.std() == 0:
        return float("nan")
    return float(np.corrcoef(y, p)[0, 1] ** 2)


def rmse(truth: np.ndarray, pred: np.ndarray) -> float:
    y, p = _pair(truth, pred)
    return float(np.sqrt(np.mean((y - p) ** 2)))


def mae(truth: np.ndarray, pred: np.ndarray) -> float:
    y, p = _pair(truth, pred)
    return float(np.mean(np.abs(y - p)))


def nse(truth: np.ndarray, pred: np.ndarray) -> float:
    """Mean over pixels of the Nash-Sutcliffe efficiency of each pixel's series.

    truth, pred: (T, ...); pixels with fewer than two valid days or no variance are skipped.
    """
    truth = np.asarray(truth, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    if truth.shape != pred.shape:
        raise ValueError(f"truth {truth.shape} and prediction {pred.shape} differ in shape")
    ok = np.isfinite(truth) & np.isfinite(pred)
    n = ok.sum(axis=0)
    y = np.where(ok, truth, 0.0)
    p = np.where(ok, pred, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = y.sum(axis=0) / n
        sst = np.sum(np.where(ok, (y - mean) ** 2, 0.0), axis=0)
        sse = np.sum(np.where(ok, (y - p) ** 2, 0.0), axis=0)
        per_pixel = 1.0 - sse / sst
    good = (n >= 2) & (sst > 0)
    return float(np.mean(per_pixel[good])) if good.any() else float("nan")


def kge(truth: np.ndarray, pred: np.ndarray) -> float:
    y, p = _pair(truth, pred)
    if y.std() == 0 or y.mean() == 0:
        return float("nan")
    r = np.corrcoef(y, p)[0, 1] if p.std() > 0 else 0.0
    alpha = p.std() / y.std()
    beta = p.mean() / y.mean()
    return float(1.0 - np.sqrt((r - 1) ** 2 + (alpha - 1) ** 2 + (beta - 1) ** 2))


def crps_points(truth: np.ndarray, members: np.ndarray, fair: bool = True) -> np.ndarray:
    """Ensemble CRPS per point: mean|X_i - y| - sum_ij |X_i - X_j| / (2 M (M-1)) (fair) or / (2 M^2) (as issued).

    truth (...), members (M, ...) -> (...). With M = 1 the spread term is absent (MAE).
    """
    x = _ensemble(members)
    y = np.asarray(truth, dtype=np.float64)
    m = x.shape[0]
    skill = np.mean(np.abs(x - y[None]), axis=0)
    if m == 1:
        return skill
    # sum_ij |x_i - x_j| = 2 sum_i (2i - M - 1) x_(i) over the sorted members (i = 1..M): M log M, not M^2.
    xs = np.sort(x, axis=0)
    weights = (2.0 * np.arange(1, m + 1) - m - 1).reshape((m,) + (1,) * (x.ndim - 1))
    pair_sum = 2.0 * np.sum(weights * xs, axis=0)
    return skill - pair_sum / (2.0 * m * (m - 1 if fair else m))


def crps(truth: np.ndarray, members: np.ndarray, fair: bool = True) -> float:
    """Mean ensemble CRPS (:func:`crps_points`) over every valid pixel and day."""
    return float(np.nanmean(crps_points(truth, members, fair)))


def skill_score(score: np.ndarray | float, reference: np.ndarray | float) -> np.ndarray | float:
    """1 - score / reference for negatively oriented scores (RMSE, CRPS); NaN where the reference is 0 or missing."""
    score, reference = np.asarray(score, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(reference > 0, 1.0 - score / reference, np.nan)


def member_curve(truth: np.ndarray, members: np.ndarray) -> dict[str, np.ndarray]:
    """Scores of ensembles of m = 1..M members taken from ``members`` (M, T, Y, X), against truth (T, Y, X).

    For each m the members are cut into M // m disjoint groups of m and the scores are
    averaged over the groups, so every m uses the members it can. Returns arrays over m:
    ``members``, ``groups``, ``crps_fair``, ``crps`` (as issued) and ``rmse_mean`` (RMSE of
    the m-member mean). A fair CRPS that stays flat and a mean's RMSE that levels off say
    that m members are enough.
    """
    x = _ensemble(members)
    m_all = np.arange(1, x.shape[0] + 1)
    out = {name: np.zeros(len(m_all)) for name in ("crps_fair", "crps", "rmse_mean")}
    groups = x.shape[0] // m_all
    for i, (m, n) in enumerate(zip(m_all, groups)):
        parts = [x[g * m:(g + 1) * m] for g in range(n)]
        out["crps_fair"][i] = np.mean([crps(truth, p) for p in parts])
        out["crps"][i] = np.mean([crps(truth, p, fair=False) for p in parts])
        out["rmse_mean"][i] = np.mean([rmse(truth, p.mean(axis=0)) for p in parts])
    return {"members": m_all, "groups": groups} | out


def spread_skill(truth: np.ndarray, members: np.ndarray) -> float:
    """sqrt((M+1)/M * mean ensemble variance) / RMSE of the ensemble mean; NaN for M = 1."""
    x = _ensemble(members)
    m = x.shape[0]
    if m < 2:
        return float("nan")
    ok = np.isfinite(truth) & np.all(np.isfinite(x), axis=0)
    var = np.var(x, axis=0, ddof=1)[ok]
    err = rmse(np.asarray(truth)[ok], x.mean(axis=0)[ok])
    return float(np.sqrt((m + 1) / m * var.mean()) / err) if err > 0 else float("nan")


def ssim(truth: np.ndarray, pred: np.ndarray, data_range: float | None = None) -> float:
    """Mean over days of the SSIM of (T, Y, X) fields; data_range defaults to the truth's range."""
    truth = np.asarray(truth, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    if data_range is None:
        data_range = float(np.nanmax(truth) - np.nanmin(truth))
    win = min(7, *truth.shape[1:])
    win -= 1 - win % 2  # odd window no larger than the image
    if win < 3:
        return float("nan")
    values = []
    for y, p in zip(truth, pred):
        ok = np.isfinite(y) & np.isfinite(p)
        if not ok.all():  # SSIM needs whole images: fill gaps with the truth so they do not count against
            p = np.where(ok, p, y)
            y = np.where(ok, y, np.nanmean(y))
            p = np.where(ok, p, y)
        values.append(structural_similarity(y, p, data_range=data_range, win_size=win))
    return float(np.mean(values))


# Days the scores that stream over a season read at a time (power spectra, rank histogram, and
# the semivariogram and lag curves of diffscale.evaluation.diagnostics).
SLAB_DAYS = 64


def rank_histogram(truth: np.ndarray, members: np.ndarray, seed: int = 0) -> np.ndarray:
    """Counts of the truth's rank among the M members (M + 1 bins); ties broken at random."""
    x = _ensemble(members)
    y = np.asarray(truth, dtype=np.float64)
    rng = np.random.default_rng(seed)
    counts = np.zeros(x.shape[0] + 1, dtype=np.int64)
    # A slab of the leading axis (days) at a time: the points come in the same order, and
    # the generator's draws split across slabs are the draws of one call, so the counts are
    # those of the whole at once, without copies the size of the fields.
    for start in range(0, y.shape[0] if y.ndim else 1, SLAB_DAYS):
        ys, xs = (y[start:start + SLAB_DAYS], x[:, start:start + SLAB_DAYS]) if y.ndim else (y, x)
        ok = np.isfinite(ys) & np.all(np.isfinite(xs), axis=0)
        xv, yv = xs[:, ok], ys[ok]  # (M, N), (N,)
        below = np.sum(xv < yv[None], axis=0)
        ties = np.sum(xv == yv[None], axis=0)
        rank = below + np.floor(rng.random(yv.size) * (ties + 1)).astype(int)
        counts += np.bincount(rank, minlength=x.shape[0] + 1)
    return counts


def power_spectrum(fields: np.ndarray, nbins: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged power spectrum of (T, Y, X) fields, averaged over T.

    Each field has its mean removed and is tapered with a 2-D Hann window, so the
    non-periodic edges do not leak power into high wavenumbers. Returns (k, power):
    k = bin centres in cycles per pixel (0 .. 0.5], power = mean |FFT|^2 in each ring.
    NaN pixels are set to the field mean (zero after centring).
    """
    f = np.asarray(fields)
    if f.ndim == 2:
        f = f[None]
    t, ny, nx = f.shape
    power = np.zeros((ny, nx))
    for slab in _slab_power(f):
        # the running sum as the first row: summed in day order, as one sum over every day would be
        power = np.sum(np.concatenate([power[None], slab]), axis=0)  # (ny, nx)
    power /= t
    rings = _RingBins.of(ny, nx, nbins)
    return rings.centres, rings(power)


# Days power_spectra transforms at a time, the spectra being the same whatever the slab: with
# 64, DayScores over 270 days of area1 peaked at 530 MiB (tracemalloc), with 8 at 386 MiB.
_SPECTRA_DAYS = 8


def power_spectra(fields: np.ndarray, nbins: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each day's :func:`power_spectrum` of (T, Y, X) fields: wavenumbers (K,) and rings (T, K).

    The same arithmetic as ``power_spectrum`` of one day (to the bit), with the window and
    the rings' bins made once, not once a day.
    """
    f = np.asarray(fields)
    t, ny, nx = f.shape
    bins = _RingBins.of(ny, nx, nbins)
    rings = np.empty((t, len(bins.centres)))
    start = 0
    for slab in _slab_power(f, _SPECTRA_DAYS):
        for power in slab:
            rings[start] = bins(power)
            start += 1
    return bins.centres, rings


def _slab_power(f: np.ndarray, days: int = SLAB_DAYS):
    """|FFT|^2 (S, Y, X) of each slab of ``days`` fields, mean removed and Hann-tapered.

    A slab at a time: the FFT's complex copies of a 23-year season would be tens of GB.
    """
    window = _RingBins.of(*f.shape[1:], None).window
    for start in range(0, f.shape[0], days):
        chunk = np.asarray(f[start:start + days], dtype=np.float64)
        chunk = np.nan_to_num(chunk - np.nanmean(chunk, axis=(1, 2), keepdims=True), nan=0.0)
        yield np.abs(np.fft.fft2(chunk * window)) ** 2


@dataclass(frozen=True)
class _RingBins:
    """The Hann window of a (ny, nx) field and the rings of its 2-D wavenumbers (0 .. 0.5]."""

    window: np.ndarray
    index: np.ndarray  # each inside wavenumber's ring
    inside: np.ndarray
    counts: np.ndarray
    centres: np.ndarray

    @staticmethod
    @functools.lru_cache(maxsize=16)
    def of(ny: int, nx: int, nbins: int | None) -> _RingBins:
        k = np.hypot(np.fft.fftfreq(ny)[:, None], np.fft.fftfreq(nx)[None, :])
        nbins = nbins or max(ny, nx) // 2
        edges = np.linspace(0.0, 0.5, nbins + 1)
        idx = np.digitize(k.ravel(), edges[1:-1], right=True)
        inside = (k.ravel() > 0) & (k.ravel() <= 0.5)
        return _RingBins(np.outer(np.hanning(ny), np.hanning(nx)), idx[inside], inside,
                         np.bincount(idx[inside], minlength=nbins), 0.5 * (edges[1:] + edges[:-1]))

    def __call__(self, power: np.ndarray) -> np.ndarray:
        """(ny, nx) power -> (K,) its mean in each ring."""
        with np.errstate(invalid="ignore"):
            return np.bincount(self.index, weights=power.ravel()[self.inside], minlength=len(self.counts)) / self.counts


def high_frequency_cutoff(coarse_cell_px: float) -> float:
    """Wavenumber (cycles per fine pixel) of a wavelength of one coarse cell."""
    return 1.0 / float(coarse_cell_px)


def spectral_ratio(truth: np.ndarray, members: np.ndarray, coarse_cell_px: float) -> float:
    """High-frequency power of the members over that of the truth.

    'High frequency' = wavelengths shorter than one coarse cell (``coarse_cell_px`` fine
    pixels, e.g. 8.9 for MERRA-2 -> G5NR, the geometric mean of 8 and 10): the scales the
    coarse input cannot carry, which a downscaler must invent. 1 = realistic texture,
    below 1 = too smooth. Power of every member is averaged, never that of the ensemble mean.
    """
    x = _ensemble(members)
    k, p_truth = power_spectrum(truth)
    p_members = np.nanmean([power_spectrum(m)[1] for m in x], axis=0)
    high = (k > high_frequency_cutoff(coarse_cell_px)) & np.isfinite(p_truth) & np.isfinite(p_members)
    if not high.any():
        return float("nan")
    return float(np.sum(p_members[high]) / np.sum(p_truth[high]))


def coarse_cell_px(coarse: Grid, fine: Grid) -> float:
    """Size of a coarse cell in fine pixels (geometric mean of the two axes)."""
    return float(np.sqrt((coarse.dlat / fine.dlat) * (coarse.dlon / fine.dlon)))


class CoarseAverager:
    """Conservative average of fine fields onto the coarse cells the fine grid covers fully."""

    def __init__(self, fine: Grid, coarse: Grid, min_cover: float = 0.999):
        wy, wx = conservative_matrices(fine, coarse)  # (cy, ny), (cx, nx)
        rows = wy.sum(axis=1) >= min_cover
        cols = wx.sum(axis=1) >= min_cover
        if not rows.any() or not cols.any():
            raise ValueError("the fine grid covers no coarse cell completely: coarse consistency is undefined")
        self.wy, self.wx = wy[rows], wx[cols]
        self.lat, self.lon = coarse.lat[rows], coarse.lon[cols]
        self.rows, self.cols = rows, cols

    def __call__(self, fine: np.ndarray) -> np.ndarray:
        """(..., ny, nx) physical values -> (..., cy', cx') averages over the covered cells."""
        # optimize: two matrix products, not the naive triple loop over both grids
        return np.einsum("yi,...ij,xj->...yx", self.wy, fine, self.wx, optimize=True)

    def select(self, coarse_field: np.ndarray) -> np.ndarray:
        """The matching cells of a (..., cy, cx) field on the full coarse grid."""
        return coarse_field[..., self.rows, :][..., :, self.cols]


def coarse_consistency(pred_physical: np.ndarray, coarse_physical: np.ndarray, averager: CoarseAverager,
                       log10: bool, floor: float = 1e-6) -> dict[str, float]:
    """RMSE and mean difference, in metric space, of the averaged prediction and the coarse input.

    pred_physical (T, ny, nx) on the fine grid; coarse_physical (T, cy, cx) on the full coarse grid.
    """
    # SLAB_DAYS days at a time in float64, not a float64 copy of a season's float32 fields
    avg = np.concatenate([averager(np.asarray(pred_physical[a:a + SLAB_DAYS], dtype=np.float64))
                          for a in range(0, max(len(pred_physical), 1), SLAB_DAYS)])
    avg = to_metric_space(avg, log10, floor)
    ref = to_metric_space(averager.select(np.asarray(coarse_physical, dtype=np.float64)), log10, floor)
    y, p = _pair(ref, avg)
    return {"rmse": float(np.sqrt(np.mean((p - y) ** 2))), "bias": float(np.mean(p - y))}


def score(truth: np.ndarray, members: np.ndarray, coarse_cell: float) -> dict[str, float]:
    """Every column of METRIC_COLUMNS for truth (T, Y, X) and members (M, T, Y, X), metric space."""
    x = _ensemble(members)
    if x.shape[1:] != np.shape(truth):
        raise ValueError(f"members {x.shape} do not match truth {np.shape(truth)} (expected (M, T, Y, X))")
    mean = x.mean(axis=0)
    data_range = float(np.nanmax(truth) - np.nanmin(truth))
    return {
        "r2": r2(truth, mean),
        "r2_pearson": r2_pearson(truth, mean),
        "rmse": rmse(truth, mean),
        "mae": mae(truth, mean),
        "nse": nse(truth, mean),
        "kge": kge(truth, mean),
        "crps": crps(truth, x, fair=False),
        "crps_fair": crps(truth, x),
        "spread_skill": spread_skill(truth, x),
        "ssim": ssim(truth, mean, data_range),
        "spectral_ratio": spectral_ratio(truth, x, coarse_cell),
        "ssim_member": float(np.mean([ssim(truth, m, data_range) for m in x])),
        "members": int(x.shape[0]),
        "days": int(x.shape[1]),
    }
