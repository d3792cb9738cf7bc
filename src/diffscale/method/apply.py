"""The trained method over new coarse data (config ``apply``; rules apply_sample, apply_assemble).

Nothing is retrained: the season's seed-0 method model (and the frozen encoder inside
it) samples every day of the new record in the season's months, autoregressively as the
beyond run does (:func:`diffscale.method.sampling.continue_chain`): each member on its
own earlier days, every run of consecutive days started ``sampling.spinup_days`` before
its first day, or at the record's first day, from the coarse field plus the season's
mean fine-scale residual over the training days. Days the training fine record holds are
sampled too: the new data are a different coarse record, so the fine record is not their
truth. The samples are the sample-file contract (:mod:`diffscale.core.samples`); the
product joins the seasons with :func:`diffscale.method.product.assemble_files`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from diffscale.core import cf, io
from diffscale.method.conditioning import SeasonData, load_season
from diffscale.method.devices import precision
from diffscale.method.sampling import (
    AUTOREGRESSIVE,
    ChainState,
    continue_chain,
    mean_residual,
    sample_attrs,
    samples_dataset,
    sampling_model,
    sampling_options,
    timed,
)

log = logging.getLogger("diffscale.method.apply")


def new_season_data(split_dir: str | os.PathLike, season: str, months: Sequence[int], variable: str,
                    coarse_path: str | os.PathLike) -> tuple[SeasonData, np.ndarray]:
    """The season's data with the new coarse record (on the region's fine grid) in place of the training one,
    no fine record, and the new record's season days as its beyond days; and the training data's mean residual.
    """
    training = load_season(split_dir, season, variable)
    coarse = io.read_field(coarse_path, variable)
    if not (coarse.lat.size == training.lat.size and coarse.lon.size == training.lon.size
            and np.allclose(coarse.lat, training.lat) and np.allclose(coarse.lon, training.lon)):
        raise io.DataValidationError(coarse_path, f"grid differs from the region's fine grid in {split_dir}")
    values = np.asarray(coarse.values, dtype=np.float64)
    missing = np.isnan(values).reshape(values.shape[0], -1).any(axis=1)
    times = pd.DatetimeIndex(coarse.time.values)
    if missing.any():
        raise io.DataValidationError(coarse_path, f"the new coarse record on the fine grid has missing values inside "
                                                  f"the region on {int(missing.sum())} day(s), first "
                                                  f"{times[missing][0].date()} (raise data.margin_deg, or give data "
                                                  "that cover the regions)")
    h, w = training.shape
    data = dataclasses.replace(
        training, fine_times=pd.DatetimeIndex([]), fine=np.empty((0, h, w), np.float32),
        coarse_times=times, coarse=np.asarray(training.scaler.forward(values), dtype=np.float32),
        days=training.days | {"beyond": times[times.month.isin(list(months))]},
        truth_times=pd.DatetimeIndex([]), truth=None)
    return data, mean_residual(training)


def sample_new_files(split_dir: str | os.PathLike, season: str, months: Sequence[int], variable: str,
                     model_path: str | os.PathLike, name: str, coarse_path: str | os.PathLike, sampling: dict,
                     output: str | os.PathLike, device_name: str = "auto",
                     metadata: cf.Metadata | None = None) -> np.ndarray:
    """Rule apply_sample: the season's days of the new coarse record, sampled autoregressively; returns them, scaled."""
    data, start_guess = new_season_data(split_dir, season, months, variable, coarse_path)
    days = data.days["beyond"]
    model, dev = sampling_model(model_path, device_name, sampling["compile"])
    members = 1 if model.deterministic else sampling["beyond_members"]
    log.info("%d new days of season %s x %d members (%s)", len(days), season, members, coarse_path)
    with precision(dev, sampling["autocast"]):
        (samples, _), seconds = timed(continue_chain, model, data, days, members, spinup=sampling["spinup_days"],
                                      state=ChainState(), start_guess=start_guess, **sampling_options(model, sampling))
    log.info("%d days in %.1f s", len(days), seconds)
    attrs = sample_attrs(model, name, model_path, sampling) | {"mode": AUTOREGRESSIVE,
                                                               "spinup_days": sampling["spinup_days"],
                                                               "coarse_input": str(coarse_path)}
    io.write_netcdf(samples_dataset(samples, days, data, attrs), output, metadata=metadata)
    return samples
