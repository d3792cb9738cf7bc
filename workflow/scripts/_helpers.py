"""Shared start of every workflow script (Snakemake puts this folder on sys.path).

Makes the library in src/ importable even where it is not pip-installed (a conda env
made by --sdm conda, a cluster node), and sends logging to the rule's log file.
"""

import sys
from pathlib import Path

_SRC = Path(__file__).resolve().parents[2] / "src"
if _SRC.is_dir() and str(_SRC) not in sys.path:
    sys.path.insert(0, str(_SRC))

from diffscale.core.runlog import log_to  # noqa: E402

__all__ = ["log_to"]
