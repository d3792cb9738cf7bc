"""The beyond run in blocks: block planning, the state file, and block-wise = single run, to the bit.

The model need not be trained for these: the question is whether the blocks reproduce
the single run exactly, so an untrained one (fixed seed) serves, on the split files of a
small twin whose DJF season crosses two year boundaries.
"""

from __future__ import annotations

import json
import os

import netCDF4
import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from diffscale.core import io
from diffscale.core.chunks import chunk_sizes
from diffscale.core.days import beyond_blocks, block_days
from diffscale.core.grids import Box
from diffscale.core.transform import to_metric_space
from diffscale.method import sampling
from diffscale.method.beyond import gather_files, read_state, sample_block_files, write_state
from diffscale.method.conditioning import load_season
from diffscale.method.diffusion import DiffusionDownscaler
from diffscale.method.regressors import UNetRegressor
from diffscale.method.residual import ResidualSpec
from diffscale.method.sampling import (AUTOREGRESSIVE, ChainState, ScoreSums, autoregressive, continue_chain,
                                       ensemble_scores, model_space, sample_attrs, sample_test_files, samples_dataset)
from method_fixtures import make_split

COARSE = ("1999-11-20", "2001-01-10")
MONTHS = [12, 1, 2]
SAMPLING = dict(sampler="dpmpp", steps=2, members=2, beyond_members=2, halo=2, tile=0, overlap=0.0, spinup_days=3,
                seed=4, autocast=True, compile=True, block="year")
TRANSFORM = dict(log10=True, floor=1e-6)


def test_blocks_are_calendar_years_or_windows_of_days():
    assert beyond_blocks(COARSE, MONTHS, "year") == ["1999", "2000", "2001"]
    assert beyond_blocks(("2000-03-01", "2001-02-10"), [6, 7, 8], "year") == ["2000"]  # no summer in 2001
    assert beyond_blocks(("2000-01-01", "2000-02-29"), [12, 1, 2], 10) == [
        "2000-01-01", "2000-01-11", "2000-01-21", "2000-01-31", "2000-02-10", "2000-02-20"]
    assert beyond_blocks(("2000-01-01", "2000-02-29"), [2], 25) == ["2000-01-26", "2000-02-20"]
    days = pd.date_range("1999-12-01", "2000-02-29")
    assert list(block_days(days, "2000", COARSE, "year")) == list(pd.date_range("2000-01-01", "2000-02-29"))
    assert list(block_days(days, "2000-02-20", ("2000-01-01", "2000-02-29"), 10)) == list(
        pd.date_range("2000-02-20", "2000-02-29"))
    with pytest.raises(ValueError, match="no block"):
        block_days(days, "2000-02-21", ("2000-01-01", "2000-02-29"), 10)
    with pytest.raises(ValueError, match="number of steps"):
        beyond_blocks(COARSE, MONTHS, 0)


def test_state_file_round_trips_exactly(tmp_path):
    rng = np.random.default_rng(0)
    known = {pd.Timestamp("2000-01-03") + pd.Timedelta(days=i): rng.standard_normal((2, 5, 7)).astype(np.float32)
             for i in range(3)}
    write_state(tmp_path / "s.npz", ChainState(pd.Timestamp("2000-01-05"), known), {"block": "2000", "seconds": 1.5})
    state, meta = read_state(tmp_path / "s.npz")
    assert state.last_day == pd.Timestamp("2000-01-05") and meta == {"block": "2000", "seconds": 1.5}
    assert list(state.known) == list(known) and all(np.array_equal(state.known[d], known[d]) for d in known)
    assert all(state.known[d].dtype == np.float32 for d in known)
    write_state(tmp_path / "e.npz", ChainState(), {})
    assert read_state(tmp_path / "e.npz")[0] == ChainState()
    (tmp_path / "bad.npz").write_bytes(b"not a state")
    with pytest.raises(io.DataValidationError, match="bad.npz"):
        read_state(tmp_path / "bad.npz")


@pytest.fixture(scope="module")
def season(tmp_path_factory):
    """Split files of a twin over Nov 1999 - Jan 2001 with DJF beyond days on both sides of the fine record."""
    out = tmp_path_factory.mktemp("beyond")
    split, _ = make_split(out, Box((33.0, 34.0), (64.0, 65.25)), coarse_period=COARSE,
                          fine_period=("2000-02-01", "2000-12-15"), months=MONTHS, buffer_days=5, history=3,
                          season="DJF")
    spec = ResidualSpec(name="diffusion", history=3, patch=16, halo=2, encoder_channels=(4, 8), encoder_attention=True,
                        channels=(8, 8), blocks=1, attention=True, uses_encoder=True, scale=0.1)
    torch.manual_seed(0)
    DiffusionDownscaler(spec).save(out / "diffusion.pt")
    torch.manual_seed(1)
    UNetRegressor(spec.__class__(**{**spec.__dict__, "name": "unet", "uses_encoder": False})).save(out / "unet.pt")
    return {"dir": out, "split": split, "data": load_season(split, "DJF", "DUEXTTAU")}


