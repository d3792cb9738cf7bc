"""The autoregressive run beyond the fine record, in resumable blocks (rules sample_beyond, gather_beyond).

The season's beyond days fall into blocks (config ``sampling.block``, calendar years by
default; :func:`diffscale.core.days.beyond_blocks`), each one job. Block b reads the
state block b-1 wrote (:class:`~diffscale.method.sampling.ChainState`: the last beyond
day sampled and each member's predictions of that run's last ``history`` days), carries
that run on where its own first day follows it, spins up every other run exactly as the
single run does, and writes its samples (``beyond/{block}.nc``, the sample contract) and
then its state (``beyond/{block}.state.npz``). Every day's noise comes from a generator
seeded by (seed, day), so there is no generator state to carry: the blocks reproduce the
single run to the bit on the CPU. Both files are written atomically, so a job killed
mid-block leaves neither and a rerun repeats that block only.

:func:`gather_files` joins the blocks into ``beyond.nc``, built as the single run built
it (so evaluation and product read what they always read), and writes the self-check.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from diffscale.core import cf, io
from diffscale.core.chunks import chunk_sizes
from diffscale.core.days import block_days
from diffscale.core.samples import DIMS, GrowingMemberFile
from diffscale.method import conditioning as cm
from diffscale.method.conditioning import load_season
from diffscale.method.devices import precision
from diffscale.method.residual import load_model
from diffscale.method.sampling import (AUTOREGRESSIVE, BeyondCheck, ChainState, check_test_days, continue_chain,
                                       sample_attrs, samples_dataset, sampling_model, sampling_options, timed)

log = logging.getLogger("diffscale.method.beyond")


def write_state(path: str | os.PathLike, state: ChainState, meta: dict) -> None:
    """``state`` (exact float32 fields) and a JSON ``meta`` as one .npz file, atomically."""
    days = sorted(state.known)
    fields = np.stack([state.known[d] for d in days]) if days else np.zeros((0,), np.float32)
    last = "" if state.last_day is None else state.last_day.strftime("%Y-%m-%d")
    with io.atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, days=np.array([d.strftime("%Y-%m-%d") for d in days], dtype="U10"), fields=fields,
                 last_day=np.array(last, dtype="U10"), meta=np.array(json.dumps(meta)))


def read_state(path: str | os.PathLike) -> tuple[ChainState, dict]:
    """The state and meta :func:`write_state` wrote."""
    try:
        with np.load(path, allow_pickle=False) as z:
            days, fields, last, meta = list(z["days"]), z["fields"], str(z["last_day"]), json.loads(str(z["meta"]))
    except (OSError, ValueError, KeyError) as exc:
        raise io.DataValidationError(path, f"cannot be read as a block state ({type(exc).__name__}: {exc})") from exc
    known = {pd.Timestamp(d): fields[i] for i, d in enumerate(days)}
    return ChainState(pd.Timestamp(last) if last else None, known), meta


def sample_block_files(split_dir: str | os.PathLike, season: str, variable: str, model_path: str | os.PathLike,
                       name: str, block: str, coarse_period: Sequence[str], sampling: dict,
                       previous: str | os.PathLike | None, samples_out: str | os.PathLike,
                       state_out: str | os.PathLike, device_name: str = "auto",
                       metadata: cf.Metadata | None = None) -> ChainState:
    """Rule sample_beyond: block ``block`` of the season's beyond run, from the state file ``previous``.

    previous: what the block before wrote; None for the first block. Returns the state after the block.
    """
    model, dev = sampling_model(model_path, device_name, sampling["compile"])
    step = cm.record_step(Path(split_dir) / "coarse_on_fine.nc")
    days = block_days(cm.days_of(split_dir, season)["beyond"], block, coarse_period, sampling["block"], step)
    # The block's days alone (and their spin-up): a block of a 25-year record holds its own years.
    data = load_season(split_dir, season, variable, days=days, history=model.spec.history,
                       spinup_days=sampling["spinup_days"], truth=False)
    state = read_state(previous)[0] if previous is not None else ChainState()
    members = 1 if model.deterministic else sampling["beyond_members"]
    log.info("block %s: %d beyond days x %d members, %s", block, len(days), members,
             f"after {state.last_day.date()}" if state.last_day is not None else "the first block")
    with precision(dev, sampling["autocast"]):
        (samples, state), seconds = timed(continue_chain, model, data, days, members, spinup=sampling["spinup_days"],
                                          state=state, **sampling_options(model, sampling))
    log.info("block %s: %d days in %.1f s", block, len(days), seconds)
    attrs = sample_attrs(model, name, model_path, sampling) | {"mode": AUTOREGRESSIVE, "block": block}
    io.write_netcdf(samples_dataset(samples, days, data, attrs), samples_out, metadata=metadata)
    # The state last: a block with a state file has its samples too.
    write_state(state_out, state, {"block": block, "days": len(days), "members": members, "seconds": seconds,
                                   "device": str(dev), "autocast": bool(sampling["autocast"] and dev.type == "cuda")})
    return state


def _block_samples(path: str | os.PathLike, variable: str) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """(days, (M, T, H, W) physical values) of a block file; a block without beyond days gives T = 0."""
    ds = io.open_dataset(path)
    if ds.sizes.get("time", 0) == 0:
        return pd.DatetimeIndex([]), np.zeros((0,), np.float32)
    da = io.validate_field(ds, variable, path, dims=DIMS)
    return pd.DatetimeIndex(da.time.values), np.asarray(da.values)


def gather_files(split_dir: str | os.PathLike, season: str, variable: str, model_path: str | os.PathLike, name: str,
                 block_paths: Sequence[str | os.PathLike], state_paths: Sequence[str | os.PathLike],
                 test_path: str | os.PathLike, sampling: dict, transform: dict, beyond_out: str | os.PathLike,
                 scores_out: str | os.PathLike, metadata: cf.Metadata | None = None) -> dict:
    """Rule gather_beyond: the blocks (in order) as beyond.nc, and the self-check of test.nc and beyond.nc.

    A block at a time: beyond.nc grows along its time axis and the beyond scores are summed
    (:class:`~diffscale.method.sampling.BeyondCheck`), so the job holds one block's members
    and days, not the season's 23 years. Returns the self-check report.
    """
    lists = cm.days_of(split_dir, season)
    expected = lists["beyond"]
    data = load_season(split_dir, season, variable, days=lists["test"], truth=False)
    model = load_model(model_path)  # for its provenance attributes only
    members = 1 if model.deterministic else sampling["beyond_members"]
    attrs = sample_attrs(model, name, model_path, sampling) | {"mode": AUTOREGRESSIVE,
                                                               "spinup_days": sampling["spinup_days"]}
    check = BeyondCheck(transform["log10"], transform["floor"])
    days = pd.DatetimeIndex([])
    with io.atomic_path(beyond_out) as tmp:
        h, w = data.shape
        # the chunks the whole file would get (maps and series alike), not one day's
        out = GrowingMemberFile(tmp, data.lat, data.lon, data.variable, data.attrs, attrs, metadata, members=members,
                                chunks=chunk_sizes({"member": members, "time": len(expected), "lat": h, "lon": w}))
        for path in block_paths:
            t, values = _block_samples(path, variable)
            if not len(t):
                continue
            days = days.append(t)
            if not days.equals(expected[:len(days)]):
                break
            out.add(t, values)
            # the block's days alone: their truth and coarse fields, not the fine record again
            check.add(load_season(split_dir, season, variable, data.scaler, days=t, fine=False), t, values)
        if not days.equals(expected):
            raise io.DataValidationError(block_paths[0] if block_paths else split_dir,
                                         f"the blocks hold {len(days)} days, not the {len(expected)} beyond days "
                                         "of days.json in order")
        out.close()
    test = io.validate_field(io.open_dataset(test_path), variable, test_path, dims=DIMS).values
    metas = [read_state(p)[1] for p in state_paths]
    seconds = {m["block"]: m["seconds"] for m in metas}
    report = {"seconds": {"beyond": sum(seconds.values()), "beyond_blocks": seconds},
              "days": {"test": len(lists["test"]), "beyond": len(expected)}}
    if check.scored:
        report["days"]["beyond_scored"] = check.scored
    report |= check_test_days(data, transform["log10"], transform["floor"], test) | check.report()
    log.info("beyond: %d days from %d blocks; self-check scores: %s", len(days), len(block_paths),
             json.dumps(report, indent=1))
    with io.atomic_path(scores_out) as tmp:
        with open(tmp, "w") as fh:
            fh.write(json.dumps(report, indent=1) + "\n")
    return report
