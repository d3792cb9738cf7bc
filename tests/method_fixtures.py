"""Split-contract files for the method's tests, made from a small synthetic twin.

The same files the workflow's split stage writes; coarse-on-fine here is the twin's
bicubic interpolation, which is enough for tests of the method.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from diffscale.core import io
from diffscale.core.grids import Box
from scipy.interpolate import RectBivariateSpline

from diffscale.data.sources.synthetic import make_twin
from diffscale.data import split as split_mod
from diffscale.core.transform import Scaler


def make_split(out: Path, box: Box, coarse_period=("2000-01-01", "2000-12-31"), fine_period=("2000-04-01", "2000-09-30"),
               months=(6, 7, 8), buffer_days=20, history=4, test_fraction=0.1, val_fraction=0.1, seed=0,
               variable="DUEXTTAU", raw: Path | None = None, season="S") -> tuple[Path, Scaler]:
    """Write raw twin files under out/raw (unless ``raw`` is given) and split files under out/split.

    Returns (split_dir, scaler).
    """
    if raw is None:
        raw = out / "raw"
        make_twin([box], 0.5, coarse_period, raw, variable=variable)
    fine = io.read_record(sorted((raw / "fine").glob("*.nc")), variable)
    coarse = io.read_record(sorted((raw / "coarse").glob("*.nc")), variable)
    elev = io.read_field(raw / "elevation.nc", "elevation", dims=("lat", "lon"))
    lat_ok = (fine.lat >= box.lat[0]) & (fine.lat <= box.lat[1])
    lon_ok = (fine.lon >= box.lon[0]) & (fine.lon <= box.lon[1])
    fine_r = fine.isel(lat=np.flatnonzero(lat_ok.values), lon=np.flatnonzero(lon_ok.values))
    coarse = coarse.sel(time=slice(*coarse_period))
    fine = fine.sel(time=slice(*coarse_period))
    fine_r = fine_r.sel(time=slice(*coarse_period))
    logc = np.log10(coarse.values.astype(np.float64))
    cof_r = np.stack([10.0 ** RectBivariateSpline(coarse.lat.values, coarse.lon.values, c, kx=3, ky=3)(fine_r.lat.values, fine_r.lon.values)
                      for c in logc])
    split = out / "split"
    (split / season).mkdir(parents=True, exist_ok=True)
    attrs = {"units": "1", "long_name": "Dust"}
    days = pd.DatetimeIndex(fine.time.values)
    in_fine = (days >= fine_period[0]) & (days <= fine_period[1])
    io.write_netcdf(io.field_dataset(fine_r.values[in_fine], days[in_fine], fine_r.lat, fine_r.lon, variable, attrs), split / "fine.nc")
    io.write_netcdf(io.field_dataset(fine_r.values[~in_fine], days[~in_fine], fine_r.lat, fine_r.lon, variable, attrs), split / "truth.nc")
    io.write_netcdf(io.field_dataset(cof_r.astype(np.float32), days, fine_r.lat, fine_r.lon, variable, attrs), split / "coarse_on_fine.nc")
    io.write_netcdf(io.field_dataset(elev.values[lat_ok.values][:, lon_ok.values], None, fine_r.lat, fine_r.lon, "elevation", {"units": "m"}),
                    split / "elevation.nc")
    split_days = split_mod.make_split(months, fine_period, coarse_period, buffer_days, test_fraction, val_fraction, seed, history)
    split_days.to_json(split / season / "days.json")
    train = pd.DatetimeIndex(split_days.train)
    scaler = Scaler.fit(fine_r.sel(time=pd.DatetimeIndex(train)).values, log10=True, floor=1e-6)
    scaler.to_json(split / season / "scaler.json")
    return split, scaler


# ---- a tiny season with a pretrained transfer encoder, shared by the method and baseline tests
MONTHS = [3, 4, 9, 10]  # core in Apr and Sep; beyond in Mar (before the fine record) and Oct (after it)
ENC = dict(history=3, patch=16, channels=[4, 8], attention=True, epochs=1, batch_size=8, lr=1e-3, patience=2,
           validations=1, val_years=0, seed=0)
DIFF = dict(channels=[8, 8], blocks=1, attention=True, steps=40, batch_size=8, lr=2e-3,
            weight_decay=0.0, ema_decay=0.99, grad_clip=1.0, checkpoint_every=20, seed=0)
HALO = 2
# The baselines' section at test size: every null key takes DIFF's value (the method's budget).
BASE = {k: None for k in ("channels", "blocks", "attention", "steps", "batch_size", "lr", "weight_decay", "ema_decay",
                          "grad_clip", "checkpoint_every", "seed")} | {"latent_channels": 2, "patience": None}


def season_with_encoder(out: Path):
    """Split files of a tiny twin, the season's data and a pretrained encoder saved as out/encoder.pt."""
    from diffscale.method.conditioning import load_season
    from diffscale.method.fit import pretrain_encoder, save_encoder

    split, _ = make_split(out, Box((33.0, 34.0), (64.0, 65.25)), coarse_period=("2000-01-01", "2000-12-31"),
                          fine_period=("2000-04-01", "2000-09-30"), months=MONTHS, buffer_days=10, history=3)
    data = load_season(split, "S", "DUEXTTAU")
    enc, _ = pretrain_encoder(data, MONTHS, ENC, out / "enc.ckpt")
    save_encoder(enc, ENC, out / "encoder.pt")
    return split, data, out / "encoder.pt"


def train_regressor(data, name: str, encoder_path: Path, out: Path) -> Path:
    """Regressor ``name`` trained on the season (the baselines' section at test size), saved as out/<name>.pt."""
    from diffscale.core.config import baseline_settings
    from diffscale.method.fit import load_encoder, train_model

    model, _ = train_model(data, name, load_encoder(encoder_path), ENC, baseline_settings(BASE, DIFF), HALO,
                           out / f"{name}.ckpt")
    model.save(out / f"{name}.pt")
    return out / f"{name}.pt"
