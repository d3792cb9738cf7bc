"""How far apart are the coarse and the fine record? Wasserstein distances with POT.

As in the paper, both records are log10-transformed and jointly min-max scaled (one
lo/hi over both), the coarse one on the fine grid. Then:

* per day: the 1-D Wasserstein distance W1 between that day's fine pixel values and
  its coarse-on-fine pixel values (``ot.wasserstein_1d``, batched over days);
* pooled: W1 (from fine histograms) between all coarse values of the season over the whole coarse record and
  all fine values of the season over the fine record (the long record against the
  short one: a shift here is what a frozen transfer would have to absorb);
* per pixel: W1 between a pixel's fine and coarse-on-fine values over the days (a map);
* sliced: the sliced Wasserstein distance (SW2, ``ot.sliced_wasserstein_distance``)
  between k x k patches, each standardised to zero mean and unit variance, so it
  compares spatial texture rather than level; several seeds give its spread.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import ot
import pandas as pd

from diffscale.core import io
from diffscale.core.transform import model_value

log = logging.getLogger(__name__)

# The paper's figures (Xiang et al. 2025, area0 / area1, all 763 overlap days),
# shown beside ours in the report. None where the paper gives no number.
PAPER_WASSERSTEIN = {
    "area0": {"mean": 0.0282, "median": 0.0237, "p10": 0.0114, "p90": 0.0478, "pooled": 0.0080},
    "area1": {"mean": 0.0237, "median": 0.0210, "p10": None, "p90": None, "pooled": 0.0151},
}
COLUMNS = ["region", "season", "days", "mean", "median", "p10", "p90", "pooled", "sliced_mean", "sliced_std"]


def log_transform(x: np.ndarray, log10: bool, floor: float) -> np.ndarray:
    # float32 stays float32 for storage: 25 years of a paper region are ~6 GB in
    # float32; the distances themselves are computed in float64 (see _f64).
    x = np.asarray(x)
    x = x.astype(np.result_type(x.dtype, np.float32), copy=False)
    return model_value(x, log10, x.dtype.type(floor))


def joint_minmax(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """Scale all arrays with one min and max taken over all of them together."""
    lo = min(float(np.nanmin(a)) for a in arrays)
    hi = max(float(np.nanmax(a)) for a in arrays)
    if not hi > lo:
        raise ValueError(f"cannot min-max scale: every value is {lo}")
    return tuple(((a - a.dtype.type(lo)) / a.dtype.type(hi - lo)) for a in arrays)


def _f64(x: np.ndarray) -> np.ndarray:
    """POT sums uniform weights 1/n cumulatively in the values' dtype: in float32 a million
    samples drift by percents, so distances are always taken in float64."""
    return np.asarray(x, dtype=np.float64)


def per_day_w1(fine: np.ndarray, coarse: np.ndarray) -> np.ndarray:
    """(T, ny, nx) x 2 -> (T,) W1 between the two fields' pixel values, day by day."""
    if fine.shape != coarse.shape:
        raise ValueError(f"per-day distances need fields of equal shape, got {fine.shape} and {coarse.shape}")
    t = fine.shape[0]
    # POT takes samples along axis 0 and batches over the rest: (pixels, T). Its CDFs
    # are cumulative sums in the values' dtype, so float64 keeps them exact.
    return np.asarray(ot.wasserstein_1d(_f64(fine.reshape(t, -1).T), _f64(coarse.reshape(t, -1).T), p=1))


def per_pixel_w1(fine: np.ndarray, coarse: np.ndarray) -> np.ndarray:
    """(T, ny, nx) and (T', ny, nx) -> (ny, nx) W1 between each pixel's values over the days."""
    if fine.shape[1:] != coarse.shape[1:]:
        raise ValueError(f"per-pixel distances need the same grid, got {fine.shape[1:]} and {coarse.shape[1:]}")
    ny, nx = fine.shape[1:]
    return np.asarray(ot.wasserstein_1d(_f64(fine.reshape(fine.shape[0], -1)), _f64(coarse.reshape(coarse.shape[0], -1)),
                                        p=1)).reshape(ny, nx)


