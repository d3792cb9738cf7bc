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
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import ot
import pandas as pd
import xarray as xr

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
    return tuple(minmax_scaled(a, lo, hi) for a in arrays)


def minmax_scaled(a: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """(a - lo) / (hi - lo) in a's own dtype."""
    if not hi > lo:
        raise ValueError(f"cannot min-max scale: every value is {lo}")
    return (a - a.dtype.type(lo)) / a.dtype.type(hi - lo)


def _f64(x: np.ndarray) -> np.ndarray:
    """POT sums uniform weights 1/n cumulatively in the values' dtype: in float32 a million
    samples drift by percents, so distances are always taken in float64."""
    return np.asarray(x, dtype=np.float64)


# Days (per-day distances) and pixels (per-pixel ones) taken at a time: POT holds about ten
# float64 copies of what it is given, which for a paper region's two fine years is ~20 GB.
DAYS_AT_ONCE = 32
PIXELS_AT_ONCE = 8192


def per_day_w1(fine: np.ndarray, coarse: np.ndarray) -> np.ndarray:
    """(T, ny, nx) x 2 -> (T,) W1 between the two fields' pixel values, day by day."""
    if fine.shape != coarse.shape:
        raise ValueError(f"per-day distances need fields of equal shape, got {fine.shape} and {coarse.shape}")
    t = fine.shape[0]
    # POT takes samples along axis 0 and batches over the rest: (pixels, T). Its CDFs
    # are cumulative sums in the values' dtype, so float64 keeps them exact.
    out = [np.asarray(ot.wasserstein_1d(_f64(fine[i:i + DAYS_AT_ONCE].reshape(-1, fine.shape[1] * fine.shape[2]).T),
                                        _f64(coarse[i:i + DAYS_AT_ONCE].reshape(-1, fine.shape[1] * fine.shape[2]).T), p=1))
           for i in range(0, t, DAYS_AT_ONCE)]
    return np.concatenate(out) if out else np.zeros(0)


def per_pixel_w1(fine: np.ndarray, coarse: np.ndarray) -> np.ndarray:
    """(T, ny, nx) and (T', ny, nx) -> (ny, nx) W1 between each pixel's values over the days."""
    if fine.shape[1:] != coarse.shape[1:]:
        raise ValueError(f"per-pixel distances need the same grid, got {fine.shape[1:]} and {coarse.shape[1:]}")
    ny, nx = fine.shape[1:]
    f, c = fine.reshape(fine.shape[0], -1), coarse.reshape(coarse.shape[0], -1)
    out = [np.asarray(ot.wasserstein_1d(_f64(f[:, j:j + PIXELS_AT_ONCE]), _f64(c[:, j:j + PIXELS_AT_ONCE]), p=1))
           for j in range(0, ny * nx, PIXELS_AT_ONCE)]
    return np.concatenate(out).reshape(ny, nx)


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
    a, b = Histogram(lo, hi, bins), Histogram(lo, hi, bins)
    a.add(fine)
    b.add(coarse)
    return a.w1(b)


class Histogram:
    """Counts of values on ``bins`` equal bins over [lo, hi], added a slab at a time, so the
    pooled distance of a 25-year record never holds the record."""

    def __init__(self, lo: float, hi: float, bins: int = POOLED_BINS):
        self.lo, self.hi, self.bins = lo, hi, bins
        self.counts = np.zeros(bins, dtype=np.int64)

    def add(self, values: np.ndarray) -> None:
        if not self.hi > self.lo:  # one value only: every distance is 0
            return
        flat = np.ravel(values)
        for start in range(0, flat.size, 1 << 24):  # chunks keep the bin indices small in memory
            chunk = flat[start:start + (1 << 24)]
            chunk = chunk[~np.isnan(chunk)]
            index = ((chunk - self.lo) * (self.bins / (self.hi - self.lo))).astype(np.int64)
            self.counts += np.bincount(np.minimum(index, self.bins - 1), minlength=self.bins)

    def w1(self, other: Histogram) -> float:
        """W1 between the two histograms' values (same grid), to within one bin width."""
        if (self.lo, self.hi, self.bins) != (other.lo, other.hi, other.bins):
            raise ValueError("histograms on different grids")
        if not self.hi > self.lo:
            return 0.0
        cdf_a, cdf_b = (np.cumsum(h.counts) / h.counts.sum() for h in (self, other))
        return float(np.abs(cdf_a - cdf_b).sum() * (self.hi - self.lo) / self.bins)


def standardised_patches(x: np.ndarray, k: int, index: np.ndarray | None = None) -> np.ndarray:
    """(T, ny, nx) -> (T * (ny // k) * (nx // k), k * k) non-overlapping patches, each z-scored;
    with ``index``, only those patches (in that order), never the others.

    A flat patch (standard deviation ~0) becomes all zeros rather than noise / 0.
    """
    t, ny, nx = x.shape
    if ny < k or nx < k:
        raise ValueError(f"patch size {k} exceeds the region grid {ny} x {nx} (lower domain.patch_size)")
    py, px = ny // k, nx // k
    if index is None:
        p = x[:, : py * k, : px * k].reshape(t, py, k, px, k).transpose(0, 1, 3, 2, 4).reshape(-1, k * k)
    else:
        day, rest = np.divmod(np.asarray(index), py * px)
        row, col = np.divmod(rest, px)
        offsets = np.arange(k)
        p = x[day[:, None, None], (row * k)[:, None, None] + offsets[None, :, None],
              (col * k)[:, None, None] + offsets[None, None, :]].reshape(-1, k * k)
    mean = p.mean(axis=1, keepdims=True)
    std = p.std(axis=1, keepdims=True)
    return np.where(std > 1e-12, (p - mean) / np.where(std > 1e-12, std, 1.0), 0.0)


def patch_count(x: np.ndarray, k: int) -> int:
    t, ny, nx = x.shape
    return t * (ny // k) * (nx // k)


def sliced_w(fine: np.ndarray, coarse: np.ndarray, k: int, projections: int, seeds: Sequence[int],
             max_patches: int) -> np.ndarray:
    """SW2 between standardised k x k patches of the two fields, one value per seed.

    Each seed draws its own projections and, where there are more than ``max_patches``
    patches, its own subsample of them, so the spread covers both. Only the drawn
    patches are cut (all of a paper region's would be GBs).
    """
    na, nb = patch_count(fine, k), patch_count(coarse, k)
    whole_a = standardised_patches(fine, k) if na <= max_patches else None
    whole_b = standardised_patches(coarse, k) if nb <= max_patches else None
    out = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        ia = rng.choice(na, max_patches, replace=False) if na > max_patches else None
        # Paired fields (same days and places) keep the same patches, so the subsample
        # adds no difference of its own.
        ib = ia if na == nb else (rng.choice(nb, max_patches, replace=False) if nb > max_patches else None)
        sa = whole_a if ia is None else standardised_patches(fine, k, ia)
        sb = whole_b if ib is None else standardised_patches(coarse, k, ib)
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


class ArrayRecord:
    """A coarse record held in memory, read as :class:`FileRecord` reads a file: in slabs of days."""

    def __init__(self, values: np.ndarray, days: pd.DatetimeIndex, slab: int = 31):
        self.values, self.days, self.slab = values, pd.DatetimeIndex(days), slab

    def _read(self, index) -> np.ndarray:
        return self.values[index]

    def slabs(self) -> Iterator[tuple[pd.DatetimeIndex, np.ndarray]]:
        for start in range(0, len(self.days), self.slab):
            yield self.days[start:start + self.slab], self._read(slice(start, start + self.slab))

    def on(self, days: pd.DatetimeIndex) -> np.ndarray:
        return self._read(self.days.get_indexer(days))


class FileRecord(ArrayRecord):
    """A region's coarse record on its fine grid (coarse_on_fine.nc), read a month of days at a
    time: memory holds a slab, not the 25 years (~6 GB for a paper region)."""

    def __init__(self, path: str | os.PathLike, variable: str, slab: int = 31):
        self.path, self.variable, self.slab = path, variable, slab
        io.validate_field(io.open_dataset(path, times=pd.DatetimeIndex([])), variable, path)  # names and axes
        with xr.open_dataset(path, engine="netcdf4") as ds:
            self.days = pd.DatetimeIndex(ds["time"].values)
            self.lat, self.lon = ds["lat"].values, ds["lon"].values
        if len(self.days) > 1 and not (np.diff(self.days.values) > np.timedelta64(0)).all():
            raise io.DataValidationError(path, "coordinate 'time' is not strictly increasing")

    def _read(self, index) -> np.ndarray:
        with xr.open_dataset(self.path, engine="netcdf4") as ds:
            values = np.asarray(ds[self.variable].isel(time=index).values)
        if np.isinf(values).any():
            raise io.DataValidationError(self.path, f"variable '{self.variable}' holds infinite values")
        return values


def analyse(fine: np.ndarray, fine_days: pd.DatetimeIndex, coarse: np.ndarray, coarse_days: pd.DatetimeIndex,
            seasons: dict[str, Sequence[int]], log10: bool, floor: float, patch_size: int, projections: int,
            seeds: Sequence[int], max_patches: int) -> list[SeasonDistances]:
    """Distances for each season and for all days together (season ``all``, the paper's set-up).

    ``fine`` (T_f, ny, nx) over ``fine_days``; ``coarse`` (T_c, ny, nx) on the same grid
    over ``coarse_days``, which must include every fine day.
    """
    return analyse_record(fine, fine_days, ArrayRecord(coarse, coarse_days), seasons, log10, floor, patch_size,
                          projections, seeds, max_patches)


def analyse_record(fine: np.ndarray, fine_days: pd.DatetimeIndex, coarse: ArrayRecord,
                   seasons: dict[str, Sequence[int]], log10: bool, floor: float, patch_size: int, projections: int,
                   seeds: Sequence[int], max_patches: int) -> list[SeasonDistances]:
    """:func:`analyse` with the coarse record read in slabs, twice (its range, then its
    histograms): memory holds the fine record and the coarse one on the fine days, whatever
    the coarse record's length. Equal to the in-memory analysis to the bit."""
    fine_days = pd.DatetimeIndex(fine_days)
    lacking = fine_days.difference(coarse.days)
    if lacking.size:
        raise ValueError(f"the coarse record lacks {lacking.size} fine day(s), first {lacking[0].date()}")
    # The joint range, and each calendar month's coarse range (a season's pooled range below).
    month_lo, month_hi = {}, {}
    for days, values in coarse.slabs():
        lc = log_transform(values, log10, floor)
        for m in np.unique(days.month):
            part = lc[np.asarray(days.month == m)]
            month_lo[m] = min(month_lo.get(m, np.inf), float(np.nanmin(part)))
            month_hi[m] = max(month_hi.get(m, -np.inf), float(np.nanmax(part)))
    lf = log_transform(fine, log10, floor)
    lo, hi = min(float(np.nanmin(lf)), min(month_lo.values())), max(float(np.nanmax(lf)), max(month_hi.values()))
    f = minmax_scaled(lf, lo, hi)
    del lf
    c = minmax_scaled(log_transform(coarse.on(fine_days), log10, floor), lo, hi)  # (T_f, ny, nx): the fine days
    dtype = f.dtype.type
    plans = []
    for name, months in [*seasons.items(), ("all", list(range(1, 13)))]:
        fsel = np.flatnonzero(fine_days.month.isin(list(months)))
        if fsel.size == 0:
            continue
        f_s, in_season = f[fsel], [m for m in months if m in month_lo]
        # the scaled coarse min (max) is the scaled log min (max): the scaling is monotone
        c_lo = float(minmax_scaled(np.array([min(month_lo[m] for m in in_season)], dtype=dtype), lo, hi)[0])
        c_hi = float(minmax_scaled(np.array([max(month_hi[m] for m in in_season)], dtype=dtype), lo, hi)[0])
        p_lo, p_hi = min(float(np.nanmin(f_s)), c_lo), max(float(np.nanmax(f_s)), c_hi)
        pooled = (Histogram(p_lo, p_hi), Histogram(p_lo, p_hi))
        pooled[0].add(f_s)
        plans.append((name, list(months), fsel, pooled))
    for days, values in coarse.slabs():
        scaled = minmax_scaled(log_transform(values, log10, floor), lo, hi)
        for _, months, _, pooled in plans:
            pooled[1].add(scaled[np.asarray(days.month.isin(months))])
    results = []
    for name, _, fsel, (hist_f, hist_c) in plans:
        f_s, c_s = f[fsel], c[fsel]  # (T, ny, nx) each, same days
        results.append(SeasonDistances(
            season=name, days=fine_days[fsel], per_day=per_day_w1(f_s, c_s), pooled=hist_f.w1(hist_c),
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
    coarse = FileRecord(coarse_on_fine_path, variable)
    if not (np.allclose(coarse.lat, fine.lat) and np.allclose(coarse.lon, fine.lon)):
        raise io.DataValidationError(coarse_on_fine_path, f"grid differs from {fine_path} (expected the region's fine grid)")
    results = analyse_record(fine.values, pd.DatetimeIndex(fine.time.values), coarse, seasons, log10, floor,
                             patch_size, projections, seeds, max_patches)
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
