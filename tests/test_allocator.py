"""The malloc settings every workflow script starts with (diffscale.core.allocator)."""

import os
import subprocess
import sys

import pytest

from diffscale.core import allocator

# A sampled day in miniature: a network's activations, 30 tensors of 0.9 MB alive together,
# written and freed together, day after day. Prints the page faults of 50 days after 20
# days of warm-up (glibc's dynamic thresholds have settled by then).
FAULTS = """
import resource, sys, torch
from diffscale.core.allocator import retain_freed_memory
applied = retain_freed_memory() if sys.argv[1] == "set" else None
def day():
    activations = [torch.empty(225_000).fill_(1.0) for _ in range(30)]
    del activations
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    day()
before = faults()
for _ in range(50):
    day()
print(applied, faults() - before)
"""

glibc = pytest.mark.skipif(allocator._glibc() is None, reason="the settings are glibc's")


def _faults(mode: str, tunables: str | None = None) -> tuple[str, int]:
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    if tunables is not None:
        env["GLIBC_TUNABLES"] = tunables
    out = subprocess.run([sys.executable, "-c", FAULTS, mode], capture_output=True, text=True, check=True, env=env)
    applied, faults = out.stdout.split()
    return applied, int(faults)


@glibc
def test_freed_tensors_are_reused_without_new_page_faults():
    _, default = _faults("default")
    applied, retained = _faults("set")
    assert applied == "True"
    # glibc's default gives the freed 27 MB back (its trim threshold follows its mmap
    # threshold, here ~2 MB) and faults it in again the next day: ~5,000 faults a day
    assert default > 50 * 2000
    assert retained < 500


@glibc
def test_the_users_own_malloc_tunables_win():
    applied, faults = _faults("set", "glibc.malloc.trim_threshold=131072")
    assert applied == "False"
    assert faults > 50 * 2000


def test_a_pad_mallopt_cannot_take_is_refused():
    with pytest.raises(ValueError, match="top_pad must be 0..2 GiB"):
        allocator.retain_freed_memory(top_pad=4 << 30)
