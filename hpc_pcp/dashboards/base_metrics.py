"""PCP's own metrics that pcp-hpc relies on: the node board's CPU, memory and D-state panels
and the node alarm rules read them next to ours.

No metric table of this project describes them, so they are declared here with the
descriptors PCP's agents give them (linux 60, proc 3, pmcd 2): the dashboard catalog takes
their semantics and units from here, the alarm tests build pmie's check archive from here,
and a test compares every entry with ``pminfo -dm`` of a real pmcd, so a name or descriptor
that PCP does not have (or changed) fails there instead of in a rule that never fires.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pmdas.common.table import (
    COUNT,
    COUNTER,
    DISCRETE,
    I32,
    INSTANT,
    KBYTES,
    MSEC,
    NONE,
    U32,
    U64,
    Units,
)

FLOAT = "float"         # PM_TYPE_FLOAT: kernel.all.load (our own tables never use it)
LINUX, PROC, PMCD = "linux", "proc", "pmcd"     # pmcd.conf labels of PCP's agents


@dataclass(frozen=True)
class BaseMetric:
    """One PCP metric as ``pminfo -dm`` shows it."""

    agent: str                          # PCP agent that exports it
    pmid: tuple[int, int, int]          # domain, cluster, item
    type: str                           # pmdas.common.table type code, or FLOAT
    semantics: str
    units: Units
    indom: tuple[int, int] | None = None  # (domain, serial); None: a single value


BASE_METRICS: Mapping[str, BaseMetric] = {
    "kernel.all.cpu.user": BaseMetric(LINUX, (60, 0, 20), U64, COUNTER, MSEC),
    "kernel.all.cpu.sys": BaseMetric(LINUX, (60, 0, 22), U64, COUNTER, MSEC),
    "kernel.all.cpu.idle": BaseMetric(LINUX, (60, 0, 23), U64, COUNTER, MSEC),
    "kernel.all.cpu.wait.total": BaseMetric(LINUX, (60, 0, 35), U64, COUNTER, MSEC),
    "kernel.all.load": BaseMetric(LINUX, (60, 2, 0), FLOAT, INSTANT, NONE, (60, 2)),
    "hinv.ncpu": BaseMetric(LINUX, (60, 0, 32), U32, DISCRETE, NONE),
    "mem.util.used": BaseMetric(LINUX, (60, 1, 1), U64, INSTANT, KBYTES),
    "mem.util.free": BaseMetric(LINUX, (60, 1, 2), U64, INSTANT, KBYTES),
    "mem.util.cached": BaseMetric(LINUX, (60, 1, 5), U64, INSTANT, KBYTES),
    "mem.physmem": BaseMetric(LINUX, (60, 1, 0), U64, DISCRETE, KBYTES),
    # processes in uninterruptible sleep (state D in ps) now: the node.d_state alarm
    "proc.runq.blocked": BaseMetric(PROC, (3, 13, 1), I32, INSTANT, COUNT),
    # /proc/stat procs_blocked: the tasks among them that wait for I/O (iowait)
    "kernel.all.blocked": BaseMetric(LINUX, (60, 0, 16), U64, INSTANT, NONE),
    # node.unreachable and node.agent_down
    "pmcd.numagents": BaseMetric(PMCD, (2, 0, 2), U32, INSTANT, NONE),
    "pmcd.agent.status": BaseMetric(PMCD, (2, 4, 1), I32, DISCRETE, NONE, (2, 3)),
}
