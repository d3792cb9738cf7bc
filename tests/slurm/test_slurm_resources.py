"""The demo's memory and run time requests on a real Slurm node that declares 22 GB.

The rules compute mem_mb and runtime from the config and their input
(diffscale.core.resources). This runs the demo config's data rules and domain analysis
(make_synthetic, regrid, regrid_fine_to_coarse, split_region, split, domain) through
`snakemake --profile profiles/slurm` on the one-node test cluster, and checks what a
cluster user relies on: every job is accepted by a 22 GB node and completes, and each
asks for at least the memory its benchmark file says it used. Fixed paper-sized requests
(24 GB for split_region) were refused by such a node; the control shows it refuses them.
"""

import csv
import re
import subprocess
import time

import pytest

from slurm_helpers import RunLog, job_records, make_clone, short_sbatch, snakemake
from slurm_helpers import slurm_cluster  # noqa: F401 (fixture)

NODE_MB = 22000  # tests/slurm/start_cluster.sh's RealMemory
DATA_RULES = {"make_synthetic", "regrid", "regrid_fine_to_coarse", "split_region", "split", "domain"}
TARGETS = [
    "results/domain/west/wasserstein.csv",
    "results/split/west/DJF/days.json",
    "results/regrid/west/fine_on_coarse/2003-12.nc",
]


def _mem_mb(value: str) -> float:
    """scontrol's memory figure (e.g. 1000M, 2G) in MB."""
    m = re.fullmatch(r"([\d.]+)([KMGT]?)", value)
    assert m, value
    return float(m.group(1)) * {"K": 1 / 1024, "": 1, "M": 1, "G": 1024, "T": 1024**2}[m.group(2)]


def _seconds(limit: str) -> int:
    """scontrol's TimeLimit ([days-]hours:minutes:seconds) in seconds."""
    days, _, hms = limit.rpartition("-")
    h, m, s = map(int, hms.split(":"))
    return ((int(days or 0) * 24 + h) * 60 + m) * 60 + s


def _benchmark(path) -> tuple[float, float]:
    """(max_rss MB, wall seconds) of a benchmark file."""
    with open(path) as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return max(float(r["max_rss"]) for r in rows), max(float(r["s"]) for r in rows)


@pytest.mark.slow
@pytest.mark.slurm
@pytest.mark.timeout(1200)
def test_demo_requests_fit_a_22_gb_node(slurm_cluster, tmp_path):
    node = subprocess.run(["sinfo", "-h", "-N", "-o", "%m"], capture_output=True, text=True).stdout.split()
    assert node and int(node[0]) == NODE_MB, f"the test node should declare {NODE_MB} MB: {node}"
    # The control: this node refuses what the old fixed profile asked of split_region.
    refused = subprocess.run(["sbatch", "--mem=24000", "--partition=cpu", "--wrap=true"],
                             capture_output=True, text=True)
    assert refused.returncode != 0 and "Memory specification can not be satisfied" in refused.stderr, refused

    clone = make_clone(tmp_path / "demo")
    t0 = time.perf_counter()
    run = snakemake(
        clone, *TARGETS,
        "--profile", "profiles/slurm",
        "--slurm-no-account",  # the test cluster has no accounting database
        "--slurm-init-seconds-before-status-checks", "1",
        "--jobs", "4",
        "--retries", "0",  # a first attempt must fit; a retry's larger request would hide it
        "--verbose",  # the plugin logs each sbatch call at debug level
    )
    wall = time.perf_counter() - t0
    assert run.returncode == 0, "Slurm run failed:\n" + "\n".join(run.stdout.splitlines()[-60:])

    log = RunLog.parse(run.stdout)
    remote = [j for j in log.jobs.values() if not j.local]
    assert {j.rule for j in remote} == DATA_RULES, sorted(j.rule for j in remote)
    assert all(j.slurm_id and j.sbatch for j in remote), [j.rule for j in remote if not j.slurm_id]
    records = job_records([j.slurm_id for j in remote])
    print(f"\nSlurm run of the demo's data rules: {wall:.1f} s on a {NODE_MB} MB node")
    for job in sorted(remote, key=lambda j: int(j.slurm_id)):
        rec = records[job.slurm_id]
        assert rec.get("JobState") == "COMPLETED", (job.rule, rec)
        asked = _mem_mb(rec["MinMemoryNode"])
        assert f"--mem {int(asked)}" in job.sbatch or f"--mem={int(asked)}" in job.sbatch, job.sbatch
        bench = [_benchmark(p) for p in (clone / "results/benchmarks" / job.rule).glob("*.tsv")]
        used, took = max(b[0] for b in bench), max(b[1] for b in bench)
        print(f"  {job.rule}: asked {asked:.0f} MB and {rec['TimeLimit']}, used {used:.0f} MB (max_rss) "
              f"and {took:.0f} s: {short_sbatch(job.sbatch)}")
        assert used <= asked < NODE_MB, (job.rule, used, asked)
        assert took <= _seconds(rec["TimeLimit"]), (job.rule, took, rec["TimeLimit"])
