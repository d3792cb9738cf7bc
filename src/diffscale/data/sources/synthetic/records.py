"""Writing a twin's records and scoring them; regenerating its references from twin.json.

Three reference numbers are measured on the data made: the R2 of bicubic interpolation of
the coarse field, of the kind's coarse-information ceiling (the best prediction from the
coarse record and the static fields, by the kind's own equations) and of the oracle (every
term but the noise). The first is where a downscaler starts, the second what it can reach,
the third what it could reach if it knew the unknowable.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from diffscale.core import cf, grids, io
from diffscale.core.grids import Box, Grid
from diffscale.data.sources.synthetic.ar1 import Ar1Twin, TwinParameters
from diffscale.data.sources.synthetic.base import CommonParameters, TwinGenerator, TwinMonth
from diffscale.data.sources.synthetic.ceiling import CoarseCeiling
from diffscale.data.sources.synthetic.transport import TransportParameters, TransportTwin

KINDS: dict[str, tuple[type[CommonParameters], type[TwinGenerator]]] = {
    "ar1": (TwinParameters, Ar1Twin),
    "transport": (TransportParameters, TransportTwin),
}
REFERENCES = ("oracle", "ceiling")


def twin_parameters(values: dict) -> CommonParameters:
    """The parameters of the twin ``values`` describes: the config's data.synthetic (``kind``,
    the shared keys, and a kind's own keys under its name, e.g. ``transport``) or a
    twin.json's "parameters" (``kind`` and every key, flat). No ``kind`` means ``ar1``."""
    values = dict(values)
    kind = values.pop("kind", "ar1")
    if kind not in KINDS:
        raise ValueError(f"data.synthetic.kind: '{kind}' is not one of {', '.join(KINDS)}")
    own = values.pop(kind, {})
    for other in KINDS:
        values.pop(other, None)
    return KINDS[kind][0].from_dict(values | own)


def parameters_record(params: CommonParameters) -> dict:
    """What twin.json records of ``params``, read back by :func:`twin_parameters`."""
    return {"kind": params.kind} | asdict(params)


def twin_generator(boxes: list[Box], margin: float, params: CommonParameters) -> TwinGenerator:
    """A fresh generator of the kind of ``params``, at its first day."""
    return KINDS[params.kind][1](boxes, margin, params)


def twin_months(boxes: list[Box], margin: float, period: tuple[str, str],
                params: CommonParameters) -> tuple[TwinGenerator, Iterator[TwinMonth]]:
    """The generator of ``params``'s kind and its months over ``period``, the ceiling filled in."""
    ceiling = CoarseCeiling.fit(boxes, margin, period, params, KINDS[params.kind][1])
    gen = twin_generator(boxes, margin, params)
    return gen, ceiling.months(gen, *period)


@dataclass
class TwinScores:
    bicubic_r2: float
    ceiling_r2: float
    oracle_r2: float
    anomaly_lag1_correlation: float  # of oracle - prior at fixed pixels: the part the large-scale state leaves out
    coarse_minus_fine_mean: float
    coarse_minus_fine_std: float
    days: int
    pixels: int


def bicubic(coarse: np.ndarray, coarse_grid: Grid, fine_grid: Grid) -> np.ndarray:
    """Bicubic spline interpolation of (T, cy, cx) coarse fields onto fine centres (T, ny, nx)."""
    return grids.bicubic(coarse, coarse_grid.lat, coarse_grid.lon, fine_grid.lat, fine_grid.lon)


class _R2:
    """Streaming 1 - SSE/SST over all pixels and days."""

    def __init__(self) -> None:
        self.n = 0
        self.s = 0.0
        self.ss = 0.0
        self.sse: dict[str, float] = {}

    def add(self, truth: np.ndarray, **predictions: np.ndarray) -> None:
        self.n += truth.size
        self.s += truth.sum()
        self.ss += np.square(truth).sum()
        for name, pred in predictions.items():
            self.sse[name] = self.sse.get(name, 0.0) + np.square(truth - pred).sum()

    def r2(self, name: str) -> float:
        sst = self.ss - self.s**2 / self.n
        return float(1.0 - self.sse[name] / sst)


