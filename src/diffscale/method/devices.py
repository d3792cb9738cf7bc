"""Where the networks run, in which precision and how: the config keys ``device``, ``sampling.autocast``
and ``sampling.compile``.

:func:`device` is the one place a device is chosen, for training (:mod:`diffscale.method.loop`),
sampling (:mod:`diffscale.method.sampling`, :mod:`diffscale.method.beyond`), the sampler
benchmark and ``benchmarks/method_speed.py``:

* ``auto`` (default): the GPU of this process's local rank when torch sees one, else the CPU;
* ``cpu``: the CPU even where a GPU is given (CPU runs are reproducible to the bit);
* ``cuda``: the GPU of the local rank, and an error where there is none (a job sent to a
  GPU node that cannot see its GPU should fail, not crawl on the CPU);
* ``cuda:N``: GPU N of those visible (Slurm numbers a job's GPUs from 0); one process only.

:func:`precision` is bf16 autocast on CUDA when asked, and nothing on the CPU, where
sampling stays in float32 so its results do not change. :func:`compiled` hands a diffusion
model's denoiser to ``torch.compile`` on CUDA when asked, and leaves it alone on the CPU.
"""

from __future__ import annotations

import contextlib
import os
import re

import torch

CHOICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")  # the schema's pattern of the device key


def device(choice: str = "auto") -> torch.device:
    """The torch device for the config's ``device`` value (see the module doc)."""
    if not CHOICE.match(choice):
        raise ValueError(f"device '{choice}' is not one of auto, cpu, cuda, cuda:N")
    if choice == "cpu" or (choice == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError(f"device '{choice}' asked for, but torch sees no CUDA device (torch {torch.__version__}, "
                           f"built for CUDA {torch.version.cuda}, CUDA_VISIBLE_DEVICES="
                           f"{os.environ.get('CUDA_VISIBLE_DEVICES', '(unset)')}); use device: auto or cpu")
    if choice in ("auto", "cuda"):
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    if int(os.environ.get("WORLD_SIZE", 1)) > 1:
        raise ValueError(f"device '{choice}' pins every process to one GPU; with several processes use auto or cuda")
    index = int(choice.split(":")[1])
    if index >= torch.cuda.device_count():
        raise RuntimeError(f"device '{choice}': only {torch.cuda.device_count()} CUDA device(s) are visible")
    return torch.device("cuda", index)


def precision(dev: torch.device, autocast: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast for sampling on ``dev`` when it is a GPU and ``autocast`` is set; else nothing."""
    if autocast and dev.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def compiled(model: torch.nn.Module, dev: torch.device, enabled: bool) -> torch.nn.Module:
    """``model`` with its denoiser (what every solver step runs) compiled by torch.compile, on a GPU when asked.

    On an H200 it raised the denoiser's throughput at 16-pixel tiles from 122 to 209 TFLOP/s (README, "Measured on an
    H200"): the group norms and activations fuse. The first day of a job pays the compilation
    (about 12 s for the demo's networks); models without a denoiser, and the CPU, are left as they are.
    """
    if enabled and dev.type == "cuda" and hasattr(model, "denoiser"):
        model.denoiser = torch.compile(model.denoiser)
    return model