POOLED_BINS = 2**20


def pooled_w1(fine: np.ndarray, coarse: np.ndarray, bins: int = POOLED_BINS) -> float:
    """W1 between all values of the two records, whatever their number of days.

    The pooled samples of a paper region hold ~1.4e9 values, too many to sort in
    memory, so W1 = integral |F - G| is taken over the two histograms on one grid of
    ``bins`` bins: moving each value to its bin's edge changes W1 by at most one bin
    width, (max - min) / bins (1e-6 of the range by default).
    """
    lo = min(float(np.nanmin(fine)), float(np.nanmin(coarse)))
    hi = max(float(np.nanmax(fine)), float(np.nanmax(coarse)))
    if not hi > lo:
        return 0.0
    cdfs = []
    for values in (fine, coarse):
        flat = np.ravel(values)
        counts = np.zeros(bins, dtype=np.int64)
        for start in range(0, flat.size, 1 << 24):  # chunks keep the bin indices small in memory
            chunk = flat[start:start + (1 << 24)]
            chunk = chunk[~np.isnan(chunk)]
            index = ((chunk - lo) * (bins / (hi - lo))).astype(np.int64)
            counts += np.bincount(np.minimum(index, bins - 1), minlength=bins)
        cdfs.append(np.cumsum(counts) / counts.sum())
    return float(np.abs(cdfs[0] - cdfs[1]).sum() * (hi - lo) / bins)


def standardised_patches(x: np.ndarray, k: int) -> np.ndarray:
    """(T, ny, nx) -> (T * (ny // k) * (nx // k), k * k) non-overlapping patches, each z-scored.

    A flat patch (standard deviation ~0) becomes all zeros rather than noise / 0.
    """
    t, ny, nx = x.shape
    if ny < k or nx < k:
        raise ValueError(f"patch size {k} exceeds the region grid {ny} x {nx} (lower domain.patch_size)")
    py, px = ny // k, nx // k
    p = x[:, : py * k, : px * k].reshape(t, py, k, px, k).transpose(0, 1, 3, 2, 4).reshape(-1, k * k)
    mean = p.mean(axis=1, keepdims=True)
    std = p.std(axis=1, keepdims=True)
    return np.where(std > 1e-12, (p - mean) / np.where(std > 1e-12, std, 1.0), 0.0)


def sliced_w(fine: np.ndarray, coarse: np.ndarray, k: int, projections: int, seeds: Sequence[int],
             max_patches: int) -> np.ndarray:
    """SW2 between standardised k x k patches of the two fields, one value per seed.

    Each seed draws its own projections and, where there are more than ``max_patches``
    patches, its own subsample of them, so the spread covers both.
    """
    a, b = standardised_patches(fine, k), standardised_patches(coarse, k)
    out = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        ia = rng.choice(len(a), max_patches, replace=False) if len(a) > max_patches else slice(None)
        # Paired fields (same days and places) keep the same patches, so the subsample
        # adds no difference of its own.
        ib = ia if len(a) == len(b) else (rng.choice(len(b), max_patches, replace=False)
                                          if len(b) > max_patches else slice(None))
        sa, sb = a[ia], b[ib]
        out.append(float(ot.sliced_wasserstein_distance(sa, sb, n_projections=projections, seed=int(seed))))
    return np.asarray(out)


@dataclass
class SeasonDistances:
    """Everything measured for one region and season (or ``all`` days)."""

    season: str
    days: pd.DatetimeIndex      # (T,) the fine days compared
    per_day: np.ndarray         # (T,)
    pooled: float
    pixel_map: np.ndarray       # (ny, nx)
    sliced: np.ndarray          # (n_seeds,)

    def row(self, region: str) -> dict:
        d = self.per_day
        return {"region": region, "season": self.season, "days": int(d.size), "mean": float(d.mean()),
                "median": float(np.median(d)), "p10": float(np.percentile(d, 10)), "p90": float(np.percentile(d, 90)),
                "pooled": self.pooled, "sliced_mean": float(self.sliced.mean()),
                "sliced_std": float(self.sliced.std(ddof=1)) if self.sliced.size > 1 else 0.0}