@pytest.mark.slow
def test_the_chain_carries_over_block_boundaries(season):
    """continue_chain block by block (the state through its file) = autoregressive over every day."""
    from diffscale.method.residual import load_model

    model, data = load_model(season["dir"] / "diffusion.pt"), season["data"]
    days = data.days["beyond"]
    assert [(r[0].date().isoformat(), len(r)) for r in sampling.runs(days)] == [
        ("1999-12-01", 62), ("2000-12-16", 26)]
    whole = autoregressive(model, data, days, 2, "dpmpp", 2, spinup=3, seed=4)
    for block in ("year", 9):
        state, parts = ChainState(), []
        for name in beyond_blocks(COARSE, MONTHS, block):
            samples, state = continue_chain(model, data, block_days(days, name, COARSE, block), 2, "dpmpp", 2, 3, state,
                                            seed=4)
            write_state(season["dir"] / "state.npz", state, {})
            state = read_state(season["dir"] / "state.npz")[0]
            parts.append(samples)
        assert np.array_equal(np.concatenate(parts, axis=1), whole), block
    # the control: a block that forgets the state starts afresh and differs
    second = block_days(days, "2000", COARSE, "year")
    alone = continue_chain(model, data, second, 2, "dpmpp", 2, 3, ChainState(), seed=4)[0]
    assert not np.array_equal(alone, whole[:, days.get_indexer(second)])


def single_run(season, name: str, path) -> None:
    """What rule sample wrote before the blocks: one autoregressive run over every beyond day."""
    from diffscale.method.residual import load_model

    model, data = load_model(season["dir"] / f"{name}.pt"), season["data"]
    members = 1 if model.deterministic else SAMPLING["beyond_members"]
    scaled = autoregressive(model, data, data.days["beyond"], members, spinup=SAMPLING["spinup_days"],
                            **sampling.sampling_options(model, SAMPLING))
    attrs = sample_attrs(model, name, season["dir"] / f"{name}.pt", SAMPLING) | {
        "mode": AUTOREGRESSIVE, "spinup_days": SAMPLING["spinup_days"]}
    io.write_netcdf(samples_dataset(scaled, data.days["beyond"], data, attrs), path)


def run_blocks(season, name: str, out, block, names=None) -> list[str]:
    """sample_block_files over the season's blocks in order (or only ``names``), each from the one before."""
    every = beyond_blocks(COARSE, MONTHS, block)
    for b in names or every:
        i = every.index(b)
        previous = out / f"{every[i - 1]}.state.npz" if i else None
        sample_block_files(season["split"], "DJF", "DUEXTTAU", season["dir"] / f"{name}.pt", name, b, COARSE,
                           SAMPLING | {"block": block}, previous, out / f"{b}.nc", out / f"{b}.state.npz", "cpu")
    return every


def gather(season, name: str, out, every, block) -> xr.Dataset:
    sample_test_files(season["split"], "DJF", "DUEXTTAU", season["dir"] / f"{name}.pt", name, SAMPLING,
                      out / "test.nc", "cpu")
    gather_files(season["split"], "DJF", "DUEXTTAU", season["dir"] / f"{name}.pt", name,
                 [out / f"{b}.nc" for b in every], [out / f"{b}.state.npz" for b in every], out / "test.nc",
                 SAMPLING | {"block": block}, TRANSFORM, out / "beyond.nc", out / "selfcheck.json")
    return xr.open_dataset(out / "beyond.nc")


# When a file was written (CF history, ACDD date_created) differs between any two writes.
WRITTEN_AT = ("history", "date_created")


def assert_same_file(a: xr.Dataset, b: xr.Dataset) -> None:
    assert np.array_equal(a.DUEXTTAU.values, b.DUEXTTAU.values)
    assert a.DUEXTTAU.values.dtype == b.DUEXTTAU.values.dtype == np.float32
    assert np.array_equal(a.time.values, b.time.values) and a.DUEXTTAU.attrs == b.DUEXTTAU.attrs
    assert {k: v for k, v in a.attrs.items() if k not in WRITTEN_AT} == \
        {k: v for k, v in b.attrs.items() if k not in WRITTEN_AT}


@pytest.mark.slow
@pytest.mark.parametrize("name,block", [("diffusion", "year"), ("unet", 20)])
def test_gathered_blocks_equal_the_single_run(season, tmp_path, name, block):
    single_run(season, name, tmp_path / "single.nc")
    every = run_blocks(season, name, tmp_path, block)
    single = xr.open_dataset(tmp_path / "single.nc")
    assert_same_file(gather(season, name, tmp_path, every, block), single)
    # the self-check, summed a block at a time, scores the single run's members over every beyond day
    data = season["data"]
    days = data.days["beyond"]
    truth = model_space(data, True, 1e-6)(np.stack([data.truth_on(d) for d in days]))
    whole = ensemble_scores(to_metric_space(single.DUEXTTAU.values.astype(np.float64), True, 1e-6), truth)
    check = json.loads((tmp_path / "selfcheck.json").read_text())
    assert check["days"] == {"test": len(data.days["test"]), "beyond": len(days), "beyond_scored": len(days)}
    assert check["beyond"] == pytest.approx(whole, rel=1e-9, nan_ok=True)
    # grown a block at a time, chunked as the whole file would be (maps and series alike)
    with netCDF4.Dataset(tmp_path / "beyond.nc") as nc:
        var = nc["DUEXTTAU"]
        assert var.chunking() == list(chunk_sizes(dict(zip(var.dimensions, var.shape))).values())


