"""Shared fixtures: a tiny config and a way to run the real Snakemake on it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def tiny_config(**overrides) -> dict:
    """Two months of coarse record, one small region, one season: seconds to run."""
    config = {
        "data": {
            "source": "synthetic",
            "coarse_period": ["2000-01-01", "2000-02-29"],
            "fine_period": ["2000-01-15", "2000-02-15"],
            "margin_deg": 0.5,
            "standard_name": "atmosphere_optical_thickness_due_to_dust_ambient_aerosol_particles",
        },
        "regions": {"solo": {"lat": [33.0, 34.0], "lon": [64.0, 65.25]}},
        "seasons": {"winter": [12, 1, 2]},
        # the method at test size: seconds, not minutes
        "encoder": {"history": 3, "patch": 16, "channels": [4, 8], "epochs": 1, "batch_size": 8},
        "diffusion": {"channels": [8, 8], "steps": 20, "batch_size": 8, "checkpoint_every": 10},
        "sampling": {"steps": 3, "members": 3, "beyond_members": 2, "members_saved": 2, "halo": 2, "spinup_days": 2,
                     "ddpm_steps": 8, "benchmark_members": 2, "curve_members": 4},
    }
    for key, value in overrides.items():
        config[key] = value
    return config


def snakemake_command(workdir: Path, config: dict | None, *args: str) -> list[str]:
    """The command line of :func:`run_snakemake`; writes the config to ``workdir/config.yaml``."""
    cmd = [*SNAKEMAKE, "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir),
           "--cores", "2", "--workflow-profile", str(ROOT / "profiles" / "default"), *args]
    if config is not None:
        path = workdir / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        cmd += ["--configfile", str(path)]
    return cmd


def run_snakemake(workdir: Path, config: dict | None, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run the real workflow (this checkout's Snakefile) in ``workdir``.

    The config is written to ``workdir/config.yaml`` and given with --configfile;
    results land in ``workdir/results`` because the rules use relative paths.
    """
    cmd = snakemake_command(workdir, config, *args)
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return proc


# The models of the whole-chain run below: the method, its ablation and a baseline.
FULL_RUN_MODELS = ["bicubic", "diffusion", "diffusion_no_transfer", "diffusion_from_coarse"]


def full_run_config() -> dict:
    return tiny_config(evaluation={"models": FULL_RUN_MODELS, "variogram_pairs": 2000})


@pytest.fixture(scope="session")
def full_run(tmp_path_factory) -> Path:
    """Every rule of the workflow once on the tiny twin (raw data to product, the ablation
    included): one run shared by the tests that read its outputs."""
    work = tmp_path_factory.mktemp("full_run")
    run_snakemake(work, full_run_config())
    return work


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Two cores are shared by the whole suite; keep torch from oversubscribing them."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
