"""The ``ar1`` twin: a persistent fine-scale anomaly that the coarse record does not carry.

In log10 space (``background`` and ``noise`` as in :mod:`.base`):

    oracle(t)  = background(t) + static + anomaly(t)
    static     = -static_std * z(elevation)                    (dust thins out over high terrain)
    anomaly(t) = rho * shift(anomaly(t-1), wind(t)) + sqrt(1 - rho^2) * anomaly.std * eps(t)
    wind(t)    = wind_speed * (0.7 + 0.6 cos(w t + phi_u),  0.6 sin(0.61 w t + phi_v)),  w = 2 pi / wind_period

``z`` standardises over the grid; ``eps`` is a unit Gaussian field of length
``anomaly.length``; ``shift`` moves a periodic field by the wind (pixels/day, eastward and
northward) with a Fourier phase ramp. The anomaly is independent of everything the coarse
record shows, so yesterday's fine field predicts it and the coarse history does not.

Prior (what the large-scale state and the static fields fix):

    prior(t) = background(t) + static

It conditions on the background (mean, seasonal cycle and large-scale modes, which the
coarse grid resolves; taken exactly, so the coarse record's own bias and noise do not
lower it) and on the elevation; the anomaly and the noise are at their conditional mean
given these, zero in log10, because they are independent of them. The coarse-information
ceiling adds what the coarse cells show of the anomaly (:mod:`.ceiling`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from diffscale.core.grids import Box
from diffscale.data.sources.synthetic.base import CommonParameters, Gaussian, RandomField, TwinGenerator


@dataclass(frozen=True)
class TwinParameters(CommonParameters):
    """The ``ar1`` twin. Amplitudes in log10 units; lengths in degrees; times in days."""

    static_std: float = 0.16
    anomaly: RandomField = RandomField(0.19, 0.12, 0.8)
    wind_speed: float = 0.08  # deg/day, so a little over a fine pixel a day
    wind_period: float = 97.0

    kind = "ar1"


def periodic_shift(field: np.ndarray, dy: float, dx: float) -> np.ndarray:
    """Advect a periodic field by (dy, dx) pixels with a Fourier phase ramp (sub-pixel exact)."""
    ky = np.fft.fftfreq(field.shape[0])[:, None]
    kx = np.fft.rfftfreq(field.shape[1])[None, :]
    phase = np.exp(-2j * np.pi * (ky * dy + kx * dx))
    return np.fft.irfft2(np.fft.rfft2(field) * phase, s=field.shape)


class Ar1Twin(TwinGenerator):
    def __init__(self, boxes: list[Box], margin: float, params: TwinParameters = TwinParameters()):
        super().__init__(boxes, margin, params)
        p = params
        self.static = -p.static_std * self.elevation_z
        self.anomaly_field = Gaussian(self.fine_grid.shape, p.anomaly.length / self.px)
        self.anomaly = p.anomaly.std * self.anomaly_field.draw(self.rng)
        self.wind_phase = self.rng.uniform(0, 2 * np.pi, size=2)

    def _wind(self, day_index: int) -> tuple[float, float]:
        p = self.params
        t = 2 * np.pi * day_index / p.wind_period
        # Westerly on average, veering slowly: speed in pixels/day.
        u = p.wind_speed / self.px * (0.7 + 0.6 * np.cos(t + self.wind_phase[0]))
        v = p.wind_speed / self.px * 0.6 * np.sin(0.61 * t + self.wind_phase[1])
        return v, u

    def fine_day(self, day_index: int, background: np.ndarray, seasonal: float) -> tuple[np.ndarray, np.ndarray]:
        p = self.params
        if day_index > 0:
            dy, dx = self._wind(day_index)
            self.anomaly = p.anomaly.rho * periodic_shift(self.anomaly, dy, dx) + np.sqrt(
                1 - p.anomaly.rho**2) * p.anomaly.std * self.anomaly_field.draw(self.rng)
        return background + self.static + self.anomaly, background + self.static
