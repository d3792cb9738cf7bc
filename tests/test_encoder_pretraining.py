"""The transfer encoder's pretraining: input statistics, references, early stopping, the untrained control, the probe."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from method_fixtures import make_split

from diffscale.core.transform import Scaler
from diffscale.method.conditioning import SeasonData
from diffscale.method.fit import (
    load_encoder,
    pretrain_encoder,
    pretrain_files,
    untrained_encoder,
)
from diffscale.method.networks.encoder import encoder_unet
from diffscale.method.tasks import NextDayTask
from diffscale.plots.method import training_curves

torch.set_num_threads(1)

ENC = dict(history=3, patch=16, channels=[4, 8], attention=True, epochs=6, batch_size=8, lr=1e-2, patience=6,
           validations=4, val_years=1, seed=0)
MONTHS = [1]


def walk_season(years: int = 3, seed: int = 0) -> SeasonData:
    """An AR(1) record (daily 16 x 16 fields, ``years`` Januaries in a year-round record); no fine record."""
    times = pd.date_range("2001-01-01", f"{2000 + years}-12-31", freq="D")
    rng = np.random.default_rng(seed)
    fields = np.empty((len(times), 16, 16), np.float32)
    fields[0] = 0.5
    for t in range(1, len(times)):  # AR(1) about 0.5: persistence is a fair forecast, not a perfect one
        fields[t] = 0.5 + 0.9 * (fields[t - 1] - 0.5) + 0.03 * rng.standard_normal((16, 16))
    empty = pd.DatetimeIndex([])
    return SeasonData(variable="v", attrs={}, lat=np.arange(16.0), lon=np.arange(16.0), fine_times=empty,
                      fine=np.zeros((0, 16, 16), np.float32), coarse_times=times, coarse=fields.astype(np.float32),
                      static={"elevation": np.zeros((16, 16))}, days={}, scaler=Scaler(False, 1e-6, 0.0, 1.0))


def test_input_statistics_come_from_training_days_only():
    rng = np.random.default_rng(1)
    fields = rng.random((30, 12, 12)).astype(np.float32)
    train, val = np.arange(3, 15), np.arange(20, 30)  # days 0..14 feed training (targets and their histories)
    stats = NextDayTask(fields, train, val, history=3, patch=8, batch_size=4).normalisation()
    assert stats == pytest.approx((fields[:15].mean(), fields[:15].std()), rel=1e-5)
    moved = fields.copy()
    moved[25] += 100.0  # a validation day
    assert NextDayTask(moved, train, val, history=3, patch=8, batch_size=4).normalisation() == stats
    moved[0] += 100.0  # the first training target's oldest history day
    assert NextDayTask(moved, train, val, history=3, patch=8, batch_size=4).normalisation()[0] > stats[0] + 1


def test_the_encoder_standardises_its_input_and_starts_from_persistence(tmp_path):
    from diffscale.method.fit import save_encoder

    model = untrained_encoder(ENC, (0.5, 0.1))
    x = 0.5 + 0.1 * torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        for p in model.out.parameters():  # no learned change: the next day is the last day
            p.zero_()
        np.testing.assert_allclose(model(x).numpy(), x[:, -1:].numpy())
        shifted = untrained_encoder(ENC, (1.5, 0.1))
        # the same days in other units, standardised alike, give the same features
        for a, b in zip(untrained_encoder(ENC, (0.5, 0.1)).encode(x), shifted.encode(x + 1.0)):
            torch.testing.assert_close(a, b)
    save_encoder(model, ENC, tmp_path / "e.pt")
    loaded = load_encoder(tmp_path / "e.pt")
    assert float(loaded.in_mean) == 0.5 and float(loaded.in_std) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="standard deviation"):
        untrained_encoder(ENC, (0.5, 0.0))


def test_references_on_a_known_series():
    v = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 6.0], np.float32)
    pattern = np.arange(144, dtype=np.float32).reshape(12, 12) / 10  # the same every day: climatology must align
    fields = v[:, None, None] + pattern
    task = NextDayTask(fields, np.array([2, 3]), np.array([5]), history=2, patch=8, batch_size=2, val_patches=4)
    refs = task.references()
    assert refs["persistence"] == pytest.approx(2.0)  # |v4 - v5|
    assert refs["climatology"] == pytest.approx(3.5)  # |mean(v2, v3) - v5|
    assert NextDayTask(fields, np.array([2, 3]), np.array([], int), 2, 8, 2).references() == {}


def test_early_stopping_keeps_the_best_validation_step(tmp_path):
    data = walk_season()
    model, result = pretrain_encoder(data, MONTHS, ENC, tmp_path / "e.ckpt")
    steps, losses = zip(*result.val)
    assert len(steps) >= 8 and steps[0] < steps[1] - 1  # several validations, more than one step apart
    best = int(np.argmin(losses))
    assert steps[best] != result.steps, "the run must end past its best step for this test to mean anything"
    from diffscale.method.fit import pretraining_task

    task = pretraining_task(data, MONTHS, ENC)
    assert task.validate(model) == pytest.approx(losses[best], rel=1e-6)
    assert set(result.references) == {"persistence", "climatology"}


def test_pretrain_files_write_the_references_the_probe_and_the_days(tmp_path, monkeypatch):
    from diffscale.core.grids import Box
    from diffscale.method import probe as probe_module
    from diffscale.method.conditioning import load_season

    split, _ = make_split(tmp_path, Box((33.0, 34.0), (64.0, 65.25)), coarse_period=("1999-01-01", "2000-12-31"),
                          fine_period=("2000-03-01", "2000-10-31"), months=[4, 5, 6, 7, 8, 9], buffer_days=5, history=3)
    cfg = dict(ENC, epochs=1, validations=2, lr=1e-3)
    pretrain_files(split, "S", "DUEXTTAU", [4, 5, 6, 7, 8, 9], cfg, tmp_path / "e.ckpt", tmp_path / "encoder.pt",
                   tmp_path / "encoder_loss.csv", tmp_path / "encoder_probe.csv")
    curve = pd.read_csv(tmp_path / "encoder_loss.csv")
    assert list(curve.columns) == ["step", "loss", "val_loss", "persistence", "climatology"]
    assert curve["persistence"].nunique() == 1 and (curve["persistence"] > 0).all()
    saved = torch.load(tmp_path / "encoder.pt", weights_only=False)
    assert saved["days"]["train"][0].startswith("1999") and all(d.startswith("2000") for d in saved["days"]["val"])
    assert not set(saved["days"]["train"]) & set(saved["days"]["val"])
    probe = pd.read_csv(tmp_path / "encoder_probe.csv")
    assert list(probe["predictors"]) == ["history", "pretrained", "history + pretrained", "random", "history + random"]
    assert probe["val_r2"].notna().all() and (probe["val_days"] > 0).all()
    assert list(probe["features"]) == [3, 12 + 8, 3 + 20, 20, 23]  # days; levels 4 + 8 and the middle 8
    # The control is the untrained network: the pretraining's initial weights, not the trained ones.
    pretrained = load_encoder(tmp_path / "encoder.pt")
    control = untrained_encoder(cfg, (float(pretrained.in_mean), float(pretrained.in_std)))
    torch.manual_seed(cfg["seed"])
    initial = encoder_unet(cfg["history"], tuple(cfg["channels"]), cfg["attention"]).state_dict()
    trained = pretrained.state_dict()
    for key, value in control.state_dict().items():
        if key not in ("in_mean", "in_std"):
            assert torch.equal(value, initial[key]), key
    assert any(not torch.equal(value, trained[key]) for key, value in control.state_dict().items())
    torch.testing.assert_close(control.in_std, trained["in_std"])
    # Past MAX_ROWS pixel-days (a paper region), each day gives a seeded sample of pixels:
    # fewer rows, near the same scores.
    data = load_season(split, "S", "DUEXTTAU")
    full = probe_module.probe(data, {"pretrained": pretrained}, 3)
    monkeypatch.setattr(probe_module, "MAX_ROWS", 4000)
    sampled = probe_module.probe(data, {"pretrained": pretrained}, 3)
    assert list(sampled["features"]) == list(full["features"])
    monkeypatch.setattr(probe_module, "MAX_SIDE", 8)  # a paper region: a centred window of the fields
    windowed = probe_module.probe(data, {"pretrained": pretrained}, 3)
    assert list(windowed["features"]) == list(full["features"]) and windowed["val_r2"].notna().all()
    assert np.allclose(sampled["val_r2"], full["val_r2"], atol=0.05) and not np.allclose(sampled["val_r2"], full["val_r2"],
                                                                                           atol=1e-9)
    out = training_curves({"encoder": tmp_path / "encoder_loss.csv"}, "r", "S", tmp_path / "training.png",
                          tmp_path / "encoder_probe.csv")
    assert out.stat().st_size > 0


def test_the_seasons_stretches_give_the_whole_records_pretraining_days():
    """pretrain_files reads the season's stretches of the record alone: the targets (and the
    positions of their histories) must be the days the whole record gives, and no target may
    take its history across a gap between two stretches."""
    from diffscale.method.conditioning import needed_steps
    from diffscale.method.tasks import pretraining_days

    record = pd.date_range("2000-01-01", "2004-12-31")
    held = pd.date_range("2002-01-10", "2002-01-20")
    whole_train, whole_val = pretraining_days(record, [12, 1, 2], 10, 1, held)
    stretches = needed_steps(record[record.month.isin([12, 1, 2])], 10).intersection(record)
    assert len(stretches) < len(record) / 2
    train, val = pretraining_days(stretches, [12, 1, 2], 10, 1, held)
    assert stretches[train].equals(record[whole_train]) and stretches[val].equals(record[whole_val])
    assert all(stretches[t - 10] == stretches[t] - pd.Timedelta(days=10) for t in train)
    # the control: without the history windows in the stretches, the first days of each winter go
    bare = record[record.month.isin([12, 1, 2])]
    cut = pretraining_days(bare, [12, 1, 2], 10, 1, held)[0]
    assert pd.Timestamp("2003-12-05") in set(record[whole_train]) and pd.Timestamp("2003-12-05") not in set(bare[cut])
