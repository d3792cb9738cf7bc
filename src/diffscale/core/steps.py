"""The record's time step: a day, a month or a year, and the arithmetic on its stamps.

Every record of the workflow has one regular step (config ``data.step``), and every
value is stamped 00:00 at the *start* of its step: a day at its midnight, a month on its
first day, a year on 1 January. A step is counted, never measured in days: the k-th step
before 1 March is 1 February for monthly data, whatever the month's length. Day counts of
the config (``split.buffer_days``, ``sampling.spinup_days``) stay days and are turned into
the steps they cover here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

# The pandas frequency of each step: start-anchored, as the stamps are.
FREQUENCIES = {"day": "D", "month": "MS", "year": "YS"}
STEPS = tuple(FREQUENCIES)
# What a step's length says about it, for errors and for telling steps apart (days).
LENGTHS = {"day": (1, 1), "month": (28, 31), "year": (365, 366)}


def check(step: str) -> str:
    if step not in FREQUENCIES:
        raise ValueError(f"unknown time step {step!r}: expected one of {', '.join(STEPS)}")
    return step


def offset(step: str) -> pd.DateOffset:
    """One step, as a pandas offset (a month or a year is calendar arithmetic, not a length)."""
    return pd.tseries.frequencies.to_offset(FREQUENCIES[check(step)])


def start_of(times: pd.DatetimeIndex | Sequence, step: str) -> pd.DatetimeIndex:
    """The start of the step each time falls in (2001-03-16 12:00 -> 2001-03-01 for months)."""
    times = pd.DatetimeIndex(times)
    check(step)
    if step == "day":
        return times.normalize()
    return times.to_period("M" if step == "month" else "Y").to_timestamp()


def in_period(start: str | pd.Timestamp, end: str | pd.Timestamp, step: str) -> pd.DatetimeIndex:
    """The steps whose stamp lies in [start, end] (inclusive)."""
    return pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq=FREQUENCIES[check(step)])


def shift(times: pd.DatetimeIndex | pd.Timestamp, k: int, step: str) -> pd.DatetimeIndex | pd.Timestamp:
    """The time(s) ``k`` steps later (k < 0: earlier)."""
    if step == "day":  # the daily record's arithmetic as it always was
        return times + pd.Timedelta(days=k)
    return times + k * offset(step)


def window(time: pd.Timestamp, k: int, step: str) -> pd.DatetimeIndex:
    """The ``k`` steps strictly before ``time``, oldest first."""
    if k <= 0:
        return pd.DatetimeIndex([])
    return pd.date_range(shift(time, -k, step), shift(time, -1, step), freq=FREQUENCIES[check(step)])


def runs(times: pd.DatetimeIndex, step: str) -> list[pd.DatetimeIndex]:
    """Sorted times split into runs of consecutive steps."""
    if len(times) == 0:
        return []
    times = pd.DatetimeIndex(sorted(times))
    follows = shift(times[:-1], 1, step) == times[1:]
    breaks = np.flatnonzero(~np.asarray(follows)) + 1
    return [pd.DatetimeIndex(b) for b in np.split(times, breaks)]


def bounds(times: pd.DatetimeIndex | np.ndarray, step: str) -> np.ndarray:
    """(T, 2) datetime64[ns]: each step's [start, next start), the CF ``time_bnds``."""
    times = pd.DatetimeIndex(times)
    return np.stack([times.values.astype("datetime64[ns]"),
                     pd.DatetimeIndex(shift(times, 1, step)).values.astype("datetime64[ns]")], axis=1)


def months_holding(start: str | pd.Timestamp, end: str | pd.Timestamp, step: str) -> list[tuple[int, int]]:
    """(year, month) of every month a step of [start, end] is stamped in: the monthly files a record has."""
    stamps = in_period(start, end, step)
    if step == "day":  # every month the range touches, as the daily record's files always were
        periods = pd.period_range(pd.Timestamp(start), pd.Timestamp(end), freq="M")
        return [(p.year, p.month) for p in periods]
    return sorted(set(zip(stamps.year.tolist(), stamps.month.tolist())))


def within_days(core: pd.DatetimeIndex, candidates: pd.DatetimeIndex, days: int) -> pd.DatetimeIndex:
    """The candidates that lie at most ``days`` days before (or on) some time of ``core``."""
    core = pd.DatetimeIndex(sorted(core)).values
    cand = pd.DatetimeIndex(candidates)
    # the first core time at or after each candidate: the candidate is within reach of it or of none
    i = np.searchsorted(core, cand.values, side="left")
    ok = i < core.size
    nxt = core[np.minimum(i, core.size - 1)]
    ok &= (nxt - cand.values) <= np.timedelta64(days, "D")
    return cand[ok]


def classify(times: pd.DatetimeIndex) -> tuple[str | None, pd.DatetimeIndex]:
    """The regular step of sorted, unique times, and the times that break it.

    Returns (step, []) for a regular record; (None, offenders) otherwise, the offenders
    being the times whose distance to the one before matches no step, or that are not
    at the start of the step the rest of the record has. One time alone: (None, []).
    """
    times = pd.DatetimeIndex(times)
    if times.size < 2:
        return None, times[:0]
    gaps = np.diff(times.values).astype("timedelta64[s]").astype(np.int64) / 86400.0
    median = float(np.median(gaps))
    step = min(STEPS, key=lambda s: abs(median - float(np.mean(LENGTHS[s]))) / float(np.mean(LENGTHS[s])))
    expected = shift(times[:-1], 1, step)
    broken = times[1:][expected != times[1:]]
    off_start = times[start_of(times, step) != times]
    offenders = broken.union(off_start)
    return (step if offenders.empty else None), offenders


def describe(times: pd.DatetimeIndex, limit: int = 5) -> str:
    """A few of ``times`` for an error message, with how many there are."""
    times = pd.DatetimeIndex(times)
    shown = ", ".join(t.strftime("%Y-%m-%d %H:%M") if (t.hour or t.minute) else t.strftime("%Y-%m-%d")
                      for t in times[:limit])
    return shown + (f" (and {times.size - limit} more)" if times.size > limit else "")
