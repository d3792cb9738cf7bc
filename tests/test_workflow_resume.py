"""A sample_beyond job killed with SIGKILL mid-block: the rerun repeats that block only, and
beyond.nc equals one uninterrupted autoregressive run over every beyond day, to the bit."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

import numpy as np
import pytest
import torch
import xarray as xr

from conftest import run_snakemake, snakemake_command, tiny_config

# 10-day blocks over Jan-Feb 2000: beyond days Jan 1-14 and Feb 16-29 (the fine record is
# Jan 15 - Feb 15), so blocks 2000-01-11 and 2000-02-20 carry a run on from the block
# before, 2000-01-21 and 2000-01-31 are empty and 2000-02-10 spins up a new run.
SAMPLING = tiny_config()["sampling"] | {"block": 10}
# One torch thread per job: on a loaded two-core machine two threads sampled 25x slower.
# (--set-threads replaces the profile's mapping: every rule gets one.)
ONE_THREAD = ("--set-threads", "sample=1", "sample_beyond=1")
BLOCKS = ["2000-01-01", "2000-01-11", "2000-01-21", "2000-01-31", "2000-02-10", "2000-02-20"]
KILLED = "2000-02-20"
SAMPLES = "results/samples/solo/winter/diffusion/s0"


def kill_during(workdir, config, target: str, block: str, timeout: float = 300) -> None:
    """Run Snakemake for ``target`` and SIGKILL it and its jobs once ``block``'s job has started sampling.

    The job logs its first line on loading the model; its files come after sampling its
    days (seconds on this machine; at least ~0.1 s on an idle one), so the kill, within
    ~10 ms, lands mid-block.
    """
    log = workdir / f"results/logs/sample_beyond/solo_winter_diffusion_s0_{block}.log"
    proc = subprocess.Popen(snakemake_command(workdir, config, target, *ONE_THREAD), cwd=workdir,
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.monotonic()
    try:
        while not (log.exists() and f"block {block}:" in log.read_text()):
            assert proc.poll() is None, "the run ended before the block started"
            assert time.monotonic() - t0 < timeout, "the block did not start"
            time.sleep(0.01)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # Snakemake and the jobs it started: one process group
        proc.wait()


def uninterrupted(workdir, config: dict) -> np.ndarray:
    """What the single sample job wrote before the blocks: the physical beyond samples of one run."""
    from diffscale.core.config import validate_config
    from diffscale.method.conditioning import load_season
    from diffscale.method.residual import load_model
    from diffscale.method.sampling import autoregressive, samples_dataset, sampling_options

    cfg = validate_config(config)["sampling"]
    data = load_season(workdir / "results/split/solo", "winter", "DUEXTTAU")
    model = load_model(workdir / "results/models/solo/winter/diffusion.s0.pt")
    torch.set_num_threads(1)  # as the job had
    scaled = autoregressive(model, data, data.days["beyond"], cfg["beyond_members"], spinup=cfg["spinup_days"],
                            **sampling_options(model, cfg))
    return samples_dataset(scaled, data.days["beyond"], data, {}).DUEXTTAU.values


@pytest.mark.slow
def test_a_killed_block_job_reruns_alone_and_the_samples_equal_an_uninterrupted_run(tmp_path):
    config = tiny_config(sampling=SAMPLING)
    run_snakemake(tmp_path, config, "results/models/solo/winter/diffusion.s0.pt", *ONE_THREAD)
    kill_during(tmp_path, config, f"{SAMPLES}/beyond.nc", KILLED)
    beyond = tmp_path / SAMPLES / "beyond"
    finished = {b: (beyond / f"{b}.state.npz").stat().st_mtime_ns for b in BLOCKS[:-1]}
    assert not (beyond / f"{KILLED}.nc").exists() and not (beyond / f"{KILLED}.state.npz").exists()

    run_snakemake(tmp_path, config, "--unlock")
    proc = run_snakemake(tmp_path, config, f"{SAMPLES}/beyond.nc", *ONE_THREAD)
    rerun = re.findall(r"rule sample_beyond:.*?block=([\d-]+)", proc.stdout + proc.stderr, flags=re.S)
    assert rerun == [KILLED], rerun
    assert {b: (beyond / f"{b}.state.npz").stat().st_mtime_ns for b in BLOCKS[:-1]} == finished

    gathered = xr.open_dataset(tmp_path / SAMPLES / "beyond.nc").DUEXTTAU.values
    assert gathered.shape == (2, 28, 17, 21)
    assert np.array_equal(gathered, uninterrupted(tmp_path, config))
