"""The synthetic twin's oracle as a one-member 'model': every term of the twin but its noise.

No downscaler can beat it on the twin, so it is the ceiling of the scores. It exists only
for the twin (``data.source: synthetic``), which is regenerated from ``twin.json``; the
oracle belongs to the scored files only if that regeneration reproduces them, which
:func:`oracle_samples` checks before writing anything.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from diffscale.core import cf, io, registry
from diffscale.core.days import DaySplit
from diffscale.core.grids import region_boxes
from diffscale.core.samples import member_dataset
from diffscale.data.sources.synthetic import TwinParameters, twin_oracle

log = logging.getLogger(__name__)

PERIODS = ("test", "beyond")
PathLike = str | os.PathLike


@dataclass(frozen=True)
class _Request:
    """The oracle of one region, season and period: where, when, the file to check against, the output."""

    lat: np.ndarray
    lon: np.ndarray
    days: pd.DatetimeIndex
    truth: PathLike | None
    out: PathLike


def _requests(keys: Sequence[str], days_files: Sequence[PathLike], fine_files: Sequence[PathLike],
              beyond_truth: Sequence[PathLike | None], variable: str, outputs: Sequence[PathLike]) -> dict[str, _Request]:
    outs = iter(outputs)
    requests = {}
    for key, days_path, fine_path, truth_path in zip(keys, days_files, fine_files, beyond_truth, strict=True):
        fine = io.read_field(fine_path, variable)
        days = DaySplit.from_json(days_path)
        for period in PERIODS:
            truth = fine_path if period == "test" else truth_path
            requests[f"{key}/{period}"] = _Request(fine.lat.values, fine.lon.values, getattr(days, period), truth,
                                                   next(outs))
    return requests


def _check_reproduces(request: _Request, regenerated: np.ndarray, variable: str) -> None:
    written = io.read_field(request.truth, variable).sel(time=request.days).values
    if not np.allclose(written, regenerated, rtol=1e-6, atol=0):
        raise io.DataValidationError(request.truth, "the twin regenerated from twin.json does not reproduce this "
                                     "file: the oracle would not belong to this data (rerun make_synthetic)")


def oracle_samples(twin_json: PathLike, boxes: Mapping[str, dict], margin: float, period: Sequence[str], *,
                   regions: Sequence[str], seasons: Sequence[str], days_files: Sequence[PathLike],
                   fine_files: Sequence[PathLike], truth_files: Sequence[PathLike], truth_index: Sequence[int],
                   variable: str, attrs: dict, outputs: Sequence[PathLike], metadata: cf.Metadata | None = None) -> None:
    """Rule sample_oracle: the oracle's one-member samples of every region, season and period.

    The twin (``twin_json``'s parameters; ``boxes``, ``margin``, ``period`` as make_twin
    was given them) is regenerated once for all. ``regions``, ``seasons``, ``days_files``,
    ``fine_files`` and ``truth_index`` run in parallel, one entry per region and season;
    ``truth_files`` holds each region's truth.nc (empty where the split declares none,
    so there are no beyond days to check); ``outputs`` runs region, season, then period
    (test, beyond). Each request's days are checked against the file the models are
    scored on (fine.nc for test days, truth.nc for beyond days) before it is written.
    ``metadata``: the config's CF/ACDD attributes.
    """
    params = TwinParameters.from_dict(io.read_json(twin_json)["parameters"])
    beyond_truth = [truth_files[t] if len(truth_files) else None for t in truth_index]
    keys = [f"{r}/{s}" for r, s in zip(regions, seasons, strict=True)]
    requests = _requests(keys, days_files, fine_files, beyond_truth, variable, outputs)
    log.info("regenerating the twin over %s..%s for %d requests", *period, len(requests))
    result = twin_oracle(list(region_boxes(boxes).values()), margin, tuple(period), params,
                         {key: (r.lat, r.lon, r.days) for key, r in requests.items()})
    for key, (oracle, regenerated) in result.items():
        r = requests[key]
        if len(r.days):
            _check_reproduces(r, regenerated, variable)
        ds = member_dataset(oracle[None], r.days, r.lat, r.lon, variable, attrs,
                            {"model": "oracle", "method": registry.entry("oracle").description})
        io.write_netcdf(ds, r.out, metadata=metadata, history="the twin's oracle (diffscale.evaluation.oracle)")
        log.info("%s: %d days", key, len(r.days))
