"""Plain data shared by both scheduler back ends, and the aggregations over it.

Slurm and PBS parsers both produce ``Job`` and ``NodeRow`` records so that the
collector and the metric table know nothing of which scheduler answered.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

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


@dataclass(frozen=True)
class Job:
    """One job (or array task, or the pending rest of an array) as the scheduler sees it."""

    id: str                       # instance name: Slurm JobId / PBS job id ("13.server")
    display_id: str = ""          # what users type: "6_1", "6_[2-3]", "13.server"
    state: str = OTHER            # one of JOB_STATES
    raw_state: str = ""           # the scheduler's own word (RUNNING, NODE_FAIL, R, ...)
    user: str = ""
    account: str = ""
    partition: str = ""
    name: str = ""
    nodes: int | None = None
    node_list: str = ""           # compressed, as the scheduler prints it
    hosts: tuple[str, ...] = ()   # expanded
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


def count_jobs(jobs: Iterable[Job]) -> JobCounts:
    """Per-partition state counts, pending reasons, per-user and per-account tallies."""
    by_partition: dict[str, Counter] = defaultdict(Counter)
    reasons: Counter = Counter()
    users: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    accounts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for job in jobs:
        by_partition[job.partition or "-"][job.state] += 1
        if job.state == PENDING and job.reason:
            reasons[job.reason] += 1
        if job.state in ACTIVE_STATES:
            slot, resources = 0, (job.cpus or 0, job.gpus or 0, job.memory or 0)
        elif job.state in (PENDING, HELD):
            slot, resources = 1, (0, 0, 0)
        else:
            continue
        for owner, table in ((job.user, users), (job.account, accounts)):
            row = table[owner or "-"]
            row[slot] += 1
            row[2] += resources[0]
            row[3] += resources[1]
            row[4] += resources[2]
    return JobCounts(
        {p: {s: c.get(s, 0) for s in JOB_STATES} for p, c in by_partition.items()},
        dict(reasons),
        {u: Tally(*row) for u, row in users.items()},
        {a: Tally(*row) for a, row in accounts.items()})


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
