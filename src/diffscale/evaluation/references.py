"""The synthetic twin's references as one-member 'models', regenerated from ``twin.json``.

* ``oracle``: every term of the twin but its noise. No downscaler can beat it; it says
  what is knowable if the unknowable (the fine anomaly, the gustiness) were known.
* ``ceiling``: the coarse-information ceiling, the best prediction from the coarse record
  and the static fields by the twin's own equations (see each kind's module in
  :mod:`diffscale.data.sources.synthetic`). It says what a downscaler can reach.

They exist only for the twin (``data.source: synthetic``); they belong to the scored files
only if the regeneration reproduces them, which :func:`reference_samples` checks before
writing anything.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass

import numpy as np
import pandas as pd

from diffscale.core import cf, io, registry
from diffscale.core.days import DaySplit
from diffscale.core.grids import region_boxes
from diffscale.core.samples import GrowingMemberFile
from diffscale.data.sources.synthetic import REFERENCES, twin_parameters, twin_reference_months

log = logging.getLogger(__name__)

PERIODS = ("test", "beyond")
PathLike = str | os.PathLike


@dataclass(frozen=True)
class _Request:
    """The references of one region, season and period: where, when, the file to check against, the outputs."""

    lat: np.ndarray
    lon: np.ndarray
    days: pd.DatetimeIndex
    truth: PathLike | None
    out: dict[str, PathLike]


def _requests(keys: Sequence[str], days_files: Sequence[PathLike], fine_files: Sequence[PathLike],
              beyond_truth: Sequence[PathLike | None], variable: str,
              outputs: Mapping[str, Sequence[PathLike]]) -> dict[str, _Request]:
    outs = {name: iter(outputs[name]) for name in REFERENCES}
    requests = {}
    for key, days_path, fine_path, truth_path in zip(keys, days_files, fine_files, beyond_truth, strict=True):
        fine = io.read_field(fine_path, variable)
        days = DaySplit.from_json(days_path)
        for period in PERIODS:
            truth = fine_path if period == "test" else truth_path
            requests[f"{key}/{period}"] = _Request(fine.lat.values, fine.lon.values, getattr(days, period), truth,
                                                   {name: next(o) for name, o in outs.items()})
    return requests


def _check_reproduces(request: _Request, days: pd.DatetimeIndex, regenerated: np.ndarray, variable: str) -> None:
    written = io.read_field(request.truth, variable, times=days).values
    if written.shape != regenerated.shape or not np.allclose(written, regenerated, rtol=1e-6, atol=0):
        raise io.DataValidationError(request.truth, "the twin regenerated from twin.json does not reproduce this "
                                     "file: its references would not belong to this data (rerun make_synthetic)")


def reference_samples(twin_json: PathLike, boxes: Mapping[str, dict], margin: float, period: Sequence[str], *,
                      regions: Sequence[str], seasons: Sequence[str], days_files: Sequence[PathLike],
                      fine_files: Sequence[PathLike], truth_files: Sequence[PathLike], truth_index: Sequence[int],
                      variable: str, attrs: dict, outputs: Mapping[str, Sequence[PathLike]],
                      metadata: cf.Metadata | None = None) -> None:
    """Rule sample_references: the one-member samples of the oracle and the ceiling, every
    region, season and period.

    The twin (``twin_json``'s parameters; ``boxes``, ``margin``, ``period`` as make_twin
    was given them) is regenerated once for all. ``regions``, ``seasons``, ``days_files``,
    ``fine_files`` and ``truth_index`` run in parallel, one entry per region and season;
    ``truth_files`` holds each region's truth.nc (empty where the split declares none,
    so there are no beyond days to check); ``outputs`` maps each reference (oracle,
    ceiling) to its files, region, season, then period (test, beyond). Each request's days
    are checked against the file the models are scored on (fine.nc for test days, truth.nc
    for beyond days) before anything is written. ``metadata``: the config's CF/ACDD attributes.
    """
    missing = set(REFERENCES) - set(outputs)
    if missing:
        raise ValueError(f"reference_samples: no outputs for {', '.join(sorted(missing))}")
    params = twin_parameters(io.read_json(twin_json)["parameters"])
    beyond_truth = [truth_files[t] if len(truth_files) else None for t in truth_index]
    keys = [f"{r}/{s}" for r, s in zip(regions, seasons, strict=True)]
    requests = _requests(keys, days_files, fine_files, beyond_truth, variable, outputs)
    log.info("regenerating the %s twin over %s..%s for %d requests", params.kind, *period, len(requests))
    months = twin_reference_months(list(region_boxes(boxes).values()), margin, tuple(period), params,
                                   {key: (r.lat, r.lon, r.days) for key, r in requests.items()})

    # Every file grows a month at a time under its temporary name (memory holds a month, not
    # the 25 years) and all are renamed only when every request is complete and checked.
    with ExitStack() as stack:
        files = {(key, name): GrowingMemberFile(
            stack.enter_context(io.atomic_path(r.out[name])), r.lat, r.lon, variable, attrs,
            {"model": name, "method": registry.entry(name).description}, metadata,
            f"the {params.kind} twin's {name} (diffscale.evaluation.references)")
            for key, r in requests.items() for name in REFERENCES}
        for key, days, fields in months:
            _check_reproduces(requests[key], days, fields["fine"], variable)
            for name in REFERENCES:
                files[key, name].add(days, fields[name][None])
        for key, r in requests.items():
            for name in REFERENCES:
                written = files[key, name].close()
                if written != len(r.days):
                    raise ValueError(f"reference request {key}: {written} of its {len(r.days)} days were generated")
            log.info("%s: %d days", key, len(r.days))
