"""The ``transport`` twin: dust emitted by fixed fine-scale sources when the large-scale wind
blows, carried by that wind for days and removed at a fixed rate.

The fine field is the background (in :mod:`.base`) plus a transported dust plume, in
physical units (optical depth); with ``b(t) = 10 ** background(t)``:

    oracle(t)  = log10(b(t) + c(t))
    c(t)       = exp(-1 / decay_days) * advect(c(t-1), U(t)) + E(t) * G(t)
    E(t)       = emission * 10 ** seasonal(t) * A(t) * S
    A(t)       = (|U(t)| / U_rms) ** emission_exponent,   U_rms = sqrt(wind_mean^2 + 2 wind_std^2)
    U(t)       = (wind_mean + wind_std * xi_u(t),  wind_std * xi_v(t))         deg/day, east and north
    xi(t)      = wind_rho * xi(t-1) + sqrt(1 - wind_rho^2) * eps(t)          (AR(1), unit variance)
    S          = exp(source_std * s) / mean(exp(source_std * s))
    s          = -source_terrain * z(elevation) + sqrt(1 - source_terrain^2) * r
    G(t)       = exp(gust.std * g(t) - gust.std^2 / 2)

* ``S`` is the static source map, mean 1: sources lie in the low basins (``z``
  standardises the elevation over the grid) and, through the unit Gaussian field ``r``
  of length ``source_length``, in patches (dry lake beds, alluvial fans);
* ``A`` is the activity: emission grows as a power of the wind speed (a cubic law for the
  saltation flux), so the days the coarse record shows loading up are the days the
  sources emitted; it follows the background's seasonal cycle too;
* ``U`` is a daily, spatially uniform large-scale wind (the net daily displacement of the
  dust layer), persistent over a few days;
* ``advect`` moves the plume by ``U`` (bilinear, positive; what leaves the grid is lost and
  nothing flows in, the inflow being part of the background);
* ``G`` is the gustiness of the day: a unit Gaussian field ``g`` of length ``gust.length``,
  independent from day to day, lognormal with mean 1; no large-scale record shows it;
* the plume starts from zero ``ceil(5 decay_days)`` days before the first day, so the
  first day is already in equilibrium with the sources.

Prior (what the large-scale state and the static fields fix):

    prior(t)   = log10(b(t) + cbar(t)),
    cbar(t)    = exp(-1 / decay_days) * advect(cbar(t-1), U(t)) + E(t)

the same transport with the gustiness at its mean, ``E[G] = 1``, so ``cbar`` is the
conditional mean of the plume given every day's wind, activity and background. It
conditions on the large-scale state (background, wind and activity of every day up to t,
taken exactly, as a coarse reanalysis carries them) and on the static fields (elevation
and source map, which never change, so a long enough fine record reveals them); the
gustiness and the noise are unknown, the noise at its mean, zero in log10. The
coarse-information ceiling adds what the coarse cells show of the gusts' plumes
(:mod:`.ceiling`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from diffscale.core.grids import Box
from diffscale.data.sources.synthetic.base import CommonParameters, Gaussian, RandomField, TwinGenerator


@dataclass(frozen=True)
class TransportParameters(CommonParameters):
    """The ``transport`` twin. Winds in degrees/day; times in days; ``emission`` in optical depth/day."""

    wind_mean: float = 1.5  # net westerly drift of the dust layer, ~1.6 m/s
    wind_std: float = 1.5
    wind_rho: float = 0.7  # synoptic weather persists for a few days
    decay_days: float = 3.0  # e-folding lifetime of mineral dust by deposition: 2-4 days
    emission: float = 0.02  # domain-mean optical depth emitted per day at activity 1
    emission_exponent: float = 3.0  # saltation flux ~ u*^3
    source_std: float = 1.0  # log-normal spread of source strength: a few strong sources
    source_terrain: float = 0.7  # share of low terrain in where sources are
    source_length: float = 0.2
    gust: RandomField = RandomField(0.5, 0.1)  # natural-log std of the day's emission factor

    kind = "transport"

    def __post_init__(self) -> None:
        for name in ("decay_days", "wind_std", "source_length"):
            if not getattr(self, name) > 0:
                raise ValueError(f"data.synthetic.transport.{name}: {getattr(self, name)} is not positive")
        if not 0 <= self.source_terrain <= 1:
            raise ValueError(f"data.synthetic.transport.source_terrain: {self.source_terrain} is not in [0, 1]")


def _move(a: np.ndarray, n: int, axis: int) -> np.ndarray:
    """Move ``a`` by ``n`` whole pixels along ``axis``, filling with zeros."""
    out = np.zeros_like(a)
    size = a.shape[axis]
    if abs(n) >= size:
        return out
    src = [slice(None)] * a.ndim
    dst = [slice(None)] * a.ndim
    src[axis] = slice(max(0, -n), size - max(0, n))
    dst[axis] = slice(max(0, n), size - max(0, -n))
    out[tuple(dst)] = a[tuple(src)]
    return out


def advect(field: np.ndarray, dy: float, dx: float) -> np.ndarray:
    """Move a field by (dy, dx) pixels (rows, columns), bilinearly: positive, mass-conserving
    inside the grid; what leaves it is lost and nothing flows in."""
    out = field
    for axis, d in ((0, dy), (1, dx)):
        n = math.floor(d)
        f = d - n
        out = (1.0 - f) * _move(out, n, axis) + f * _move(out, n + 1, axis)
    return out


def transport_step(plume: np.ndarray, emission: np.ndarray, dy: float, dx: float, decay_days: float) -> np.ndarray:
    """One day of the plume: yesterday's advected by (dy, dx) pixels and decayed, plus today's emission."""
    return math.exp(-1.0 / decay_days) * advect(plume, dy, dx) + emission


class TransportTwin(TwinGenerator):
    def __init__(self, boxes: list[Box], margin: float, params: TransportParameters = TransportParameters()):
        super().__init__(boxes, margin, params)
        p = params
        shape = self.fine_grid.shape
        r = Gaussian(shape, p.source_length / self.px).draw(self.rng)
        s = -p.source_terrain * self.elevation_z + math.sqrt(1 - p.source_terrain**2) * r
        source = np.exp(p.source_std * s)
        self.source = source / source.mean()
        self.gust_field = Gaussian(shape, p.gust.length / self.px)
        self.xi = self.rng.standard_normal(2)
        self.u_rms = math.sqrt(p.wind_mean**2 + 2 * p.wind_std**2)
        self.plume = np.zeros(shape)
        self.mean_plume = np.zeros(shape)

    def wind(self) -> tuple[float, float]:
        """Today's large-scale wind (east, north) in degrees/day."""
        p = self.params
        return p.wind_mean + p.wind_std * self.xi[0], p.wind_std * self.xi[1]

    def _step(self, seasonal: float) -> None:
        p = self.params
        self.xi = p.wind_rho * self.xi + math.sqrt(1 - p.wind_rho**2) * self.rng.standard_normal(2)
        u, v = self.wind()
        activity = (math.hypot(u, v) / self.u_rms) ** p.emission_exponent
        emitted = p.emission * 10.0**seasonal * activity * self.source
        gust = np.exp(p.gust.std * self.gust_field.draw(self.rng) - p.gust.std**2 / 2)
        dy, dx = v / self.px, u / self.fine_grid.dlon
        self.plume = transport_step(self.plume, emitted * gust, dy, dx, p.decay_days)
        self.mean_plume = transport_step(self.mean_plume, emitted, dy, dx, p.decay_days)

    def fine_day(self, day_index: int, background: np.ndarray, seasonal: float) -> tuple[np.ndarray, np.ndarray]:
        if day_index == 0:
            for _ in range(math.ceil(5 * self.params.decay_days)):
                self._step(seasonal)
        self._step(seasonal)
        b = 10.0**background
        return np.log10(b + self.plume), np.log10(b + self.mean_plume)
