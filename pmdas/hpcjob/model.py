"""Plain data shared by both scheduler back ends, and the aggregations over it.

Slurm and PBS parsers both produce ``Job`` and ``NodeRow`` records so that the
collector and the metric table know nothing of which scheduler answered.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from operator import attrgetter
from typing import NamedTuple

from ClusterShell.NodeSet import RESOLVER_NOGROUP, NodeSet, NodeSetException

# Normalised job states.  "held" is a pending job held by a user or an admin
# (Slurm: PENDING with reason JobHeld*; PBS: state H): admins count it apart
# because it will never start by itself.
RUNNING, PENDING, HELD, COMPLETING, SUSPENDED = "running", "pending", "held", "completing", "suspended"
COMPLETED, FAILED, CANCELLED, TIMEOUT = "completed", "failed", "cancelled", "timeout"
OTHER = "other"
JOB_STATES = (RUNNING, PENDING, HELD, COMPLETING, SUSPENDED, COMPLETED, FAILED, CANCELLED,
              TIMEOUT, OTHER)
ACTIVE_STATES = (RUNNING, COMPLETING, SUSPENDED)

# Normalised node states (cluster view).
NODE_STATES = ("idle", "allocated", "mixed", "down", "drain", "draining", "reserved",
               "completing", "other")

MAX_HOSTS = 100_000   # more hosts than any job spans: 'n[1-999999999]' is refused, not expanded
_NO_HOSTS = frozenset(("", "N/A", "NONE", "Unknown", "UNLIMITED", "INVALID", "NOT_SET", "(null)"))


@lru_cache(maxsize=1 << 14)
def expand_hosts(node_list: str) -> tuple[str, ...]:
    """'nva[59-60],nvb[10,13-15]' → each host name; an unparseable list gives ().

    ClusterShell's NodeSet (Debian's python3-clustershell), the HPC field's reader of node
    sets.  Cached: a cluster's jobs share far fewer distinct node lists than there are jobs.
    """
    if node_list in _NO_HOSTS:
        return ()
    if _size_bound(node_list) > MAX_HOSTS:    # NodeSet would build every number first
        return ()
    try:   # no group resolution: '@name' is a host name here, never a lookup or an upcall
        return tuple(NodeSet(node_list, resolver=RESOLVER_NOGROUP))
    except (NodeSetException, ValueError):
        return ()


_RANGE = re.compile(r"(\d+)(?:-(\d+))?(?:/(\d+))?")


def _size_bound(node_list: str) -> int:
    """An upper bound of the hosts ``node_list`` names, from its bracketed ranges alone:
    the sum over comma-separated patterns of the product of each pattern's range sizes."""
    total, pattern = 0, 1
    for part in re.split(r"(\[[^\]]*\]|,)", node_list):
        if part == ",":
            total, pattern = total + pattern, 1
        elif part.startswith("["):
            size = 0
            for item in part[1:-1].split(","):
                m = _RANGE.fullmatch(item.strip())
                if m and m.group(2):
                    size += abs(int(m.group(2)) - int(m.group(1))) // int(m.group(3) or 1) + 1
                else:
                    size += 1
            pattern *= max(size, 1)
    return total + pattern


class Job(NamedTuple):
    """One job (or array task) as the scheduler sees it.

    A named tuple rather than a dataclass: a cluster view builds up to 50,000 of these
    per refresh, and a tuple is built in half the time and takes half the memory.
    """

    id: str                       # instance name: Slurm JobID (ArrayJobID_TaskID for an array
    #                               task not yet started) / PBS job id ("13.server")
    display_id: str = ""          # what users type: "6_1", "6_[2-3]", "13.server"
    state: str = OTHER            # one of JOB_STATES
    raw_state: str = ""           # the scheduler's own word (RUNNING, NODE_FAIL, R, ...)
    user: str = ""
    account: str = ""
    partition: str = ""
    name: str = ""
    nodes: int | None = None
    node_list: str = ""           # compressed ("nva[59-60]") or comma-separated host names
    cpus: int | None = None
    gpus: int | None = None
    memory: int | None = None     # bytes allocated (running) or requested (pending)
    submit_time: float | None = None
    start_time: float | None = None
    end_time: float | None = None
    elapsed: int | None = None    # seconds
    time_limit: int | None = None  # seconds; None when unlimited or unknown
    time_left: int | None = None
    reason: str = ""
    exit_code: int | None = None
    exit_signal: int | None = None

    @property
    def hosts(self) -> tuple[str, ...]:
        """The node list expanded, on demand: only the node view asks."""
        return expand_hosts(self.node_list)


