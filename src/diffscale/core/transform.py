"""The modelled variable and its scaling: log10 with a floor, min-max fitted on training days.

``model_value`` is the one place the physical value becomes the modelled one
(log10(max(x, floor)) when ``transform.log10``, else the value itself); metrics,
the split's scaler, the domain analysis and the bicubic baseline all go through it.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from diffscale.core import io


def model_value(x, log10: bool, floor: float = 1e-6):
    """Physical values -> the modelled variable (log10(max(x, floor)) or x); NaN stays NaN.

    ufuncs keep DataArrays as DataArrays; arrays are not copied when ``log10`` is off.
    """
    if not log10:
        return x
    return np.log10(np.maximum(x, floor))


def to_metric_space(x: np.ndarray, log10: bool, floor: float = 1e-6) -> np.ndarray:
    """Physical values -> the float64 space every score is computed in (a new array; ``x`` is left alone).

    In place on that one copy: a season's members at a region's size are GBs, and every
    temporary of model_value would be another such array to allocate and fault in.
    """
    y = np.array(x, dtype=np.float64)
    if log10:
        np.maximum(y, floor, out=y)
        np.log10(y, out=y)
    return y


def from_metric_space(v: np.ndarray, log10: bool) -> np.ndarray:
    return 10.0 ** np.asarray(v, dtype=np.float64) if log10 else np.asarray(v, dtype=np.float64)


@dataclass(frozen=True)
class Scaler:
    """Optional log10 with a floor, then min-max to [0, 1] with lo/hi fitted on training days."""

    log10: bool
    floor: float
    lo: float
    hi: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lo) and math.isfinite(self.hi) and self.hi > self.lo):
            raise ValueError(f"scaler needs finite lo < hi, got lo={self.lo}, hi={self.hi}")
        if self.floor <= 0:
            raise ValueError(f"scaler floor must be positive, got {self.floor}")

    def forward(self, x):
        """Physical -> scaled ([0, 1] over the training days)."""
        return (model_value(x, self.log10, self.floor) - self.lo) / (self.hi - self.lo)

    def inverse(self, s):
        """Scaled -> physical. Values at the floor come back as the floor, not below it."""
        v = s * (self.hi - self.lo) + self.lo
        return 10.0 ** v if self.log10 else v

    @classmethod
    def fit(cls, values_physical, log10: bool, floor: float) -> Scaler:
        v = np.asarray(model_value(np.asarray(values_physical, dtype=np.float64), log10, floor))
        if not np.isfinite(v).any():
            raise ValueError("cannot fit a scaler: no finite training values")
        lo, hi = float(np.nanmin(v)), float(np.nanmax(v))
        if hi <= lo:
            raise ValueError(f"cannot fit a scaler: every training value is {lo} (constant field)")
        return cls(bool(log10), float(floor), lo, hi)

    def to_json(self, path: str | os.PathLike) -> Path:
        return io.write_json(path, asdict(self))

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> Scaler:
        data = io.read_json(path)
        missing = {"log10", "floor", "lo", "hi"} - set(data)
        if missing:
            raise io.DataValidationError(path, f"scaler file lacks key(s) {sorted(missing)}")
        try:
            return cls(bool(data["log10"]), float(data["floor"]), float(data["lo"]), float(data["hi"]))
        except (TypeError, ValueError) as exc:
            raise io.DataValidationError(path, f"invalid scaler: {exc}") from exc