def make_twin(boxes: list[Box], margin: float, period: tuple[str, str], out_dir: str | Path,
              variable: str = "DUEXTTAU", long_name: str = "Dust Extinction AOT [550 nm]", units: str = "1",
              params: CommonParameters = TwinParameters(), metadata: cf.Metadata | None = None) -> TwinScores:
    """Write the twin of ``params``'s kind under ``out_dir`` (coarse/, fine/, elevation.nc, twin.json) and score it.

    ``metadata``: the config's CF/ACDD attributes for every file (:class:`cf.Metadata`).
    """
    out_dir = Path(out_dir)
    gen, months = twin_months(boxes, margin, period, params)
    cg, fg = gen.coarse_grid, gen.fine_grid
    attrs = {"units": units, "long_name": long_name}
    provenance = {"source": f"diffscale synthetic twin ({params.kind})",
                  "twin_parameters": json.dumps(parameters_record(params))}
    # Score only where bicubic interpolates rather than extrapolates.
    inside = ((fg.lat >= cg.lat[0]) & (fg.lat <= cg.lat[-1]))[:, None] & ((fg.lon >= cg.lon[0]) & (fg.lon <= cg.lon[-1]))[None, :]
    r2 = _R2()
    diff_s = diff_ss = 0.0
    diff_n = 0
    anomaly_prev = None
    lag_num = lag_den_a = lag_den_b = 0.0
    written: list[Path] = []
    try:
        for days, fine, coarse, oracle, prior, ceiling in months:
            for field, values, grid, name in (("fine", fine, fg, "G5NR 0.0625 deg"),
                                              ("coarse", coarse, cg, "MERRA-2 0.5 x 0.625 deg")):
                ds = io.field_dataset(10.0 ** values.astype(np.float32), days, grid.lat, grid.lon, variable, attrs,
                                      provenance | {"grid": name})
                written.append(io.write_netcdf(ds, io.month_file(out_dir / field, days[0].year, days[0].month),
                                               metadata=metadata, history=f"synthetic twin, {field} record"))
            # Scores use the float32 values as written, log10 of what a reader gets back.
            fine_w = np.log10((10.0 ** fine).astype(np.float32)).astype(np.float64)
            coarse_w = np.log10((10.0 ** coarse).astype(np.float32)).astype(np.float64)
            r2.add(fine_w[:, inside], bicubic=bicubic(coarse_w, cg, fg)[:, inside], oracle=oracle[:, inside],
                   ceiling=ceiling[:, inside])
            d = coarse_w - gen.area_mean(fine_w)
            anomaly = oracle - prior
            diff_s += d.sum(); diff_ss += np.square(d).sum(); diff_n += d.size
            series = anomaly if anomaly_prev is None else np.concatenate([anomaly_prev, anomaly])
            a, b = series[1:], series[:-1]
            lag_num += (a * b).sum(); lag_den_a += (a * a).sum(); lag_den_b += (b * b).sum()
            anomaly_prev = anomaly[-1:]
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    diff_mean = diff_s / diff_n
    scores = TwinScores(
        bicubic_r2=r2.r2("bicubic"),
        ceiling_r2=r2.r2("ceiling"),
        oracle_r2=r2.r2("oracle"),
        anomaly_lag1_correlation=float(lag_num / np.sqrt(lag_den_a * lag_den_b)),
        coarse_minus_fine_mean=float(diff_mean),
        coarse_minus_fine_std=float(np.sqrt(diff_ss / diff_n - diff_mean**2)),
        days=len(io.days_in(*period)),
        pixels=int(inside.sum()),
    )
    elev = io.field_dataset(gen.elevation.astype(np.float32), None, fg.lat, fg.lon, "elevation",
                            {"units": "m", "long_name": "surface elevation above sea level", "standard_name": "surface_altitude"},
                            provenance | {f"reference_{k}": v for k, v in asdict(scores).items()})
    io.write_netcdf(elev, out_dir / "elevation.nc", metadata=metadata, history="synthetic twin, elevation")
    with io.atomic_path(out_dir / "twin.json") as tmp:
        tmp.write_text(json.dumps({"scores": asdict(scores), "parameters": parameters_record(params)}, indent=2) + "\n")
    return scores


