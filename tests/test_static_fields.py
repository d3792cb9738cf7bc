"""Static fields are optional: without elevation the models condition on latitude and longitude only,
record the fields they were trained on, and refuse split files with another set."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from diffscale.core import io
from diffscale.core.config import baseline_settings
from diffscale.core.grids import Box
from diffscale.data.split import STATIC_ATTR
from diffscale.method.conditioning import load_season, raw_channels, raw_condition, static_channels
from diffscale.method.fit import train_model
from diffscale.method.residual import load_model
from diffscale.method.sampling import teacher_forced
from method_fixtures import BASE, DIFF, ENC, HALO, make_split

torch.set_num_threads(1)
LAT, LON = np.linspace(33.0, 34.0, 17), np.linspace(64.0, 65.25, 21)


def test_static_channels_with_and_without_elevation():
    elevation = np.add.outer(np.arange(17.0), 10 * np.arange(21.0)) + 500.0
    day = pd.Timestamp("2000-03-01")
    with_elev = static_channels(LAT, LON, {"elevation": elevation})
    without = static_channels(LAT, LON, {})
    assert with_elev.shape == (3, 17, 21) and without.shape == (2, 17, 21)
    # elevation standardised over the region, then lat and lon on [-1, 1]: the same lat/lon channels either way
    assert with_elev[0].mean() == pytest.approx(0, abs=1e-6) and with_elev[0].std() == pytest.approx(1, abs=1e-5)
    np.testing.assert_array_equal(with_elev[1:], without)
    np.testing.assert_allclose(without[0][[0, -1], 0], [-1, 1])  # latitude, south to north
    np.testing.assert_allclose(without[1][0, [0, -1]], [-1, 1])  # longitude, west to east
    coarse = np.ones((17, 21), np.float32)
    assert raw_condition(coarse, with_elev, day).shape == (raw_channels(("elevation",)), 17, 21) == (6, 17, 21)
    assert raw_condition(coarse, without, day).shape == (raw_channels(()), 17, 21) == (5, 17, 21)


def _drop_elevation(split):
    """The split of a region whose data have no elevation: fine.nc names no static field, no elevation.nc."""
    with io.open_dataset(split / "fine.nc") as ds:
        fine = ds.load()
    fine.attrs[STATIC_ATTR] = ""
    io.write_netcdf(fine, split / "fine.nc")
    (split / "elevation.nc").unlink()


@pytest.fixture(scope="module")
def seasons(tmp_path_factory):
    """One small twin split twice: with elevation (as the twin has it) and without."""
    root = tmp_path_factory.mktemp("static")
    box = Box((33.0, 34.0), (64.0, 65.25))
    kw = dict(coarse_period=("2000-01-01", "2000-04-30"), fine_period=("2000-02-01", "2000-04-15"), months=(3, 4),
              buffer_days=5, history=3)
    with_elev, _ = make_split(root / "with", box, **kw)
    without, _ = make_split(root / "without", box, raw=root / "with" / "raw", **kw)
    _drop_elevation(without)
    return {"with": load_season(with_elev, "S", "DUEXTTAU"), "without": load_season(without, "S", "DUEXTTAU"),
            "dir": root}


def test_a_split_without_elevation_loads_without_it(seasons):
    assert list(seasons["with"].static) == ["elevation"] and seasons["without"].static == {}
    np.testing.assert_array_equal(seasons["with"].fine, seasons["without"].fine)


def test_a_split_that_names_a_missing_static_file_is_refused(seasons, tmp_path):
    for name in ("fine.nc", "coarse_on_fine.nc"):
        (tmp_path / name).write_bytes((seasons["dir"] / "with/split" / name).read_bytes())
    (tmp_path / "S").mkdir()
    for name in ("days.json", "scaler.json"):
        (tmp_path / "S" / name).write_bytes((seasons["dir"] / "with/split/S" / name).read_bytes())
    with pytest.raises(io.DataValidationError, match=r"elevation.nc"):
        load_season(tmp_path, "S", "DUEXTTAU")  # fine.nc of the twin's split names elevation


def test_a_model_trained_without_elevation_records_it_and_refuses_other_fields(seasons, tmp_path):
    cfg = baseline_settings(BASE, DIFF) | {"steps": 4, "checkpoint_every": 2}
    models = {}
    for kind in ("with", "without"):
        model, _ = train_model(seasons[kind], "unet", None, ENC, cfg, HALO, tmp_path / f"{kind}.ckpt")
        model.save(tmp_path / f"{kind}.pt")
        models[kind] = load_model(tmp_path / f"{kind}.pt")
    assert models["with"].spec.static == ("elevation",) and models["without"].spec.static == ()
    # one input channel fewer: the network is built for the fields it was given
    assert models["with"].cond_channels - models["without"].cond_channels == 1
    assert torch.load(tmp_path / "without.pt", weights_only=False)["spec"]["static"] == ()

    days = seasons["without"].days["test"][:2]
    out = teacher_forced(models["without"], seasons["without"], days, 1, "dpmpp", 1)
    assert out.shape == (1, 2, 17, 21) and np.isfinite(out).all()
    with pytest.raises(io.DataValidationError, match=r"without\.pt: the model was trained with the static fields "
                                                     r"none .* the split files hold \['elevation'\]"):
        teacher_forced(models["without"], seasons["with"], days, 1, "dpmpp", 1)
    with pytest.raises(io.DataValidationError, match=r"with\.pt: .* static fields \['elevation'\] .* hold none"):
        teacher_forced(models["with"], seasons["without"], days, 1, "dpmpp", 1)
