"""Tier 3: per-job cgroup use from real Slurm jobs in real cgroups.

A private Slurm as the demo node runs it, with jobs under proctrack/cgroup (cgroup
v1, as on nodes without systemd), so the kernel accounts each job's memory and CPU in
``<ctrl>/slurm_<host>/uid_<uid>/job_<id>``.  The agent must report what the kernel
accounted, joined to the scheduler's job, and drop the job when it ends.
"""
from __future__ import annotations

import glob
import os
import shutil
import tempfile

import pytest
from hpcjob_helpers import make_agent

from hpc_demo.localslurm import CGROUP_V1, LocalSlurm, cgroup_v1_available
from pmdas.common.refresh import Refresher
from tests.harness.pcp import wait_for


@pytest.fixture(scope="module")
def cgroup_cluster():
    assert cgroup_v1_available(), (
        "cgroup v1 memory and cpuacct controllers are not mounted under /sys/fs/cgroup: the "
        "demo's Slurm tracks jobs by process there, so per-job cgroup use cannot be shown")
    cluster = LocalSlurm(tempfile.mkdtemp(prefix="hpcjob-cgroups-"), cgroups=True)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(cluster.dir, ignore_errors=True)


def _kernel(job_id: str, ctrl: str, name: str) -> int:
    (path,) = glob.glob(os.path.join(CGROUP_V1, ctrl, "slurm*", "uid_*", f"job_{job_id}", name))
    with open(path, encoding="ascii") as f:
        return int(f.read())


def test_job_memory_and_cpu_come_from_its_cgroup(cgroup_cluster):
    cluster = cgroup_cluster
    job = cluster.sbatch("-J", "hold-96m", "--wrap", "python3 -c 'import time; b = b\"x\" * (96 << 20); "
                         "sum(range(5_000_000)); time.sleep(60)'")
    try:
        wait_for(lambda: glob.glob(os.path.join(CGROUP_V1, "memory", "slurm*", "uid_*", f"job_{job}")),
                 40, what="the job's memory cgroup")
        agent = make_agent(scheduler="slurm", slurm_conf=cluster.conf, node_name=cluster.host, root="/")

        def grown():
            v = Refresher(agent).refresh_once().values
            memory = v["hpc.job.job.cgroup.memory.current"].get(job)
            return v if memory and memory >= 96 << 20 else None
        values = wait_for(grown, 40, what="the job's memory to reach 96 MiB in the agent")
        memory = values["hpc.job.job.cgroup.memory.current"][job]
        kernel_memory = _kernel(job, "memory", "memory.usage_in_bytes")
        assert abs(memory - kernel_memory) < 16 << 20, (memory, kernel_memory)
        cpu = values["hpc.job.job.cgroup.cpu_time"][job]
        assert 0 < cpu <= _kernel(job, "cpuacct", "cpuacct.usage")
        assert values["hpc.job.job.cgroup.version"][job] == 1
        assert values["hpc.job.job.state"][job] == "running"

        cluster.run("scancel", job)
        wait_for(lambda: job not in Refresher(agent).refresh_once().values[
            "hpc.job.job.cgroup.memory.current"], 30, what="the ended job to leave the cgroup metrics")
    finally:
        cluster.run("scancel", job, check=False)
