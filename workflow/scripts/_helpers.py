"""Shared start of every workflow script (Snakemake puts this folder on sys.path).

Puts the library in this checkout's src/ first on sys.path, so a script always runs the
code of the workflow it belongs to: not a pip-installed diffscale of another clone, and
also where none is installed (a conda env made by --sdm conda, a cluster node). Sends
logging to the rule's log file, and gives the files a script writes the config's CF/ACDD
metadata. Sets glibc's malloc thresholds (diffscale.core.allocator), so a job's freed
arrays stay in its heap for the next day's, not handed back to the kernel and zeroed anew.
"""

import sys
from pathlib import Path

_SRC = str(Path(__file__).resolve().parents[2] / "src")
# Snakemake appends the workflow's src/ to the end of sys.path; behind site-packages an
# editable install of another checkout would win.
while _SRC in sys.path:
    sys.path.remove(_SRC)
sys.path.insert(0, _SRC)

from diffscale.core.allocator import retain_freed_memory  # noqa: E402
from diffscale.core.cf import Metadata  # noqa: E402
from diffscale.core.runlog import log_to  # noqa: E402

__all__ = ["file_metadata", "log_to"]

retain_freed_memory()


def file_metadata(smk) -> Metadata:
    """The CF/ACDD attributes of every file a job writes, from the config.

    Read from the job's config, not from a rule's params: they describe the files, so
    editing a title or a creator must not rerun the jobs (params changes do).
    """
    return Metadata.from_config(smk.config)
