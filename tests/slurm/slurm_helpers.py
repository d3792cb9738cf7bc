"""Helpers for the Slurm test: the one-node cluster, clones of the repository, runs of
Snakemake, what the scheduler recorded, and output comparison.

Everything here drives real programs (start_cluster.sh, sbatch via the Snakemake Slurm
plugin, scontrol); nothing is simulated.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
START = HERE / "start_cluster.sh"
STOP = HERE / "stop_cluster.sh"
CANNOT_RUN_HERE = 3  # start_cluster.sh's exit status for "not root / not installed / not ours"

# The rules that must run on a GPU node. pretrain_encoder, train_baseline, sample,
# sample_beyond and members_curve ask `gpu=1` in their rules; train_diffusion asks diffusion.gpus GPUs.
GPU_RULES = ("pretrain_encoder", "train_diffusion", "train_baseline", "sample", "sample_beyond", "members_curve")


class ClusterUnavailable(RuntimeError):
    """Slurm cannot run on this machine (the test skips, or fails under CI=true)."""


def cluster_is_up() -> bool:
    if shutil.which("scontrol") is None:
        return False
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=60)
    return ping.returncode == 0 and "is UP" in ping.stdout


def start_cluster() -> str:
    """Start the test cluster (idempotent); return sinfo's summary.

    Raises ClusterUnavailable when this machine cannot host it, RuntimeError when it
    should but the daemons do not come up.
    """
    if shutil.which("bash") is None:
        raise ClusterUnavailable("bash not found")
    proc = subprocess.run(["bash", str(START)], capture_output=True, text=True, timeout=180)
    if proc.returncode == CANNOT_RUN_HERE:
        raise ClusterUnavailable(proc.stderr.strip())
    if proc.returncode != 0:
        raise RuntimeError(f"{START} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def stop_cluster() -> None:
    subprocess.run(["bash", str(STOP)], capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="session")
def slurm_cluster():
    """The one-node cluster for tests marked `slurm` (import this fixture into the module;
    tests/slurm has no conftest.py, so that `from conftest import ...` in tests/ keeps
    meaning tests/conftest.py).

    Skips, saying why, where Slurm cannot run (not root, packages missing, a real Slurm
    configuration present); under CI=true it fails instead, because CI installs Slurm
    (.ci/run). Daemons this session started are stopped at its end.
    """
    if _SESSION["was_up"] is None:  # the first module to ask decides for the session
        _SESSION["was_up"] = cluster_is_up()
    try:
        summary = start_cluster()
    except ClusterUnavailable as why:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but the Slurm test cluster cannot run: {why}")
        pytest.skip(f"no Slurm test cluster: {why}")
    yield summary
    if not _SESSION["was_up"]:
        stop_cluster()  # idempotent: the fixture runs once per module that imports it


_SESSION: dict[str, bool | None] = {"was_up": None}


def make_clone(dest: Path) -> Path:
    """Copy the repository's tracked and untracked-but-not-ignored files to dest, as a
    fresh `git clone` would have them (no results/, .snakemake/ or .venv/)."""
    listing = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO, capture_output=True, text=True,
    )
    if listing.returncode == 0:
        files = [f for f in listing.stdout.split("\0") if f]
    else:  # not a git checkout (e.g. an sdist): copy all but the usual ignored folders
        skip = {".git", ".venv", "results", ".snakemake", "__pycache__", ".pytest_cache"}
        files = [str(p.relative_to(REPO)) for p in REPO.rglob("*")
                 if p.is_file() and not skip & set(p.relative_to(REPO).parts)]
    for rel in files:
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def snakemake(clone: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run `snakemake ARGS` in clone with this interpreter; stdout+stderr go to
    clone/snakemake.out as well as to the returned object."""
    env = dict(os.environ)
    env.pop("SNAKEMAKE_PROFILE", None)  # only the profiles the test names
    proc = subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=clone, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout)
    (clone / "snakemake.out").write_text(proc.stdout)
    return proc


@dataclass
class Job:
    jobid: int
    rule: str
    local: bool
    slurm_id: str | None = None
    sbatch: str | None = None