@dataclass(frozen=True)
class NodeRow:
    """One node as listed in one partition (a node in two partitions gives two rows)."""

    node: str
    partition: str
    state: str                    # one of NODE_STATES
    raw_state: str = ""
    cpus_allocated: int | None = None
    cpus_idle: int | None = None
    cpus_total: int | None = None
    gpus_total: int | None = None
    gpus_allocated: int | None = None
    memory_total: int | None = None      # bytes
    memory_allocated: int | None = None  # bytes


@dataclass(frozen=True)
class Tally:
    """Jobs and allocated resources of one user, account or partition."""

    running: int = 0
    pending: int = 0
    cpus: int = 0
    gpus: int = 0
    memory: int = 0


@dataclass(frozen=True)
class JobCounts:
    """Everything the cluster view derives from the job list, computed once per refresh."""

    by_partition: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    pending_reasons: Mapping[str, int] = field(default_factory=dict)
    users: Mapping[str, Tally] = field(default_factory=dict)
    accounts: Mapping[str, Tally] = field(default_factory=dict)


_ACTIVE = frozenset(ACTIVE_STATES)
_WAITING = frozenset((PENDING, HELD))
_PARTITION_AND_STATE = attrgetter("partition", "state")


def count_jobs(jobs: Iterable[Job]) -> JobCounts:
    """Per-partition state counts, pending reasons, per-user and per-account tallies."""
    jobs = list(jobs)
    active = [j for j in jobs if j.state in _ACTIVE]
    waiting = [j for j in jobs if j.state in _WAITING]
    return JobCounts(
        _count_by_partition(jobs),
        dict(Counter(j.reason for j in waiting if j.state == PENDING and j.reason)),
        _tally(active, waiting, "user"),
        _tally(active, waiting, "account"))


def _count_by_partition(jobs: list[Job]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for (partition, state), n in Counter(map(_PARTITION_AND_STATE, jobs)).items():
        row = counts.setdefault(partition or "-", dict.fromkeys(JOB_STATES, 0))
        if state in row:
            row[state] += n
    return counts


def _tally(active: list[Job], waiting: list[Job], owner: str) -> dict[str, Tally]:
    """Running and pending jobs per owner ('-' if none), and what the running ones hold."""
    rows: dict[str, list[int]] = {}
    for name, cpus, gpus, memory in map(attrgetter(owner, "cpus", "gpus", "memory"), active):
        row = rows.get(name or "-")
        if row is None:
            row = rows[name or "-"] = [0, 0, 0, 0, 0]
        row[0] += 1
        row[2] += cpus or 0
        row[3] += gpus or 0
        row[4] += memory or 0
    for name, count in Counter(map(attrgetter(owner), waiting)).items():
        rows.setdefault(name or "-", [0, 0, 0, 0, 0])[1] += count
    return {name: Tally(*row) for name, row in rows.items()}


@dataclass(frozen=True)
class PartitionNodes:
    nodes: Mapping[str, int]
    cpus_allocated: int
    cpus_idle: int
    cpus_total: int
    gpus_allocated: int
    gpus_total: int


def count_nodes(rows: Iterable[NodeRow]) -> tuple[dict[str, PartitionNodes], dict[str, int]]:
    """Per-partition node states and CPU/GPU sums, and cluster-wide distinct-node states."""
    acc: dict[str, list] = {}
    distinct: dict[str, str] = {}
    for row in rows:
        a = acc.setdefault(row.partition, [Counter(), 0, 0, 0, 0, 0])
        a[0][row.state] += 1
        a[1] += row.cpus_allocated or 0
        a[2] += row.cpus_idle or 0
        a[3] += row.cpus_total or 0
        a[4] += row.gpus_allocated or 0
        a[5] += row.gpus_total or 0
        distinct.setdefault(row.node, row.state)
    partitions = {p: PartitionNodes({s: a[0].get(s, 0) for s in NODE_STATES}, *a[1:])
                  for p, a in acc.items()}
    totals = Counter(distinct.values())
    return partitions, {s: totals.get(s, 0) for s in NODE_STATES}
