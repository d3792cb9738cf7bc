"""The workflow on a real Slurm scheduler through `snakemake --profile profiles/slurm`.

Starts a one-node cluster (tests/slurm/start_cluster.sh), runs the tiny config once
locally and once through the cluster profile, each in its own fresh copy of the
repository (as a user's clone), and checks what a cluster user relies on: the run
succeeds, every non-local job was submitted with sbatch and ran as a Slurm job, GPU
rules went to the GPU partition with a GPU request (and CPU rules did not), and the
outputs are the same as the local run's.
"""

import re
import time
from pathlib import Path

import pytest
import yaml

from slurm_helpers import (
    GPU_RULES,
    REPO,
    RunLog,
    compare_outputs,
    job_records,
    make_clone,
    output_files,
    short_sbatch,
    slurm_cluster,  # noqa: F401 (fixture)
    snakemake,
)

CONFIG = "tests/slurm/tiny.yaml"
# One thread per job in both runs: the profile's 8 threads of the GPU rules would
# oversubscribe this test's two cores (test_slurm_gpu_routing.py checks that they reach
# sbatch as --cpus-per-task=8). A command-line --set-threads replaces the profile's whole
# mapping, so every rule the profile sizes is named.
THREADS = ["--set-threads", *(f"{rule}=1" for rule in GPU_RULES)]


def _tail(text: str, n: int = 60) -> str:
    return "\n".join(text.splitlines()[-n:])


def test_profiles_ask_gpus_for_the_gpu_rules():
    """The GPU rules ask for a GPU in their own resources (train_diffusion diffusion.gpus),
    not through the workflow profile, whose set-resources a command-line --set-resources
    would replace as a whole; the cluster profile sends GPU jobs to a partition that has
    GPUs and others to one without."""
    text = (REPO / "workflow/rules/model.smk").read_text()
    for rule in GPU_RULES:
        body = re.split(r"^rule ", text.split(f"\nrule {rule}:\n")[1], flags=re.M)[0]
        resources = body.split("    resources:\n")[1].split("\n    params:")[0]
        want = 'gpu=config["diffusion"]["gpus"]' if rule == "train_diffusion" else "gpu=1,"
        assert want in resources, (rule, resources)
    default = yaml.safe_load((REPO / "profiles/default/config.yaml").read_text())
    # Keys the workflow profile would silently take over from the cluster profile, or a
    # command-line --set-resources would silently drop.
    assert "cores" not in default and "default-resources" not in default
    assert "set-resources" not in default
    # Locally every rule has one thread, so --cores N runs N jobs at once; on the cluster
    # the GPU rules get CPUs for data loading from the cluster profile.
    assert "set-threads" not in default


    slurm = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
    assert slurm["executor"] == "slurm"
    assert "slurm_extra" not in str(slurm)
    assert set(GPU_RULES) <= set(slurm["set-threads"])
    parts = yaml.safe_load((REPO / "profiles/slurm" / slurm["slurm-partition-config"]).read_text())
    gpu_parts = [p for p, lim in parts["partitions"].items() if (lim or {}).get("max_gpu", 0) > 0]
    cpu_parts = [p for p, lim in parts["partitions"].items() if not (lim or {}).get("max_gpu", 0)]
    assert gpu_parts == ["gpu"] and cpu_parts == ["cpu"]


def test_download_rules_are_local():
    """Downloads run on the login node (compute nodes often have no internet): every
    download_* rule is in a `localrules:` list, which the Slurm executor honours."""
    text = "\n".join(p.read_text() for p in [REPO / "Snakefile", *(REPO / "workflow/rules").glob("*.smk")])
    downloads = set(re.findall(r"^\s*(?:rule|use rule \w+ as) (download_\w+)", text, re.M))
    local, lines = set(), text.splitlines()
    for i, line in enumerate(lines):
        if m := re.match(r"^(\s*)localrules:(.*)$", line):
            local |= set(re.findall(r"\w+", m.group(2)))
            for nxt in lines[i + 1:]:  # the indented list under it
                if len(nxt) - len(nxt.lstrip()) <= len(m.group(1)) or not re.fullmatch(r"[\w,\s]+", nxt):
                    break
                local |= set(re.findall(r"\w+", nxt))
    assert downloads <= local, f"download rules not in localrules: {sorted(downloads - local)}"


