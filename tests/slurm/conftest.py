"""The one-node Slurm cluster as a session fixture (tests marked `slurm`).

Skips, saying why, where Slurm cannot run (not root, packages missing, a real Slurm
configuration present); under CI=true it fails instead, because CI installs Slurm
(.ci/run). Daemons this session started are stopped at its end.
"""

import os

import pytest

from slurm_helpers import ClusterUnavailable, cluster_is_up, start_cluster, stop_cluster


@pytest.fixture(scope="session")
def slurm_cluster():
    was_up = cluster_is_up()
    try:
        summary = start_cluster()
    except ClusterUnavailable as why:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but the Slurm test cluster cannot run: {why}")
        pytest.skip(f"no Slurm test cluster: {why}")
    yield summary
    if not was_up:
        stop_cluster()
