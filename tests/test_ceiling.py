"""The coarse-information ceiling: the prior plus what the coarse record's cells show, nothing from fine days."""

import numpy as np
import pytest

from diffscale.core.grids import Box
from diffscale.data.sources.synthetic import Ar1Twin, TwinParameters, twin_generator
from diffscale.data.sources.synthetic.ceiling import CoarseCeiling

BOX = Box((33.0, 34.0), (64.0, 65.25))
PERIOD = ("2000-01-01", "2000-02-29")


def r2_of(params: TwinParameters) -> dict[str, float]:
    """R2 of the prior and of the ceiling against the fine field of ``params``'s twin over PERIOD."""
    ceiling = CoarseCeiling.fit([BOX], 0.5, PERIOD, params, Ar1Twin)
    gen = twin_generator([BOX], 0.5, params)
    sse = {"prior": 0.0, "ceiling": 0.0}
    fine = []
    for month in ceiling.months(gen, *PERIOD):
        fine.append(month.fine)
        for name in sse:
            sse[name] += np.square(month.fine - getattr(month, name)).sum()
    fine = np.concatenate(fine)
    sst = np.square(fine - fine.mean()).sum()
    return {name: 1 - value / sst for name, value in sse.items()}


def test_the_ceiling_adds_what_the_coarse_cells_show_and_nothing_when_they_show_nothing():
    r2 = r2_of(TwinParameters())
    assert r2["ceiling"] > r2["prior"] + 0.05  # the cells show the anomaly's coarse-scale part
    blind = r2_of(TwinParameters(coarse_noise=3.0))  # cells drowned in noise
    assert blind["ceiling"] == pytest.approx(blind["prior"], abs=0.02)


def test_the_ceiling_of_a_day_uses_no_later_coarse_day():
    params = TwinParameters()
    ceiling = CoarseCeiling.fit([BOX], 0.5, PERIOD, params, Ar1Twin)
    whole = np.concatenate([m.ceiling for m in ceiling.months(twin_generator([BOX], 0.5, params), *PERIOD)])
    # the same twin cut after January (the generator draws month by month): January is the same
    cut = np.concatenate([m.ceiling for m in ceiling.months(twin_generator([BOX], 0.5, params),
                                                            "2000-01-01", "2000-01-31")])
    np.testing.assert_array_equal(cut, whole[:31])
    assert ceiling.gain.shape == (3,)