@dataclass
class RunLog:
    """What the Snakemake process that drove a Slurm run printed (with --verbose)."""

    jobs: dict[int, Job] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> RunLog:
        log = cls()
        rule, local = None, False
        sbatch_by_rule: dict[str, list[str]] = {}
        for line in text.splitlines():
            if m := re.match(r"^(local)?rule (\w+):$", line):
                local, rule = bool(m.group(1)), m.group(2)
            elif rule and (m := re.match(r"^\s+jobid: (\d+)$", line)):
                jobid = int(m.group(1))
                log.jobs.setdefault(jobid, Job(jobid, rule, local))
                rule = None
            elif line.startswith("sbatch call: "):
                comment = re.search(r"--comment (\S+)", line)
                if comment:
                    sbatch_by_rule.setdefault(comment.group(1).strip("'"), []).append(
                        line[len("sbatch call: "):])
            elif m := re.match(r"^Job (\d+) has been submitted with SLURM jobid (\d+)", line):
                job = log.jobs[int(m.group(1))]
                job.slurm_id = m.group(2)
                # the plugin logs the sbatch call just before the submission line
                calls = sbatch_by_rule.get(f"rule_{job.rule}", []) + [
                    c for key, cs in sbatch_by_rule.items()
                    if key.startswith(f"rule_{job.rule}_wildcards_") for c in cs]
                job.sbatch = calls[-1] if calls else None
        return log


def job_records(slurm_ids: list[str]) -> dict[str, dict[str, str]]:
    """scontrol's record of each job (kept for MinJobAge seconds after it ends)."""
    records = {}
    for jid in slurm_ids:
        out = subprocess.run(["scontrol", "-o", "show", "job", jid], capture_output=True,
                             text=True).stdout.strip()
        fields = {}
        for token in re.findall(r"(\w[\w/:]*)=(\S*)", out):
            fields.setdefault(token[0], token[1])
        records[jid] = fields
    return records


def short_sbatch(call: str) -> str:
    """The sbatch options of a call, without the long --wrap command."""
    return call.split(" --wrap=")[0]


# ---- output comparison -------------------------------------------------------------------

def output_files(results: Path) -> set[str]:
    """Every file under results/ except the per-job logs and benchmark files (they hold times and hosts)."""
    return {str(p.relative_to(results)) for p in results.rglob("*")
            if p.is_file() and p.relative_to(results).parts[0] not in ("logs", "benchmarks")}


def is_timing(name: str) -> bool:
    """Wall-clock measurements (samplers.csv's `seconds`, ...) differ between any two runs."""
    return name == "seconds" or name.endswith("_seconds")


def _close(a, b, rtol: float, path: str, where: str = "") -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), f"{path}{where}: keys differ: {sorted(a)} vs {sorted(b)}"
        for k in a:
            if not is_timing(str(k)):
                _close(a[k], b[k], rtol, path, f"{where}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), f"{path}{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b)):
            _close(x, y, rtol, path, f"{where}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert math.isclose(a, b, rel_tol=rtol, abs_tol=1e-12) or (math.isnan(a) and math.isnan(b)), \
            f"{path}{where}: {a} != {b}"
    else:
        assert a == b, f"{path}{where}: {a!r} != {b!r}"


def compare_outputs(local: Path, slurm: Path, rtol: float = 1e-6) -> dict[str, list[str]]:
    """Assert that every output both runs wrote has the same content; return the files
    compared by kind. netCDF: every variable's values (xarray); CSV: the table (pandas);
    JSON: the parsed document; text (.txt, .tsv): exact. Others (figures, checkpoints,
    HTML) are only required to exist in both runs."""
    import pandas as pd
    import xarray as xr

    compared: dict[str, list[str]] = {"netcdf": [], "csv": [], "json": [], "text": [], "exists": []}
    for rel in sorted(output_files(local) & output_files(slurm)):
        a, b = local / rel, slurm / rel
        suffix = a.suffix.lower()
        if suffix == ".nc":
            with xr.open_dataset(a) as da, xr.open_dataset(b) as db:
                assert set(da.data_vars) == set(db.data_vars), f"{rel}: variables differ"
                xr.testing.assert_allclose(da.load(), db.load(), rtol=rtol, atol=0)
            compared["netcdf"].append(rel)
        elif suffix == ".csv":
            ta, tb = pd.read_csv(a), pd.read_csv(b)
            timing = [c for c in ta.columns if is_timing(str(c))]
            pd.testing.assert_frame_equal(ta.drop(columns=timing), tb.drop(columns=timing, errors="ignore"),
                                          check_exact=False, rtol=rtol, obj=rel)
            compared["csv"].append(rel)
        elif suffix == ".json":
            _close(json.loads(a.read_text()), json.loads(b.read_text()), rtol, rel)
            compared["json"].append(rel)
        elif suffix in {".txt", ".tsv"}:
            assert a.read_text() == b.read_text(), f"{rel}: contents differ"
            compared["text"].append(rel)
        else:
            compared["exists"].append(rel)
    return compared
