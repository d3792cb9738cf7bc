"""The coarse-information ceiling: the best prediction of the fine field from the coarse record
and the static fields, by the twin's own equations.

Each kind gives a *prior* (see :mod:`.ar1`, :mod:`.transport`): its equations driven by
the large-scale state only (taken exactly), with every part the large scale does not fix
at its conditional mean. The coarse record shows more than the large-scale state: its
cells are area means of the fine field, so they also show the coarse-cell share of the
parts the prior leaves out. The ceiling adds what the coarse cells of day t and the days
before tell about them:

    ceiling(t) = prior(t) + k0 + sum_{l < LAGS} k_l * R(t - l)
    R(t)       = bicubic(r(t)),   r(t) = coarse(t) - coarse_bias - log10(area_mean(10 ** prior(t)))

``r`` is the coarse record's innovation (what its cells show beyond the prior), ``R`` its
bicubic interpolation onto the fine grid, and ``k0, k_l`` the least squares estimate
(over every pixel and day, lightly ridged) of the fine field minus the prior from the
innovations of day t and the ``LAGS - 1`` days before it, fitted once on an independent realisation
of the same twin (seed + 1, the same grids, period and parameters, at most ``FIT_DAYS``
days). So the ceiling conditions on the large-scale state, the static fields and the
coarse record up to day t, never on a fine day; what the coarse record cannot show
(sub-cell structure, the noise) stays unknown. It is a linear use of the interpolated
coarse innovations, not a Bayes-optimal filter, and it ignores coarse days older than the lags.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import numpy as np

from diffscale.core import grids
from diffscale.core.grids import Box
from diffscale.core.read_ahead import read_ahead
from diffscale.data.sources.synthetic.base import CommonParameters, TwinGenerator, TwinMonth

LAGS = 2  # the coarse innovations of day t and of the day before
FIT_DAYS = 365  # a year: every season; three weights need no more
RIDGE = 1e-3  # relative to the mean diagonal of the normal equations


def _innovation(gen: TwinGenerator, month: TwinMonth) -> np.ndarray:
    """(T, ny, nx): the coarse record's cells minus what the prior makes of them, interpolated onto the fine grid."""
    r = month.coarse - gen.params.coarse_bias - gen.area_mean(month.prior)
    cg, fg = gen.coarse_grid, gen.fine_grid
    return grids.bicubic(r, cg.lat, cg.lon, fg.lat, fg.lon)


class _Lagged:
    """At each fine pixel, the regressors [1, R(t), R(t-1), ...] of consecutive days, across month boundaries."""

    def __init__(self, shape: tuple[int, int]):
        self.history = np.zeros((LAGS - 1, *shape))  # before the first day: no innovation, its mean

    def regressors(self, r: np.ndarray) -> np.ndarray:
        """(T, ny, nx, 1 + LAGS) from the month's (T, ny, nx) innovations."""
        series = np.concatenate([self.history, r])
        lagged = [series[LAGS - 1 - lag: series.shape[0] - lag] for lag in range(LAGS)]
        self.history = series[series.shape[0] - (LAGS - 1):]
        return np.stack([np.ones_like(r), *lagged], axis=-1)


class CoarseCeiling:
    """The gain from the coarse record's innovations, one for every pixel; :meth:`months` adds the update."""

    def __init__(self, gain: np.ndarray):
        self.gain = gain  # (1 + LAGS,): offset, then one weight per lag

    @classmethod
    def fit(cls, boxes: list[Box], margin: float, period: tuple[str, str], params: CommonParameters,
            generator: type[TwinGenerator]) -> CoarseCeiling:
        """Estimate the gain on an independent realisation (seed + 1) of the twin over ``period``'s first days."""
        gen = generator(boxes, margin, replace(params, seed=params.seed + 1))
        end = min(np.datetime64(period[1]), np.datetime64(period[0]) + np.timedelta64(FIT_DAYS - 1, "D"))
        lagged = _Lagged(gen.fine_grid.shape)
        xtx = xty = 0.0
        for month in read_ahead(gen.months(period[0], str(end))):
            x = lagged.regressors(_innovation(gen, month))
            y = month.fine - month.prior
            xtx = xtx + np.einsum("tyxi,tyxj->ij", x, x)
            xty = xty + np.einsum("tyxi,tyx->i", x, y)
        ridge = RIDGE * np.trace(xtx) / (1 + LAGS) * np.eye(1 + LAGS)
        ridge[0, 0] = 0.0  # the mean offset is not shrunk
        return cls(np.linalg.solve(xtx + ridge, xty))

    def months(self, gen: TwinGenerator, start: str, end: str) -> Iterator[TwinMonth]:
        """``gen``'s months with the ceiling = prior + the coarse record's update."""
        lagged = _Lagged(gen.fine_grid.shape)
        # The generator a month ahead in its own thread: it and the update share two cores.
        for month in read_ahead(gen.months(start, end)):
            update = lagged.regressors(_innovation(gen, month)) @ self.gain
            yield month._replace(ceiling=month.prior + update)