@pytest.mark.parametrize("members", [1, 3])
def test_score_sums_over_slabs_of_days_equal_the_scores_of_all_days(members):
    rng = np.random.default_rng(0)
    truth = rng.normal(-1.3, 0.3, (40, 9, 7))
    truth[3, 2, 2] = np.nan  # a pixel without truth counts nowhere, as in ensemble_scores
    samples = truth[None] + rng.normal(0.05, 0.2, (members, 40, 9, 7))
    samples[:, 7, 1, 1] = np.nan
    sums = ScoreSums()
    for part in np.array_split(np.arange(40), 3):
        sums.add(samples[:, part], truth[part])
    whole = ensemble_scores(samples, truth)
    assert sums.scores() == pytest.approx(whole, rel=1e-12, nan_ok=True)
    assert np.isnan(whole["spread_skill"]) == (members == 1) and np.isfinite(whole["crps"])


@pytest.mark.slow
def test_a_block_killed_midway_reruns_alone_and_the_result_is_unchanged(season, tmp_path, monkeypatch):
    single_run(season, "diffusion", tmp_path / "single.nc")
    every = beyond_blocks(COARSE, MONTHS, 20)
    killed = every.index("1999-12-30")  # carries the first winter's run on, over the new year
    run_blocks(season, "diffusion", tmp_path, 20, every[:killed])
    done = {b: os.stat(tmp_path / f"{b}.state.npz").st_mtime_ns for b in every[:killed]}

    calls, predict = [], sampling._predict

    def dies_on_the_fifth_day(*args, **kwargs):
        calls.append(args[3])
        if len(calls) == 5:
            raise KeyboardInterrupt("killed")  # not an Exception: nothing may catch it on the way out
        return predict(*args, **kwargs)

    monkeypatch.setattr(sampling, "_predict", dies_on_the_fifth_day)
    with pytest.raises(KeyboardInterrupt):
        run_blocks(season, "diffusion", tmp_path, 20, [every[killed]])
    monkeypatch.undo()
    assert not (tmp_path / f"{every[killed]}.nc").exists() and not (tmp_path / f"{every[killed]}.state.npz").exists()
    assert not list(tmp_path.glob(".*.part"))

    run_blocks(season, "diffusion", tmp_path, 20, every[killed:])  # what the rerun does: the killed block on
    assert {b: os.stat(tmp_path / f"{b}.state.npz").st_mtime_ns for b in every[:killed]} == done
    assert_same_file(gather(season, "diffusion", tmp_path, every, 20), xr.open_dataset(tmp_path / "single.nc"))


@pytest.mark.slow
def test_gather_refuses_missing_blocks(season, tmp_path):
    every = run_blocks(season, "unet", tmp_path, "year")
    sample_test_files(season["split"], "DJF", "DUEXTTAU", season["dir"] / "unet.pt", "unet", SAMPLING,
                      tmp_path / "test.nc", "cpu")
    with pytest.raises(io.DataValidationError, match="not the 88 beyond days"):
        gather_files(season["split"], "DJF", "DUEXTTAU", season["dir"] / "unet.pt", "unet",
                     [tmp_path / f"{b}.nc" for b in every[:-1]], [tmp_path / f"{b}.state.npz" for b in every[:-1]],
                     tmp_path / "test.nc", SAMPLING, TRANSFORM, tmp_path / "beyond.nc", tmp_path / "selfcheck.json")


def test_a_job_reads_the_coarse_record_only_around_its_own_days(season):
    """load_season(days=...) holds the days' history windows after the spin-up and the training
    days, nothing else of the record, with the same values as a whole read."""
    from diffscale.method.conditioning import needed_steps

    whole = season["data"]
    block = block_days(whole.days["beyond"], "2000", COARSE, "year")  # Dec 2000 and Jan-Feb 2000
    part = load_season(season["split"], "DJF", "DUEXTTAU", days=block, history=3, spinup_days=5)
    wanted = needed_steps(block, 3, "day", 5).union(whole.days["train"])
    assert part.coarse_times.equals(wanted.intersection(whole.coarse_times))
    assert len(part.coarse_times) < len(whole.coarse_times) and part.step == whole.step == "day"
    for day in (block[0] - pd.Timedelta(days=8), block[-1], whole.days["train"][0]):  # spin-up + history, last, train
        assert np.array_equal(part.coarse_on(day), whole.coarse_on(day))
    assert part.truth_times.isin(wanted).all() and part.truth_times.isin(block).any()
    with pytest.raises(KeyError, match="1999-11-20"):
        part.coarse_on(pd.Timestamp("1999-11-20"))  # the record's first day: not this job's
    assert np.array_equal(part.fine, whole.fine)  # the fine record is read whole