def twin_references(boxes: list[Box], margin: float, period: tuple[str, str], params: CommonParameters,
                    requests: dict[str, tuple[np.ndarray, np.ndarray, list[str]]]) -> dict[str, dict[str, np.ndarray]]:
    """Regenerate the twin and cut its references (oracle, ceiling) for the requested days.

    requests: {key: (lat, lon, days)} with lat/lon G5NR centres inside the twin's grid and
    ISO days inside ``period``. Returns {key: {"oracle": ..., "ceiling": ..., "fine": ...}},
    each (T, ny, nx) physical float32, the fine field exactly as make_twin wrote it, so a
    caller can check that the regeneration reproduces the files it scores against. All of
    :func:`twin_reference_months` held at once.
    """
    parts: dict[str, dict[str, list[np.ndarray]]] = {key: {f: [] for f in ("fine", *REFERENCES)} for key in requests}
    for key, _, fields in twin_reference_months(boxes, margin, period, params, requests):
        for f, values in fields.items():
            parts[key][f].append(values)
    result = {}
    for key, by_field in parts.items():
        ny, nx = len(requests[key][0]), len(requests[key][1])
        result[key] = {f: np.concatenate(p) if p else np.empty((0, ny, nx), np.float32) for f, p in by_field.items()}
    return result


def twin_reference_months(boxes: list[Box], margin: float, period: tuple[str, str], params: CommonParameters,
                          requests: dict[str, tuple[np.ndarray, np.ndarray, list[str]]],
                          ) -> Iterator[tuple[str, pd.DatetimeIndex, dict[str, np.ndarray]]]:
    """:func:`twin_references` a month at a time: (key, days, {field: (T, ny, nx)}) for each
    request with days in the month, so a caller writing them holds a month, not 25 years.
    One pass over the period serves every request (the generator is sequential: day t needs
    every day before it). Raises ValueError, after the pass, if a request's days fall outside it.
    """
    gen, months = twin_months(boxes, margin, period, params)
    fg = gen.fine_grid
    fields = ("fine", *REFERENCES)
    index = {}
    for key, (lat, lon, days) in requests.items():
        iy = np.searchsorted(fg.lat, np.asarray(lat) - 1e-9)
        ix = np.searchsorted(fg.lon, np.asarray(lon) - 1e-9)
        if (iy >= fg.lat.size).any() or (ix >= fg.lon.size).any() or not (
                np.allclose(fg.lat[iy], lat) and np.allclose(fg.lon[ix], lon)):
            raise ValueError(f"reference request {key}: the grid is not part of the twin's fine grid")
        index[key] = (iy, ix, pd.DatetimeIndex(pd.to_datetime(list(days))))
    # Days outside the period are refused before the pass: nothing of a bad request is yielded.
    inside = io.days_in(*period)
    for key, (_, _, days) in index.items():
        if not days.isin(inside).all():
            raise ValueError(f"reference request {key}: {len(days)} days asked, "
                             f"{int(days.isin(inside).sum())} inside the twin's period {period[0]}..{period[1]}")
    for month in months:
        for key, (iy, ix, days) in index.items():
            take = np.flatnonzero(month.days.isin(days))
            if take.size:
                cut = np.ix_(take, iy, ix)
                yield key, month.days[take], {f: 10.0 ** getattr(month, f)[cut].astype(np.float32) for f in fields}