@pytest.mark.slow
@pytest.mark.slurm
@pytest.mark.timeout(1200)
def test_workflow_on_slurm_matches_local_run(slurm_cluster, tmp_path):
    local = make_clone(tmp_path / "local")
    cluster = make_clone(tmp_path / "slurm")

    # Locally with enough cores that no rule's own `threads:` is capped, so that every job
    # runs with the same thread count as in its Slurm job.
    run = snakemake(local, "--cores", "8", "--configfile", CONFIG, *THREADS)
    assert run.returncode == 0, f"local run failed:\n{_tail(run.stdout)}"

    t0 = time.perf_counter()
    run = snakemake(
        cluster,
        "--profile", "profiles/slurm",
        "--configfile", CONFIG,
        *THREADS,
        # The test cluster has no accounting database, so no account can be validated.
        "--slurm-no-account",
        "--slurm-init-seconds-before-status-checks", "1",
        "--slurm-keep-successful-logs",
        "--jobs", "4",
        "--verbose",  # the plugin logs each sbatch call at debug level
    )
    wall = time.perf_counter() - t0
    assert run.returncode == 0, f"Slurm run failed:\n{_tail(run.stdout)}"

    log = RunLog.parse(run.stdout)
    remote = [j for j in log.jobs.values() if not j.local]
    assert remote, "no job ran on the cluster"
    unsubmitted = [j.rule for j in remote if j.slurm_id is None or j.sbatch is None]
    assert not unsubmitted, f"jobs not submitted with sbatch: {unsubmitted}"
    records = job_records([j.slurm_id for j in remote])
    for job in remote:
        rec = records[job.slurm_id]
        assert rec.get("JobState") == "COMPLETED", (job.rule, rec)
        assert rec.get("Comment", "").startswith(f"rule_{job.rule}"), (job.rule, rec)
        assert Path(rec["WorkDir"]) == cluster, (job.rule, rec["WorkDir"])

    # GPU rules: gpu partition and a GPU request; the rest: cpu partition, no GPU.
    defined = set(snakemake(cluster, "--list-rules", "--configfile", CONFIG).stdout.split())
    gpu_jobs = [j for j in remote if j.rule in GPU_RULES]
    if defined & set(GPU_RULES):
        assert gpu_jobs, (f"the workflow defines GPU rules {sorted(defined & set(GPU_RULES))} but "
                          f"none ran with {CONFIG}: make the tiny config reach them")
    for job in remote:
        rec = records[job.slurm_id]
        if job.rule in GPU_RULES:
            assert rec["Partition"] == "gpu", (job.rule, rec["Partition"])
            assert "--gpus=" in job.sbatch, job.sbatch
            assert rec.get("TresPerJob", "").startswith("gres:gpu:"), (job.rule, rec)
            assert "--ntasks-per-gpu" not in job.sbatch, job.sbatch  # one task, not one per GPU
        else:
            assert rec["Partition"] == "cpu", (job.rule, rec["Partition"])
            assert "--gpus" not in job.sbatch and "gpu" not in rec.get("TresPerJob", ""), job.sbatch

    # Same outputs, same numbers.
    assert output_files(local / "results") == output_files(cluster / "results")
    compared = compare_outputs(local / "results", cluster / "results")
    assert compared["netcdf"], "no netCDF output was compared"

    print(f"\nSlurm run wall time: {wall:.1f} s for {len(remote)} Slurm jobs "
          f"({', '.join(sorted({j.rule for j in remote}))})")
    for job in sorted(remote, key=lambda j: int(j.slurm_id)):
        rec = records[job.slurm_id]
        print(f"  {job.rule} -> job {job.slurm_id} partition={rec['Partition']} "
              f"TresPerJob={rec.get('TresPerJob', '-')}: {short_sbatch(job.sbatch)}")
    print("  compared: " + ", ".join(f"{k}={len(v)}" for k, v in compared.items()))
