"""Each compute node's Slurm jobs in cgroups of their own (issue #18): slurmd puts a node's
jobs under ``<ctrl>/slurm_<node>/uid_<uid>/job_<id>`` in the host's cgroup v1 hierarchies
(proctrack/cgroup, jobacct_gather/cgroup, as the demo node's Slurm), and the node's hpcjob
reports what the kernel accounted there, for that node's jobs only.  A job spanning two
nodes then has CPU time and memory on both, each node's pmcd serving its own share.
No logger node: every figure is read from the nodes' own pmcd and the kernel's files.
"""
from __future__ import annotations

import glob
import os
import re

import pytest

from hpc_demo.cluster import cluster, slurm
from hpc_demo.localslurm import CGROUP_V1, cgroup_v1_available, job_cgroups
from tests.harness.pcp import wait_for

COMPUTE = ("node01", "node02")
# On each node: a little CPU (a loop in Python), 48 MiB held, then a wait.
TASK = "python3 -c 'import time; b = bytearray(48 << 20); sum(range(3_000_000)); time.sleep(90)'"


@pytest.fixture(scope="module")
def up():
    if os.geteuid() != 0:
        pytest.fail("the cluster needs root (namespaces, a bridge)")
    assert cgroup_v1_available(), "no cgroup v1 memory and cpuacct hierarchies: jobs are tracked by process"
    print("start times (s):", cluster.up(len(COMPUTE), print, logger=False))
    yield cluster.load()[1]
    cluster.down(print)


def _values(ns, metric: str) -> dict[str, float]:
    out = ns.run("pminfo", "-f", metric, check=False, timeout=20).stdout
    return {m.group(1): float(m.group(2)) for m in re.finditer(r'inst \[\d+ or "([^"]*)"\] value (\S+)', out)}


def _kernel(node: str, job: str, ctrl: str, name: str) -> int:
    (path,) = glob.glob(os.path.join(CGROUP_V1, ctrl, f"slurm_{node}", "uid_*", f"job_{job}", name))
    with open(path, encoding="ascii") as f:
        return int(f.read())


def _submit(head, *args: str) -> str:
    return slurm.run(head, "sbatch", "--parsable", "-o", "/dev/null", *args).strip()


def test_a_two_node_job_has_cpu_and_memory_on_both_nodes(up):
    head = up["head"]
    job = _submit(head, "-N", "2", "-n", "2", "-J", "cg-span", "--wrap", f"srun {TASK}")
    try:
        for node in COMPUTE:   # the job's cgroups on each node, in that node's own tree
            wait_for(lambda node=node: glob.glob(os.path.join(CGROUP_V1, "memory", f"slurm_{node}", "uid_0",
                                                              f"job_{job}")),
                     timeout=40, interval=0.5, what=f"job {job}'s memory cgroup of {node}")
        for node in COMPUTE:
            def grown(node=node):
                memory = _values(up[node], "hpc.job.job.cgroup.memory.current").get(job, 0)
                cpu = _values(up[node], "hpc.job.job.cgroup.cpu_time").get(job, 0)
                return (cpu, memory) if memory >= 48 << 20 and cpu > 0 else None
            cpu, memory = wait_for(grown, timeout=60, interval=1, what=f"{node}: job {job} at 48 MiB")
            assert cpu <= _kernel(node, job, "cpuacct", "cpuacct.usage")   # a counter, read before
            assert abs(memory - _kernel(node, job, "memory", "memory.usage_in_bytes")) < 16 << 20
            assert _values(up[node], "hpc.job.job.cgroup.version")[job] == 1
            print(f"{node}: job {job} CPU {cpu / 1e9:.3f} s, memory {memory / 2**20:.0f} MiB")
    finally:
        slurm.run(head, "scancel", job, check=False)
    for node in COMPUTE:   # gone from the cgroup metrics once it ends
        wait_for(lambda node=node: job not in _values(up[node], "hpc.job.job.cgroup.cpu_time"), timeout=40,
                 interval=1, what=f"{node}: job {job} to leave the cgroup metrics")


def test_each_node_reports_only_its_own_job_cgroups(up):
    """A job on node02 alone has a cgroup there; node01's hpcjob does not report it (the host's
    hierarchies hold every node's jobs: node01 reads only slurm_node01), and neither knows
    the host's own Slurm's jobs (slurm_<host>)."""
    head = up["head"]
    job = _submit(head, "-w", "node02", "-N", "1", "-n", "1", "-J", "cg-node02", "--wrap", TASK)
    try:
        wait_for(lambda: _values(up["node02"], "hpc.job.job.cgroup.cpu_time").get(job), timeout=60,
                 interval=1, what=f"node02: job {job} with CPU time")
        assert not glob.glob(os.path.join(CGROUP_V1, "*", "slurm_node01", "uid_*", f"job_{job}"))
        for node in COMPUTE:
            reported = set(_values(up[node], "hpc.job.job.cgroup.cpu_time"))
            own = {os.path.basename(p)[4:]
                   for p in glob.glob(os.path.join(CGROUP_V1, "cpuacct", f"slurm_{node}", "uid_*", "job_*"))}
            assert all(j in own or _ended(head, j) for j in reported), (node, reported, own)
            assert (job in reported) == (node == "node02"), (node, reported)
    finally:
        slurm.run(head, "scancel", job, check=False)


def _ended(head, job: str) -> bool:
    """A job whose cgroup went between the agent's read and ours."""
    return slurm.run(head, "squeue", "-h", "-j", job, "-o", "%t", check=False).strip() not in ("R", "CG")


def test_down_removes_every_node_job_cgroup(up):
    assert any(job_cgroups(node) for node in COMPUTE)   # the job mix ran in them
    assert cluster.down(print) == []
    assert [group for node in COMPUTE for group in job_cgroups(node)] == []
