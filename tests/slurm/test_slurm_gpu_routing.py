"""The repository's profiles route GPU rules on a real Slurm, and multi-GPU
train_diffusion runs as one task that starts torchrun.

The cluster profile acts by rule name (threads), so this runs a small workflow whose
rules carry the workflow's GPU rule names (plus one CPU rule) and, as the real rules do,
ask `gpu` in their resources, under the repository's own profiles/default and
profiles/slurm, on the one-node test cluster. Its train_diffusion takes its GPU count
from diffusion.gpus as the real rule does and launches a real torchrun (gloo on CPU:
the stand-in GPUs have no devices) whose workers all-reduce.
This covers the GPU path independently of how far the model stages have landed; the
workflow test (test_slurm_profile_run.py) checks the real GPU rules once they exist.
"""

import json
import sys
import time

import pytest

from slurm_helpers import GPU_RULES, REPO, RunLog, job_records, short_sbatch, snakemake
from slurm_helpers import slurm_cluster  # noqa: F401 (fixture)

SNAKEFILE = f'''
import sys
PY = sys.executable
localrules: all

rule all:
    input:
        expand("out/{{rule}}.json", rule={list(GPU_RULES) + ["cpu_step"]!r}),

rule pretrain_encoder:
    output: "out/pretrain_encoder.json"
    resources: gpu=1
    shell: "{{PY}} probe.py {{output}}"

use rule pretrain_encoder as train_baseline with:
    output: "out/train_baseline.json"

use rule pretrain_encoder as sample with:
    output: "out/sample.json"

use rule pretrain_encoder as sample_beyond with:
    output: "out/sample_beyond.json"

use rule pretrain_encoder as members_curve with:
    output: "out/members_curve.json"

rule cpu_step:
    output: "out/cpu_step.json"
    shell: "{{PY}} probe.py {{output}}"

# As the workflow's rule: the GPU count is the config's, the job starts torchrun itself.
rule train_diffusion:
    output: "out/train_diffusion.json"
    resources: gpu=config["diffusion"]["gpus"]
    shell:
        "{{PY}} -m torch.distributed.run --standalone --nproc_per_node={{resources.gpu}} "
        "probe.py {{output}}"
'''

PROBE = '''
"""Write what the job sees; under torchrun, all-reduce over the workers first."""
import json, os, sys
out = {k: os.environ.get(k) for k in ("SLURM_JOB_ID", "SLURM_NTASKS", "SLURM_GPUS_ON_NODE",
                                      "SLURM_JOB_PARTITION", "SLURM_CPUS_PER_TASK")}
if "WORLD_SIZE" in os.environ:
    import torch
    import torch.distributed as dist
    dist.init_process_group("gloo")
    pids = [None] * dist.get_world_size()
    dist.all_gather_object(pids, os.getpid())
    total = torch.ones(1)
    dist.all_reduce(total)
    out |= {"world_size": dist.get_world_size(), "all_reduce_sum": float(total), "pids": pids}
    rank = dist.get_rank()
    dist.destroy_process_group()
    if rank != 0:
        sys.exit(0)
with open(sys.argv[1], "w") as f:
    json.dump(out, f)
'''


@pytest.mark.slow
@pytest.mark.slurm
@pytest.mark.timeout(600)
def test_profiles_route_gpu_rules_and_one_task_torchrun(slurm_cluster, tmp_path):
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    (tmp_path / "probe.py").write_text(PROBE)
    (tmp_path / "config.yaml").write_text("diffusion:\n  gpus: 2\n")

    t0 = time.perf_counter()
    run = snakemake(
        tmp_path,
        "--workflow-profile", str(REPO / "profiles/default"),
        "--profile", str(REPO / "profiles/slurm"),
        "--configfile", "config.yaml",
        "--slurm-no-account",
        "--slurm-init-seconds-before-status-checks", "1",
        "--jobs", "5",
        "--verbose",
    )
    wall = time.perf_counter() - t0
    assert run.returncode == 0, "\n".join(run.stdout.splitlines()[-60:])

    log = RunLog.parse(run.stdout)
    remote = {j.rule: j for j in log.jobs.values() if not j.local}
    assert set(remote) == set(GPU_RULES) | {"cpu_step"}
    records = job_records([j.slurm_id for j in remote.values()])
    print(f"\nGPU routing run: {wall:.1f} s")
    for rule, job in sorted(remote.items()):
        rec, seen = records[job.slurm_id], json.loads((tmp_path / f"out/{rule}.json").read_text())
        print(f"  {rule} -> job {job.slurm_id} partition={rec['Partition']} NumTasks={rec['NumTasks']} "
              f"TresPerJob={rec.get('TresPerJob', '-')}: {short_sbatch(job.sbatch)}")
        assert rec["JobState"] == "COMPLETED" and seen["SLURM_JOB_ID"] == job.slurm_id
        assert rec["NumTasks"] == "1" and seen["SLURM_NTASKS"] == "1", rule  # one task, not one per GPU
        assert "--ntasks-per-gpu" not in job.sbatch
        if rule == "cpu_step":
            assert rec["Partition"] == "cpu" and "--gpus" not in job.sbatch
            assert "TresPerJob" not in rec or "gpu" not in rec["TresPerJob"]
            continue
        gpus = 2 if rule == "train_diffusion" else 1
        assert rec["Partition"] == "gpu" and seen["SLURM_JOB_PARTITION"] == "gpu", rule
        assert f"--gpus={gpus}" in job.sbatch and rec["TresPerJob"] == f"gres:gpu:{gpus}", rule
        assert seen["SLURM_GPUS_ON_NODE"] == str(gpus), rule
        assert "--cpus-per-task=8" in job.sbatch, rule  # set-threads of profiles/slurm
    # torchrun in the single task started one worker per GPU, and they talked.
    ddp = json.loads((tmp_path / "out/train_diffusion.json").read_text())
    assert ddp["world_size"] == 2 and ddp["all_reduce_sum"] == 2.0 and len(set(ddp["pids"])) == 2
