"""Split-contract files built from raw twin files, for testing the evaluation on its own.

The split stage (rule split) makes these in the full workflow; here the same files are
cut directly from the raw records so the evaluation's rules and library can be tested
without it. Only what the contract fixes is written: fine.nc, truth.nc, days.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from diffscale.core import io
from diffscale.core.grids import Box, g5nr_grid


def write_split(raw: Path, split: Path, config: dict, variable: str = "DUEXTTAU", seed: int = 0) -> None:
    data = config["data"]
    coarse_period, fine_period = data["coarse_period"], data["fine_period"]
    fine_files = io.month_files(raw / "fine", *coarse_period)
    record = io.read_record(fine_files, variable)
    times = pd.DatetimeIndex(record.time.values)
    inside = (times >= pd.Timestamp(fine_period[0])) & (times <= pd.Timestamp(fine_period[1]))
    for region, box in config["regions"].items():
        grid = g5nr_grid(Box.from_config(box))
        cut = record.sel(lat=grid.lat, lon=grid.lon, method="nearest")
        cut = cut.assign_coords(lat=grid.lat, lon=grid.lon)
        for name, sel in (("fine", inside), ("truth", ~inside)):
            part = cut.isel(time=np.flatnonzero(sel))
            io.write_netcdf(io.field_dataset(part.values, pd.DatetimeIndex(part.time.values), grid.lat, grid.lon,
                                             variable, dict(record.attrs)), split / region / f"{name}.nc")
        rng = np.random.default_rng(seed)
        for season, months in config["seasons"].items():
            in_season = times.month.isin(months)
            core = times[in_season & inside]
            test = sorted(rng.choice(core, size=max(1, round(0.1 * len(core))), replace=False))
            rest = [d for d in core if d not in test]
            days = {"core": core, "pool": core, "train": rest[1:], "val": rest[:1], "test": pd.DatetimeIndex(test),
                    "beyond": times[in_season & ~inside]}
            out = split / region / season / "days.json"
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps({k: [str(pd.Timestamp(d).date()) for d in v] for k, v in days.items()}))
