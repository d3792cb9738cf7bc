"""The synthetic twin: a coarse and a fine daily record whose relation is known.

In log10 space the fine field is

    fine = mean + seasonal cycle + large-scale part + static elevation pattern
           + persistent small-scale anomaly + unpredictable noise

* the large-scale part is a few smooth modes (correlation length several coarse cells)
  with AR(1) daily amplitudes: the coarse grid resolves it;
* the static pattern is a linear response to the (fine, synthetic) elevation;
* the small-scale anomaly is AR(1) in time (lag-1 correlation ``rho``) and advected by
  a slowly varying, spatially uniform wind, so yesterday's fine field predicts today's;
* the noise is independent from day to day.

The coarse record is the area-weighted mean of the fine field (in physical units, as a
coarse model would see the aerosol load) on the MERRA-2 grid, with a bias and its own
noise in log10 space, so the two records differ the way MERRA-2 and G5NR do.

Two reference numbers are measured on the data made: the R2 of bicubic interpolation
of the coarse field, and the R2 of an oracle that knows everything but the noise. They
bracket what a downscaler can reach.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd


from diffscale.core import cf, grids, io
from diffscale.core.grids import Box, Grid, conservative_matrices, covering_fine_grid, merra2_grid


@dataclass(frozen=True)
class RandomField:
    """One random part of the fine field: standard deviation (log10 units), correlation
    length (degrees) and lag-1 correlation from one day to the next (0: independent days)."""

    std: float
    length: float
    rho: float = 0.0


@dataclass(frozen=True)
class TwinParameters:
    """Amplitudes in log10 units; lengths in degrees; times in days."""

    seed: int = 20051515
    mean: float = -1.25  # log10 of a typical dust optical depth (~0.056)
    seasonal_amplitude: float = 0.2
    seasonal_peak_doy: int = 180  # dust peaks in early summer over south-west Asia
    large_scale: RandomField = RandomField(0.2, 2.0, 0.9)
    large_scale_modes: int = 6
    static_std: float = 0.16
    anomaly: RandomField = RandomField(0.19, 0.12, 0.8)
    wind_speed: float = 0.08  # deg/day, so a little over a fine pixel a day
    wind_period: float = 97.0
    noise: RandomField = RandomField(0.075, 0.04)
    coarse_bias: float = 0.05
    coarse_noise: float = 0.04
    elevation_relief: float = 900.0

    @classmethod
    def from_dict(cls, values: dict) -> TwinParameters:
        """From the config's data.synthetic or twin.json's "parameters" (random fields as dicts)."""
        fields = {k: RandomField(**v) if isinstance(v, dict) else v for k, v in values.items()}
        return cls(**fields)


@dataclass
class TwinScores:
    bicubic_r2: float
    oracle_r2: float
    anomaly_lag1_correlation: float  # at fixed pixels, so advection lowers it below rho
    coarse_minus_fine_mean: float
    coarse_minus_fine_std: float
    days: int
    pixels: int


class _Gaussian:
    """Stationary Gaussian random fields on a grid, by spectral filtering (periodic)."""

    def __init__(self, shape: tuple[int, int], length_px: float):
        ky = np.fft.fftfreq(shape[0])[:, None]
        kx = np.fft.rfftfreq(shape[1])[None, :]
        # A Gaussian covariance of length L has a Gaussian spectrum of width 1/(2 pi L).
        self.filter = np.exp(-2.0 * (np.pi * length_px) ** 2 * (kx**2 + ky**2))
        self.shape = shape
        # Unit point variance: white noise filtered by H has variance mean(|H|^2) over the full spectrum.
        full = np.exp(-2.0 * (np.pi * length_px) ** 2 * (np.fft.fftfreq(shape[1])[None, :] ** 2 + ky**2))
        self.scale = 1.0 / np.sqrt(np.mean(full**2))

    def draw(self, rng: np.random.Generator, n: int | None = None) -> np.ndarray:
        shape = self.shape if n is None else (n, *self.shape)
        white = rng.standard_normal(shape)
        return self.scale * np.fft.irfft2(self.filter * np.fft.rfft2(white), s=self.shape)


def _shift(field: np.ndarray, dy: float, dx: float) -> np.ndarray:
    """Advect a periodic field by (dy, dx) pixels with a Fourier phase ramp (sub-pixel exact)."""
    ky = np.fft.fftfreq(field.shape[0])[:, None]
    kx = np.fft.rfftfreq(field.shape[1])[None, :]
    phase = np.exp(-2j * np.pi * (ky * dy + kx * dx))
    return np.fft.irfft2(np.fft.rfft2(field) * phase, s=field.shape)


def twin_grids(boxes: list[Box], margin: float) -> tuple[Grid, Grid]:
    """The MERRA-2 cells over the padded union of the boxes, and the G5NR cells covering them."""
    coarse = merra2_grid(Box.union(boxes).padded(margin))
    return coarse, covering_fine_grid(coarse)


def synthetic_elevation(fine: Grid, rng: np.random.Generator, relief: float) -> np.ndarray:
    """A positive terrain (m) with ridges at all scales: a red-noise field lifted above sea level."""
    ny, nx = fine.shape
    ky = np.fft.fftfreq(ny)[:, None]
    kx = np.fft.rfftfreq(nx)[None, :]
    k = np.hypot(ky, kx)
    k[0, 0] = 1.0
    spectrum = k ** -1.6  # amplitude ~ k^-1.6, power ~ k^-3.2: rough, mountain-like
    spectrum[0, 0] = 0.0
    z = np.fft.irfft2(spectrum * np.fft.rfft2(rng.standard_normal((ny, nx))), s=(ny, nx))
    z = (z - z.mean()) / z.std()
    # Lowest point at 200 m, one relief unit per standard deviation: valleys to high ridges.
    return 200.0 + relief * (z - z.min())


class TwinGenerator:
    """Generates the twin month by month, so memory does not grow with the period."""

    def __init__(self, boxes: list[Box], margin: float, params: TwinParameters = TwinParameters()):
        self.params = p = params
        self.coarse_grid, self.fine_grid = twin_grids(boxes, margin)
        self.rng = np.random.default_rng(p.seed)
        self.elevation = synthetic_elevation(self.fine_grid, self.rng, p.elevation_relief)
        px = self.fine_grid.dlat
        shape = self.fine_grid.shape
        # Large-scale modes: smooth, non-periodic-looking at the domain scale.
        ls = _Gaussian(shape, p.large_scale.length / px)
        self.modes = ls.draw(self.rng, p.large_scale_modes) / np.sqrt(p.large_scale_modes)
        self.mode_amp = self.rng.standard_normal(p.large_scale_modes)
        z = (self.elevation - self.elevation.mean()) / self.elevation.std()
        self.static = -p.static_std * z  # dust thins out over high terrain
        self.anomaly_field = _Gaussian(shape, p.anomaly.length / px)
        self.anomaly = p.anomaly.std * self.anomaly_field.draw(self.rng)
        self.noise_field = _Gaussian(shape, p.noise.length / px)
        self.wind_phase = self.rng.uniform(0, 2 * np.pi, size=2)
        self.wy, self.wx = conservative_matrices(self.fine_grid, self.coarse_grid)

    def _wind(self, day_index: int) -> tuple[float, float]:
        p = self.params
        px = self.fine_grid.dlat
        t = 2 * np.pi * day_index / p.wind_period
        # Westerly on average, veering slowly: speed in pixels/day.
        u = p.wind_speed / px * (0.7 + 0.6 * np.cos(t + self.wind_phase[0]))
        v = p.wind_speed / px * 0.6 * np.sin(0.61 * t + self.wind_phase[1])
        return v, u

    def months(self, start: str, end: str) -> Iterator[tuple[pd.DatetimeIndex, np.ndarray, np.ndarray, np.ndarray]]:
        """Yield (days, fine, coarse, oracle, anomaly) per month, all log10.

        fine, oracle and anomaly are (T, ny, nx) on the fine grid; coarse is (T, cy, cx).
        """
        p = self.params
        days = io.days_in(start, end)
        rho_l = p.large_scale.rho
        for _, month_days in pd.Series(days, index=days).groupby([days.year, days.month]):
            month_days = pd.DatetimeIndex(month_days.values)
            fine, oracle, anomaly = [], [], []
            for day in month_days:
                i = (day - days[0]).days
                if i > 0:
                    self.mode_amp = rho_l * self.mode_amp + np.sqrt(1 - rho_l**2) * self.rng.standard_normal(self.mode_amp.size)
                    dy, dx = self._wind(i)
                    self.anomaly = p.anomaly.rho * _shift(self.anomaly, dy, dx) + np.sqrt(1 - p.anomaly.rho**2) * p.anomaly.std * self.anomaly_field.draw(self.rng)
                seasonal = p.seasonal_amplitude * np.cos(2 * np.pi * (day.day_of_year - p.seasonal_peak_doy) / 365.25)
                large = p.large_scale.std * np.tensordot(self.mode_amp, self.modes, axes=1)
                known = p.mean + seasonal + large + self.static + self.anomaly
                oracle.append(known)
                anomaly.append(self.anomaly)
                fine.append(known + p.noise.std * self.noise_field.draw(self.rng))
            fine_a = np.stack(fine)
            # Area-weighted mean of the physical field, then the coarse model's own bias and noise.
            mean_phys = np.einsum("yi,tij,xj->tyx", self.wy, 10.0 ** fine_a, self.wx)
            coarse = np.log10(mean_phys) + p.coarse_bias + p.coarse_noise * self.rng.standard_normal(mean_phys.shape)
            yield month_days, fine_a, coarse, np.stack(oracle), np.stack(anomaly)


def bicubic(coarse: np.ndarray, coarse_grid: Grid, fine_grid: Grid) -> np.ndarray:
    """Bicubic spline interpolation of (T, cy, cx) coarse fields onto fine centres (T, ny, nx)."""
    return grids.bicubic(coarse, coarse_grid.lat, coarse_grid.lon, fine_grid.lat, fine_grid.lon)


class _R2:
    """Streaming 1 - SSE/SST over all pixels and days."""

    def __init__(self) -> None:
        self.n = 0
        self.s = 0.0
        self.ss = 0.0
        self.sse: dict[str, float] = {}

    def add(self, truth: np.ndarray, **predictions: np.ndarray) -> None:
        self.n += truth.size
        self.s += truth.sum()
        self.ss += np.square(truth).sum()
        for name, pred in predictions.items():
            self.sse[name] = self.sse.get(name, 0.0) + np.square(truth - pred).sum()

    def r2(self, name: str) -> float:
        sst = self.ss - self.s**2 / self.n
        return float(1.0 - self.sse[name] / sst)


def make_twin(boxes: list[Box], margin: float, period: tuple[str, str], out_dir: str | Path,
              variable: str = "DUEXTTAU", long_name: str = "Dust Extinction AOT [550 nm]", units: str = "1",
              params: TwinParameters = TwinParameters(), metadata: cf.Metadata | None = None) -> TwinScores:
    """Write the twin under ``out_dir`` (coarse/, fine/, elevation.nc, twin.json) and score it.

    ``metadata``: the config's CF/ACDD attributes for every file (:class:`cf.Metadata`).
    """
    out_dir = Path(out_dir)
    gen = TwinGenerator(boxes, margin, params)
    cg, fg = gen.coarse_grid, gen.fine_grid
    attrs = {"units": units, "long_name": long_name}
    provenance = {"source": "diffscale synthetic twin", "twin_parameters": json.dumps(asdict(params))}
    # Score only where bicubic interpolates rather than extrapolates.
    inside = ((fg.lat >= cg.lat[0]) & (fg.lat <= cg.lat[-1]))[:, None] & ((fg.lon >= cg.lon[0]) & (fg.lon <= cg.lon[-1]))[None, :]
    r2 = _R2()
    diff_s = diff_ss = 0.0
    diff_n = 0
    anomaly_prev = None
    lag_num = lag_den_a = lag_den_b = 0.0
    written: list[Path] = []
    try:
        for days, fine, coarse, oracle, anomaly in gen.months(*period):
            for field, values, grid, name in (("fine", fine, fg, "G5NR 0.0625 deg"),
                                              ("coarse", coarse, cg, "MERRA-2 0.5 x 0.625 deg")):
                ds = io.field_dataset(10.0 ** values.astype(np.float32), days, grid.lat, grid.lon, variable, attrs,
                                      provenance | {"grid": name})
                written.append(io.write_netcdf(ds, io.month_file(out_dir / field, days[0].year, days[0].month),
                                               metadata=metadata, history=f"synthetic twin, {field} record"))
            # Scores use the float32 values as written, log10 of what a reader gets back.
            fine_w = np.log10((10.0 ** fine).astype(np.float32)).astype(np.float64)
            coarse_w = np.log10((10.0 ** coarse).astype(np.float32)).astype(np.float64)
            r2.add(fine_w[:, inside], bicubic=bicubic(coarse_w, cg, fg)[:, inside], oracle=oracle[:, inside])
            area_mean = np.log10(np.einsum("yi,tij,xj->tyx", gen.wy, 10.0 ** fine_w, gen.wx))
            d = coarse_w - area_mean
            diff_s += d.sum(); diff_ss += np.square(d).sum(); diff_n += d.size
            series = anomaly if anomaly_prev is None else np.concatenate([anomaly_prev, anomaly])
            a, b = series[1:], series[:-1]
            lag_num += (a * b).sum(); lag_den_a += (a * a).sum(); lag_den_b += (b * b).sum()
            anomaly_prev = anomaly[-1:]
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    diff_mean = diff_s / diff_n
    scores = TwinScores(
        bicubic_r2=r2.r2("bicubic"),
        oracle_r2=r2.r2("oracle"),
        anomaly_lag1_correlation=float(lag_num / np.sqrt(lag_den_a * lag_den_b)),
        coarse_minus_fine_mean=float(diff_mean),
        coarse_minus_fine_std=float(np.sqrt(diff_ss / diff_n - diff_mean**2)),
        days=len(io.days_in(*period)),
        pixels=int(inside.sum()),
    )
    elev = io.field_dataset(gen.elevation.astype(np.float32), None, fg.lat, fg.lon, "elevation",
                            {"units": "m", "long_name": "surface elevation above sea level", "standard_name": "surface_altitude"},
                            provenance | {f"reference_{k}": v for k, v in asdict(scores).items()})
    io.write_netcdf(elev, out_dir / "elevation.nc", metadata=metadata, history="synthetic twin, elevation")
    with io.atomic_path(out_dir / "twin.json") as tmp:
        tmp.write_text(json.dumps({"scores": asdict(scores), "parameters": asdict(params)}, indent=2) + "\n")
    return scores


def twin_oracle(boxes: list[Box], margin: float, period: tuple[str, str], params: TwinParameters,
                requests: dict[str, tuple[np.ndarray, np.ndarray, list[str]]]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Regenerate the twin and cut its oracle (everything but the noise) for the requested days.

    requests: {key: (lat, lon, days)} with lat/lon G5NR centres inside the twin's grid and
    ISO days inside ``period``. Returns {key: (oracle, fine)}, both (T, ny, nx) physical
    float32, the fine field exactly as make_twin wrote it, so a caller can check that the
    regeneration reproduces the files it scores against. One pass over the period serves
    every request (the generator is sequential: day t needs every day before it).
    """
    gen = TwinGenerator(boxes, margin, params)
    fg = gen.fine_grid
    index = {}
    for key, (lat, lon, days) in requests.items():
        iy = np.searchsorted(fg.lat, np.asarray(lat) - 1e-9)
        ix = np.searchsorted(fg.lon, np.asarray(lon) - 1e-9)
        if (iy >= fg.lat.size).any() or (ix >= fg.lon.size).any() or not (
                np.allclose(fg.lat[iy], lat) and np.allclose(fg.lon[ix], lon)):
            raise ValueError(f"oracle request {key}: the grid is not part of the twin's fine grid")
        index[key] = (iy, ix, pd.DatetimeIndex(pd.to_datetime(list(days))))
    out = {key: ([], []) for key in requests}
    for month_days, fine, _, oracle, _ in gen.months(*period):
        for key, (iy, ix, days) in index.items():
            take = np.flatnonzero(month_days.isin(days))
            if take.size:
                cut = np.ix_(take, iy, ix)
                out[key][0].append(10.0 ** oracle[cut].astype(np.float32))
                out[key][1].append(10.0 ** fine[cut].astype(np.float32))
    result = {}
    for key, (oracle_parts, fine_parts) in out.items():
        ny, nx = len(requests[key][0]), len(requests[key][1])
        stack = lambda parts: np.concatenate(parts) if parts else np.empty((0, ny, nx), np.float32)  # noqa: E731
        result[key] = (stack(oracle_parts), stack(fine_parts))
        if result[key][0].shape[0] != len(index[key][2]):
            raise ValueError(f"oracle request {key}: {len(index[key][2])} days asked, "
                             f"{result[key][0].shape[0]} inside the twin's period {period[0]}..{period[1]}")
    return result
