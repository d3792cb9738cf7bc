"""The training loop: exact resume after a kill, stale checkpoints, early stopping, DDP on CPU."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from diffscale.method.networks.unet import UNet
from diffscale.method.loop import LoopConfig, train_loop
from diffscale.method.tasks import NextDayTask

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]


def tiny_task(seed: int = 0) -> NextDayTask:
    rng = np.random.default_rng(seed)
    fields = rng.standard_normal((40, 12, 12)).cumsum(axis=0).astype(np.float32) / 5
    return NextDayTask(fields, np.arange(3, 30), np.arange(33, 40), history=3, patch=8, batch_size=4, val_patches=16)


def fresh_model() -> UNet:
    torch.manual_seed(0)
    return UNet(3, 1, (4, 8), attention=True)


CFG = LoopConfig(steps=12, lr=1e-2, weight_decay=0.01, ema_decay=0.9, grad_clip=0.5, checkpoint_every=4, seed=3, log_every=4)


def test_resume_after_a_kill_gives_the_same_numbers(tmp_path):
    task = tiny_task()
    straight = train_loop(fresh_model(), task.batch, task.loss, CFG, tmp_path / "a.ckpt")
    # 'kill' after 6 steps: the last checkpoint is at step 4, so steps 5-6 are lost and redone
    killed = train_loop(fresh_model(), task.batch, task.loss, CFG, tmp_path / "b.ckpt", stop_after=6)
    assert len(killed.losses) == 6
    assert torch.load(tmp_path / "b.ckpt", weights_only=False)["step"] == 4
    resumed = train_loop(fresh_model(), task.batch, task.loss, CFG, tmp_path / "b.ckpt")
    assert resumed.steps == straight.steps == 12
    assert resumed.losses == straight.losses  # bitwise, including the redone steps 5-6
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    # EMA weights differ from the raw weights, and the final checkpoint says done
    state = torch.load(tmp_path / "a.ckpt", weights_only=False)
    assert state["done"] and not torch.equal(state["ema"]["out.weight"], state["model"]["out.weight"])


def test_loss_goes_down(tmp_path):
    task = tiny_task()
    cfg = LoopConfig(steps=60, lr=5e-3, ema_decay=None, seed=0, checkpoint_every=100)
    result = train_loop(fresh_model(), task.batch, task.loss, cfg, tmp_path / "c.ckpt")
    first, last = np.mean([v for _, v in result.losses[:10]]), np.mean([v for _, v in result.losses[-10:]])
    assert last < 0.8 * first


def test_a_checkpoint_of_another_configuration_is_ignored(tmp_path):
    task = tiny_task()
    train_loop(fresh_model(), task.batch, task.loss, CFG, tmp_path / "d.ckpt", signature={"channels": [4, 8]})
    other = train_loop(fresh_model(), task.batch, task.loss, CFG, tmp_path / "d.ckpt", signature={"channels": [8, 8]})
    assert len(other.losses) == 12 and other.losses[0][0] == 1  # trained from scratch


def test_early_stopping_keeps_the_best_weights(tmp_path):
    task = tiny_task()
    calls = []

    def worsening(model):
        calls.append(float(model.out.weight.detach().sum()))
        return float(len(calls))  # every evaluation worse than the first

    cfg = LoopConfig(steps=50, lr=1e-2, ema_decay=None, val_every=5, patience=2, seed=0, checkpoint_every=5)
    result = train_loop(fresh_model(), task.batch, task.loss, cfg, tmp_path / "e.ckpt", val_fn=worsening)
    assert result.stopped_early and result.steps == 15
    assert float(result.model.out.weight.detach().sum()) == pytest.approx(calls[0])


DDP_SCRIPT = r"""
import os, sys, json, torch
sys.path.insert(0, sys.argv[1]); sys.path.insert(0, sys.argv[2])
torch.set_num_threads(1)
from test_train import tiny_task, fresh_model
from diffscale.method.loop import LoopConfig, train_loop
task = tiny_task()
cfg = LoopConfig(steps=6, lr=1e-2, ema_decay=0.9, seed=0, checkpoint_every=3)
res = train_loop(fresh_model(), task.batch, task.loss, cfg, sys.argv[3])
rank = int(os.environ["RANK"])
json.dump({"rank": rank, "world": int(os.environ["WORLD_SIZE"]), "losses": res.losses,
           "checksum": float(sum(p.double().sum() for p in res.model.parameters()))},
          open(sys.argv[3] + f".rank{rank}.json", "w"))
"""


@pytest.mark.slow
def test_ddp_with_two_cpu_processes(tmp_path):
    import json

    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    ckpt = tmp_path / "ddp.ckpt"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29517", str(script),
           str(ROOT / "src"), str(ROOT / "tests"), str(ckpt)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"ddp.ckpt.rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["world"] == 2 for r in ranks)
    # each rank drew its own batches (different losses) but all-reduced gradients keep the weights identical
    assert ranks[0]["losses"] != ranks[1]["losses"]
    assert ranks[0]["checksum"] == ranks[1]["checksum"]
    assert torch.load(ckpt, weights_only=False)["done"]