def analyse(fine: np.ndarray, fine_days: pd.DatetimeIndex, coarse: np.ndarray, coarse_days: pd.DatetimeIndex,
            seasons: dict[str, Sequence[int]], log10: bool, floor: float, patch_size: int, projections: int,
            seeds: Sequence[int], max_patches: int) -> list[SeasonDistances]:
    """Distances for each season and for all days together (season ``all``, the paper's set-up).

    ``fine`` (T_f, ny, nx) over ``fine_days``; ``coarse`` (T_c, ny, nx) on the same grid
    over ``coarse_days``, which must include every fine day.
    """
    fine_days, coarse_days = pd.DatetimeIndex(fine_days), pd.DatetimeIndex(coarse_days)
    lacking = fine_days.difference(coarse_days)
    if lacking.size:
        raise ValueError(f"the coarse record lacks {lacking.size} fine day(s), first {lacking[0].date()}")
    f, c = joint_minmax(log_transform(fine, log10, floor), log_transform(coarse, log10, floor))
    overlap = coarse_days.get_indexer(fine_days)  # the coarse days matching each fine day
    results = []
    for name, months in [*seasons.items(), ("all", list(range(1, 13)))]:
        fsel = np.flatnonzero(fine_days.month.isin(list(months)))
        csel = np.flatnonzero(coarse_days.month.isin(list(months)))
        if fsel.size == 0:
            continue
        f_s, c_s = f[fsel], c[overlap[fsel]]  # (T, ny, nx) each, same days
        results.append(SeasonDistances(
            season=name, days=fine_days[fsel], per_day=per_day_w1(f_s, c_s), pooled=pooled_w1(f_s, c[csel]),
            pixel_map=per_pixel_w1(f_s, c_s),
            sliced=sliced_w(f_s, c_s, patch_size, projections, seeds, max_patches)))
    return results


def table(region: str, results: Sequence[SeasonDistances]) -> pd.DataFrame:
    return pd.DataFrame([r.row(region) for r in results], columns=COLUMNS)


def analyse_files(fine_path: str, coarse_on_fine_path: str, variable: str, region: str, seasons: dict[str, Sequence[int]],
                  log10: bool, floor: float, patch_size: int, projections: int, seeds: Sequence[int], max_patches: int,
                  table_path: str) -> tuple[list[SeasonDistances], np.ndarray, np.ndarray]:
    """Rule domain: :func:`analyse` of a region's split files, its table written to ``table_path``.

    Returns the results and the grid's lat and lon, for the figures.
    """
    fine = io.read_field(fine_path, variable)
    coarse = io.read_field(coarse_on_fine_path, variable)
    results = analyse(fine.values, pd.DatetimeIndex(fine.time.values), coarse.values, pd.DatetimeIndex(coarse.time.values),
                      seasons, log10, floor, patch_size, projections, seeds, max_patches)
    df = table(region, results)
    log.info("%s:\n%s", region, df.to_string())
    with io.atomic_path(table_path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.6g")
    return results, fine.lat.values, fine.lon.values


def combine_tables(paths: Sequence[str], out: str) -> pd.DataFrame:
    """Concatenate per-region tables (checked for the expected columns) into ``out``, atomically."""
    frames = []
    for path in paths:
        df = pd.read_csv(path)
        if list(df.columns) != COLUMNS:
            raise io.DataValidationError(path, f"columns {list(df.columns)} are not the expected {COLUMNS}")
        frames.append(df)
    df = pd.concat(frames, ignore_index=True)
    with io.atomic_path(out) as tmp:
        df.to_csv(tmp, index=False, float_format="%.6g")
    log.info("%d rows from %d regions", len(df), len(paths))
    return df
