"""The training-day contract: every fitted model keeps the days it was fitted on, and none is held out.

Each model (the transfer encoder and every trained model of the registry) is fitted once,
at test size, through the same file-level functions the workflow's rules call; the days
are then read back from the saved files with :func:`diffscale.method.fit.fitted_days`
and compared with the split's ``days.json``. Changing the day list a model is fitted on
(``"train"`` to ``"pool"`` in :class:`diffscale.method.tasks.CropTask`) makes this fail.
"""

from datetime import date

import pandas as pd
import pytest
import torch

from diffscale.core import registry
from diffscale.core.config import baseline_settings
from diffscale.core.days import DaySplit
from diffscale.method.fit import fit_files, fitted_days, pretrain_files
from diffscale.core.grids import Box
from method_fixtures import DIFF, ENC, HALO, MONTHS, make_split

torch.set_num_threads(1)
TRAINED = [name for name, entry in registry.MODELS.items() if entry.trained]
BASELINES = {k: None for k in ("channels", "blocks", "attention", "steps", "batch_size", "lr", "weight_decay", "ema_decay",
                               "grad_clip", "checkpoint_every", "seed")} | {"latent_channels": 2, "patience": None}
# Short runs that still validate (early stopping / best weights) twice.
FIT = DIFF | {"steps": 10, "checkpoint_every": 5}
# A two-year coarse record: the encoder validates on its second year, so it records validation days too.
PRETRAIN = ENC | {"val_years": 1}


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """The split, the saved encoder and every trained model of the registry, each fitted once."""
    out = tmp_path_factory.mktemp("fitted")
    # Seed 1: one validation day has a test day among its 3 history days, which validation must leave out.
    split, _ = make_split(out, Box((33.0, 34.0), (64.0, 65.25)), coarse_period=("2000-01-01", "2001-12-31"),
                          fine_period=("2000-04-01", "2000-09-30"), months=MONTHS, buffer_days=10, history=3, seed=1)
    encoder = out / "encoder.pt"
    pretrain_files(split, "S", "DUEXTTAU", MONTHS, PRETRAIN, out / "enc.ckpt", encoder, out / "enc.csv",
                   out / "enc_probe.csv")
    paths = {"encoder": encoder}
    # the regressors first: each diffusion model's regression part is one of them
    for name in sorted(TRAINED, key=lambda n: registry.entry(n).family == "diffusion"):
        diffusion = registry.entry(name).family == "diffusion"
        cfg = FIT if diffusion else baseline_settings(BASELINES, FIT)
        part = registry.regression(name, "regression") if diffusion else None
        paths[name] = out / f"{name}.pt"
        fit_files(name, split, "S", "DUEXTTAU", encoder if registry.entry(name).uses_encoder else None, ENC, cfg,
                  HALO, out / f"{name}.ckpt", paths[name], out / f"{name}.csv",
                  regressor_path=paths[part] if part else None)
    return DaySplit.from_json(split / "S" / "days.json"), paths


def dates(index: pd.DatetimeIndex) -> set[date]:
    return {d.date() for d in index}


def buffer(days: DaySplit, history: int) -> set[date]:
    """Days whose ``history`` input days hold a test day."""
    lags = pd.to_timedelta(range(1, history + 1), unit="D")
    return {(t + lag).date() for t in days.test for lag in lags}


def held_out(days: DaySplit, history: int) -> set[date]:
    """Validation, test and beyond days, and the buffer."""
    return dates(days.val) | dates(days.test) | dates(days.beyond) | buffer(days, history)


@pytest.mark.parametrize("name", TRAINED)
def test_each_model_is_fitted_on_training_days_only_and_validated_on_validation_days(fitted, name):
    days, paths = fitted
    got = fitted_days(paths[name])
    assert got["train"] and got["val"], f"{name} records no training or validation days"
    leaked = set(got["train"]) & held_out(days, ENC["history"])
    assert not leaked, f"{name} was trained on held-out days {sorted(leaked)[:5]}"
    assert set(got["train"]) <= dates(days.train)
    # Early stopping / best-weight selection sees validation days only, and no test day among their inputs.
    assert set(got["val"]) <= dates(days.val)
    leaked = set(got["val"]) & (dates(days.test) | dates(days.beyond) | buffer(days, ENC["history"]))
    assert not leaked, f"{name} was validated on days with test truth among their inputs {sorted(leaked)[:5]}"


def test_the_encoder_never_meets_a_validation_or_test_day_of_the_fine_record(fitted):
    days, paths = fitted
    got = fitted_days(paths["encoder"])
    assert got["train"] and got["val"]
    # The encoder sees coarse fields only; the coarse record beyond the fine one is what it is pretrained on
    # (the method's premise), so beyond days are allowed, but no in-record validation or test day may be a
    # target or an input day of a pretraining example.
    window = pd.to_timedelta(range(ENC["history"] + 1), unit="D")
    touched = {(pd.Timestamp(d) - lag).date() for d in got["train"] + got["val"] for lag in window}
    leaked = touched & (dates(days.val) | dates(days.test))
    assert not leaked, f"the encoder was pretrained on held-out days {sorted(leaked)[:5]}"
    assert {d.month for d in got["train"] + got["val"]} <= set(MONTHS)
    assert dates(days.beyond) & set(got["train"]), "the encoder should pretrain on the coarse record beyond the fine one"


def test_a_file_without_days_is_named(fitted, tmp_path):
    _, paths = fitted
    state = torch.load(paths["unet"], weights_only=False)
    del state["days"]
    torch.save(state, tmp_path / "old.pt")
    with pytest.raises(ValueError, match="old.pt records no training days"):
        fitted_days(tmp_path / "old.pt")
