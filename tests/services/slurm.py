"""The ``slurm_cluster`` fixture: a real, private, one-node Slurm for the whole session.

Why a real one: fixtures can only replay formats we already know; a live
controller shows what squeue/scontrol/sinfo/sdiag really print for jobs of each
shape (pending on a reason, held, arrays, failed, cancelled), and lets a test
stop the controller under a running agent.  The cluster itself is the product's
:class:`hpc_demo.localslurm.LocalSlurm` (the demo node runs the same one).

    def test_x(slurm_cluster):
        job = slurm_cluster.sbatch("--wrap", "sleep 60")
"""
from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator

import pytest

from hpc_demo.localslurm import LocalSlurm, installed


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[LocalSlurm]:
    """A running private one-node Slurm.  Setup installs Slurm, so its absence fails."""
    assert installed(), "slurmctld/slurmd/munged are missing: run `make setup` (Debian slurm-wlm, munge)"
    directory = tempfile.mkdtemp(prefix="hpc-slurm-")
    cluster = LocalSlurm(directory)
    try:
        cluster.start()
    except Exception:
        cluster.stop()
        raise
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)


def hpcjob_config(cluster: LocalSlurm, **extra) -> dict:
    """hpcjob settings that watch ``cluster`` (cluster view) with its real Slurm commands."""
    return {"scheduler": "slurm", "slurm_conf": cluster.conf, "node_name": cluster.host,
            "cluster_view": True, "interval": 1, "timeout": 5,
            "squeue_command": [shutil.which("squeue")], "sinfo_command": [shutil.which("sinfo")],
            "sdiag_command": [shutil.which("sdiag")], **extra}
