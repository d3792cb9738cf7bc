"""The day lists of one region and season (``days.json``): the split's contract with every later stage.

``core`` (the season's days in the fine record), ``pool`` (core minus buffer days),
``train``, ``val``, ``test`` and ``beyond`` (season days outside the fine record).
Every reader goes through :meth:`DaySplit.from_json`, which checks the keys and dates.

The lists hold steps of the record (``data.step``: days, months or years); "days" is the
daily record's word for them. The beyond days are sampled in *blocks* (config
``sampling.block``), one job each: calendar years (``year``, blocks named ``2001``) or
windows of N steps counted from the coarse period's first step (blocks named by their
first step, ``2001-01-11``). Block names come
from the config alone (:func:`beyond_blocks`), so the workflow knows its jobs before the
split has run; a block whose season days all lie in the fine record holds no beyond day.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from diffscale.core import io, steps

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


def _windows(coarse_period: Sequence[str], block: str | int,
             step: str = "day") -> list[tuple[str, pd.Timestamp, pd.Timestamp]]:
    """(name, first step, last step) of every block window over the coarse period, in order."""
    start, end = pd.Timestamp(coarse_period[0]), pd.Timestamp(coarse_period[1])
    if block == "year":
        return [(f"{y:04d}", pd.Timestamp(y, 1, 1), pd.Timestamp(y, 12, 31)) for y in range(start.year, end.year + 1)]
    if isinstance(block, bool) or not isinstance(block, int) or block < 1:
        raise ValueError(f"sampling.block must be 'year' or a number of steps >= 1, got {block!r}")
    firsts = steps.in_period(start, end, step)[::block]
    return [(f.strftime("%Y-%m-%d"), f, steps.shift(f, block - 1, step)) for f in firsts]


def beyond_blocks(coarse_period: Sequence[str], months: Sequence[int], block: str | int,
                  step: str = "day") -> list[str]:
    """Names of the blocks of a season's beyond run, in order: the windows that hold a step of ``months``."""
    days = steps.in_period(coarse_period[0], coarse_period[1], step)
    season = days[days.month.isin(list(months))]
    windows = _windows(coarse_period, block, step)
    return [name for name, first, last in windows if ((season >= first) & (season <= last)).any()]


def block_days(days: pd.DatetimeIndex, name: str, coarse_period: Sequence[str], block: str | int,
               step: str = "day") -> pd.DatetimeIndex:
    """The steps of ``days`` inside block ``name``'s window."""
    windows = {n: (first, last) for n, first, last in _windows(coarse_period, block, step)}
    if name not in windows:
        raise ValueError(f"no block '{name}' over {coarse_period[0]}..{coarse_period[1]} with sampling.block {block!r}")
    first, last = windows[name]
    return days[(days >= first) & (days <= last)]
