"""The d-state fault: a job stuck in uninterruptible sleep, for real.

A Slurm job on the node puts its own process into a cgroup-v1 freezer cgroup of ours and
the fault freezes it: a frozen task sleeps uninterruptibly and shows as ``D`` in /proc, as
a job stuck on a hung file system does.  The node's own pmcd counts it in
``proc.runq.blocked`` (its proc agent reads only the node's /proc), so pmie and the node
board see it on that node alone.  Clearing thaws the cgroup, kills the task by pid (having
left Slurm's freezer cgroup, it is out of reach of proctrack/cgroup's signals), cancels the
job and removes the cgroup.  The freezer hierarchy is the host's (cgroups are not namespaced here), so a
cgroup is named after its node and ``down`` thaws any left: a frozen task cannot die.
"""
from __future__ import annotations

import glob
import os
import signal
import time

from hpc_demo.namespace import Namespace

from . import slurm
from .layout import Node

FREEZER = "/sys/fs/cgroup/freezer"
JOB_NAME = "stuck-in-d"


class DStateError(RuntimeError):
    pass


def cgroup(node: Node) -> str:
    return os.path.join(FREEZER, f"hpc-demo-{node.name}-dstate")


def _job_file(node: Node) -> str:
    return os.path.join(node.directory, "dstate.job")


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return ""


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def _wait(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise DStateError(f"{what} within {seconds:g} s")


def inject(node: Node, head: Namespace, seconds: float = 30) -> str:
    """Start the job on ``node``, freeze it; return its Slurm job id."""
    if not os.path.exists(os.path.join(FREEZER, "cgroup.procs")):
        raise DStateError(f"no cgroup-v1 freezer hierarchy at {FREEZER}: the d-state fault needs one")
    group = cgroup(node)
    os.makedirs(group, exist_ok=True)
    job = slurm.run(head, "sbatch", "--parsable", "-w", node.name, "-N", "1", "-n", "1",
                    "-J", JOB_NAME, "-o", "/dev/null",
                    "--wrap", f"echo $$ > {group}/cgroup.procs && exec sleep 100000").strip()
    _write(_job_file(node), job)
    _wait(lambda: _read(os.path.join(group, "cgroup.procs")), seconds,
          f"job {job} did not start on {node.name}")
    _write(os.path.join(group, "freezer.state"), "FROZEN")
    _wait(lambda: _read(os.path.join(group, "freezer.state")) == "FROZEN", seconds,
          f"{group} did not freeze")
    return job


def clear(node: Node, head: Namespace | None, seconds: float = 30) -> None:
    """Thaw, end the job's task and cancel the job, remove the cgroup (each step only if there
    is something to do)."""
    group = cgroup(node)
    if os.path.isdir(group):
        _write(os.path.join(group, "freezer.state"), "THAWED")
        for pid in _read(os.path.join(group, "cgroup.procs")).split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass
    job = _read(_job_file(node))
    if job and head is not None and head.alive():
        slurm.run(head, "scancel", job, check=False)
    if os.path.isdir(group):
        _wait(lambda: not _read(os.path.join(group, "cgroup.procs")), seconds,
              f"the processes of {group} did not end")
        os.rmdir(group)
    if os.path.exists(_job_file(node)):
        os.unlink(_job_file(node))


def groups() -> list[str]:
    """Our freezer cgroups (of any node) that exist."""
    return sorted(glob.glob(os.path.join(FREEZER, "hpc-demo-*-dstate")))


def thaw_all() -> list[str]:
    """Thaw every freezer cgroup of ours (before nodes are killed); return their paths."""
    found = groups()
    for group in found:
        _write(os.path.join(group, "freezer.state"), "THAWED")
    return found


def remove_all() -> None:
    """Remove our freezer cgroups that no process is in any more (leftovers() names the rest)."""
    for group in groups():
        try:
            os.rmdir(group)
        except OSError:
            pass
