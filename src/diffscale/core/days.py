"""The day lists of one region and season (``days.json``): the split's contract with every later stage.

``core`` (the season's days in the fine record), ``pool`` (core minus buffer days),
``train``, ``val``, ``test`` and ``beyond`` (season days outside the fine record).
Every reader goes through :meth:`DaySplit.from_json`, which checks the keys and dates.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from diffscale.core import io

DAY_LISTS = ("core", "pool", "train", "val", "test", "beyond")


@dataclass(frozen=True)
class DaySplit:
    """The day lists of one region and season (sorted, unique)."""

    core: pd.DatetimeIndex
    pool: pd.DatetimeIndex
    train: pd.DatetimeIndex
    val: pd.DatetimeIndex
    test: pd.DatetimeIndex
    beyond: pd.DatetimeIndex

    def to_json(self, path: str | os.PathLike) -> Path:
        return io.write_json(path, {name: [d.strftime("%Y-%m-%d") for d in getattr(self, name)] for name in DAY_LISTS})

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> DaySplit:
        data = io.read_json(path)
        missing = set(DAY_LISTS) - set(data)
        if missing:
            raise io.DataValidationError(path, f"day lists lack key(s) {sorted(missing)}")
        try:
            return cls(**{name: pd.DatetimeIndex(pd.to_datetime(data[name], format="%Y-%m-%d")) for name in DAY_LISTS})
        except (TypeError, ValueError) as exc:
            raise io.DataValidationError(path, f"invalid date in day lists: {exc}") from exc
