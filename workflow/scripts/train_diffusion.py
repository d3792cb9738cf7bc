"""Rule train_diffusion: the conditional diffusion model, with the frozen transfer encoder
(model diffusion) or without it (diffusion_no_transfer, the ablation: no encoder input).

diffusion.gpus > 1 launches the same training under torchrun (DistributedDataParallel,
one process per GPU, or gloo processes on a CPU); otherwise it runs in this process.
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _helpers import log_to

import torch

from diffscale.method.fit import train_diffusion_files

log = log_to(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
p = snakemake.params
split_dir = str(Path(snakemake.input.fine).parent)
encoder = snakemake.input.get("encoder")  # None for diffusion_no_transfer
procs = p.diffusion["gpus"]
if procs == 1:
    train_diffusion_files(split_dir, snakemake.wildcards.season, p.variable, encoder, p.encoder, p.diffusion,
                          p.halo, p.checkpoint, snakemake.output.model, snakemake.output.curve)
else:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump({"encoder": dict(p.encoder), "diffusion": dict(p.diffusion)}, fh)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}", "-m", "diffscale.method.fit",
           "--split-dir", split_dir, "--season", snakemake.wildcards.season, "--variable", p.variable,
           *(["--encoder", encoder] if encoder else []), "--config", fh.name, "--halo", str(p.halo), "--checkpoint", p.checkpoint,
           "--output", snakemake.output.model, "--curve", snakemake.output.curve, "--log-file", snakemake.log[0] + ".rank0"]
    log.info("launching %d processes: %s", procs, " ".join(cmd))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    rank0 = Path(snakemake.log[0] + ".rank0")
    try:
        subprocess.run(cmd, check=True, env=env)
    finally:
        if rank0.exists():  # fold rank 0's log into the rule's log
            log.info("rank 0:\n%s", rank0.read_text())
            rank0.unlink()
