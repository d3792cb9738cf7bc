"""What every kind of twin shares: grids, terrain, random fields, the large-scale background,
the fine noise and the coarse record.

In log10 space every twin's fine field is

    fine(t) = oracle(t) + noise(t)

* ``noise`` is a Gaussian field (``noise``: std, correlation length), independent from day
  to day: no model can know it;
* ``oracle`` is the kind's own field (see :mod:`.ar1`, :mod:`.transport`); each kind builds
  it on the large-scale background

      background(t) = mean + seasonal(t) + large(t)
      seasonal(t)   = seasonal_amplitude * cos(2 pi (doy(t) - seasonal_peak_doy) / 365.25)
      large(t)      = large_scale.std * sum_k a_k(t) m_k,   a_k(t) = rho a_k(t-1) + sqrt(1 - rho^2) eps

  with ``large_scale_modes`` smooth modes ``m_k`` (correlation length ``large_scale.length``,
  several coarse cells, so the coarse grid resolves them) and AR(1) amplitudes.

The coarse record is the area-weighted mean of the fine field in physical units (as a
coarse model sees the aerosol load) on the MERRA-2 grid, with a bias and its own noise in
log10 space, so the two records differ the way MERRA-2 and G5NR do:

    coarse(t) = log10(area_mean(10 ** fine(t))) + coarse_bias + coarse_noise * eps

Each kind also gives its *prior*: the field its own equations predict from the large-scale
state and the static fields, with every part the large scale does not fix at its
conditional mean. :mod:`.ceiling` adds what the coarse record's cells show beyond it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import numpy as np
import pandas as pd

from diffscale.core import io
from diffscale.core.grids import Box, Grid, conservative_matrices, covering_fine_grid, merra2_grid


@dataclass(frozen=True)
class RandomField:
    """One random part of a twin: standard deviation, correlation length (degrees) and lag-1
    correlation from one day to the next (0: independent days)."""

    std: float
    length: float
    rho: float = 0.0


@dataclass(frozen=True)
class CommonParameters:
    """The parameters every kind shares. Amplitudes in log10 units; lengths in degrees; times in days."""

    seed: int = 20051515
    mean: float = -1.25  # log10 of a typical dust optical depth (~0.056)
    seasonal_amplitude: float = 0.2
    seasonal_peak_doy: int = 180  # dust peaks in early summer over south-west Asia
    large_scale: RandomField = RandomField(0.2, 2.0, 0.9)
    large_scale_modes: int = 6
    noise: RandomField = RandomField(0.075, 0.04)
    coarse_bias: float = 0.05
    coarse_noise: float = 0.04
    elevation_relief: float = 900.0

    kind: ClassVar[str]

    @classmethod
    def from_dict(cls, values: dict) -> CommonParameters:
        """From flat values (random fields as dicts), e.g. a twin.json's "parameters" less "kind"."""
        fields = {k: RandomField(**v) if isinstance(v, dict) else v for k, v in values.items()}
        return cls(**fields)


class TwinMonth(NamedTuple):
    """One month of a twin, all log10: fine, oracle, prior and ceiling (T, ny, nx); coarse (T, cy, cx).

    The generator leaves ``ceiling`` empty; :class:`.ceiling.CoarseCeiling` fills it in.
    """

    days: pd.DatetimeIndex
    fine: np.ndarray
    coarse: np.ndarray
    oracle: np.ndarray
    prior: np.ndarray
    ceiling: np.ndarray | None = None


class Gaussian:
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
    """Generates a twin month by month, so memory does not grow with the period.

    A kind subclasses it: ``__init__`` draws its static fields and initial state after the
    shared ones (the order of the draws is the data), and :meth:`fine_day` advances its
    state by one day and returns that day's oracle and prior.
    """

    def __init__(self, boxes: list[Box], margin: float, params: CommonParameters):
        self.params = p = params
        self.coarse_grid, self.fine_grid = twin_grids(boxes, margin)
        self.rng = np.random.default_rng(p.seed)
        self.elevation = synthetic_elevation(self.fine_grid, self.rng, p.elevation_relief)
        self.px = self.fine_grid.dlat
        shape = self.fine_grid.shape
        # Large-scale modes: smooth, non-periodic-looking at the domain scale.
        ls = Gaussian(shape, p.large_scale.length / self.px)
        self.modes = ls.draw(self.rng, p.large_scale_modes) / np.sqrt(p.large_scale_modes)
        self.mode_amp = self.rng.standard_normal(p.large_scale_modes)
        self.noise_field = Gaussian(shape, p.noise.length / self.px)
        self.wy, self.wx = conservative_matrices(self.fine_grid, self.coarse_grid)

    @property
    def elevation_z(self) -> np.ndarray:
        """The elevation standardised over the grid (mean 0, std 1)."""
        return (self.elevation - self.elevation.mean()) / self.elevation.std()

    def fine_day(self, day_index: int, background: np.ndarray, seasonal: float) -> tuple[np.ndarray, np.ndarray]:
        """Advance the kind's state to day ``day_index`` (0: the first day) and return its
        (oracle, prior) in log10, given the day's background and seasonal term."""
        raise NotImplementedError

    def months(self, start: str, end: str) -> Iterator[TwinMonth]:
        """Yield the twin month by month from ``start`` to ``end`` (ISO days, inclusive)."""
        p = self.params
        days = io.days_in(start, end)
        rho_l = p.large_scale.rho
        for _, month_days in pd.Series(days, index=days).groupby([days.year, days.month]):
            month_days = pd.DatetimeIndex(month_days.values)
            fine, oracle, prior = [], [], []
            for day in month_days:
                i = (day - days[0]).days
                if i > 0:
                    self.mode_amp = rho_l * self.mode_amp + np.sqrt(1 - rho_l**2) * self.rng.standard_normal(self.mode_amp.size)
                seasonal = p.seasonal_amplitude * np.cos(2 * np.pi * (day.day_of_year - p.seasonal_peak_doy) / 365.25)
                large = p.large_scale.std * np.tensordot(self.mode_amp, self.modes, axes=1)
                known, expected = self.fine_day(i, p.mean + seasonal + large, seasonal)
                oracle.append(known)
                prior.append(expected)
                fine.append(known + p.noise.std * self.noise_field.draw(self.rng))
            fine_a = np.stack(fine)
            coarse = self.coarse(fine_a)
            yield TwinMonth(month_days, fine_a, coarse, np.stack(oracle), np.stack(prior))

    def area_mean(self, log10_fine: np.ndarray) -> np.ndarray:
        """log10 of the area-weighted mean of the physical field over each coarse cell."""
        # optimize: two matrix products, not the naive triple loop (400x faster on a 465 x 391 grid)
        return np.log10(np.einsum("yi,tij,xj->tyx", self.wy, 10.0 ** log10_fine, self.wx, optimize=True))

    def coarse(self, log10_fine: np.ndarray) -> np.ndarray:
        """The coarse record of (T, ny, nx) fine days: area mean, then the coarse model's own bias and noise."""
        p = self.params
        return self.area_mean(log10_fine) + p.coarse_bias + p.coarse_noise * self.rng.standard_normal(
            (log10_fine.shape[0], *self.coarse_grid.shape))
