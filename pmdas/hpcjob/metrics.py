"""Metric table of the job-scheduler agent: hpc.job.*.

Archives record PMIDs, so they never change.  Hand-written lists (clusters 1 and 2)
are numbered by position and append-only; every family generated from data (one
metric per job state, node state, owner tally or sdiag field) has an explicit item
per member, so a new state or field takes an unused item and moves nothing else.
Cluster-view metrics are unavailable on nodes running only the node view.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pmdas.common.table import (
    BYTES,
    COUNT,
    COUNTER,
    DISCRETE,
    DOUBLE,
    I32,
    INSTANT,
    NONE,
    NSEC,
    SEC,
    STRING,
    U32,
    U64,
    USEC,
    Column,
    Indom,
    Metric,
    cluster,
    numbered,
)

from .model import (
    CANCELLED,
    COMPLETED,
    COMPLETING,
    FAILED,
    HELD,
    JOB_STATES,
    NODE_STATES,
    OTHER,
    PENDING,
    RUNNING,
    SUSPENDED,
    TIMEOUT,
)

_WAITING = frozenset((PENDING, HELD))

# PMID items of the per-state families.  A state added to model.py needs an unused item
# here (the table refuses to build without one); a state removed keeps its item unused.
PARTITION_JOB_ITEMS = {RUNNING: 0, PENDING: 1, HELD: 2, COMPLETING: 3, SUSPENDED: 4,
                       COMPLETED: 5, FAILED: 6, CANCELLED: 7, TIMEOUT: 8, OTHER: 9}   # cluster 3
PARTITION_NODE_ITEMS = {"idle": 10, "allocated": 11, "mixed": 12, "down": 13, "drain": 14,
                        "draining": 15, "reserved": 16, "completing": 17, "other": 18}  # cluster 3
NODE_ITEMS = {"idle": 0, "allocated": 1, "mixed": 2, "down": 3, "drain": 4, "draining": 5,
              "reserved": 6, "completing": 7, "other": 8}                               # cluster 5


def pinned(states: Sequence[str], items: Mapping[str, int], what: str) -> dict[str, int]:
    """{state: item} for every state, in the states' order; ValueError naming any state
    that has no item yet."""
    missing = [s for s in states if s not in items]
    if missing:
        raise ValueError(f"{what} {', '.join(missing)} has no PMID item: give it an unused "
                         "one in pmdas/hpcjob/metrics.py")
    return {s: items[s] for s in states}


def family(number: int, items: Mapping[str, int], make: Callable[[str], Metric]) -> list[Metric]:
    """One metric per key, each at its own item (a repeated item is refused)."""
    return numbered(number, ((item, make(key)) for key, item in items.items()))

INDOMS = [
    Indom("job", 0, "jobs known to this agent",
          "Node view: the jobs the scheduler places on this node, plus any job with a cgroup "
          "here. Cluster view: every job the scheduler lists, including recently finished ones "
          "still in its memory (Slurm MinJobAge, PBS job history), each array task apart. The "
          "instance name is the scheduler's job id; an array task not yet started has none of "
          "its own and is named as users write it (6_2). Labels carry job, user and account.",
          lambda s: {i: {"job": i, "user": j.user, "account": j.account}
                     for i, j in s.jobs.items()}),
    Indom("partition", 1, "partitions (Slurm) or queues (PBS)",
          "One instance per Slurm partition or PBS queue seen in the job or node list.",
          lambda s: {p: {"partition": p} for p in
                     {*(s.counts.by_partition if s.counts else ()), *(s.partitions or ())}}),
    Indom("pending_reason", 2, "reasons jobs are pending",
          "One instance per distinct pending reason (Slurm's Reason, PBS's comment).",
          lambda s: {r: {"reason": r} for r in (s.counts.pending_reasons if s.counts else ())}),
    Indom("user", 3, "users with running or pending jobs", "One instance per job owner.",
          lambda s: {u: {"user": u} for u in (s.counts.users if s.counts else ())}),
    Indom("account", 4, "accounts with running or pending jobs",
          "One instance per charge account (Slurm account, PBS Account_Name; '-' if none).",
          lambda s: {a: {"account": a} for a in (s.counts.accounts if s.counts else ())}),
]


def _job(attr: str, kind: str) -> Callable[[Any], Column]:
    """One job attribute over all jobs, as a column (a cluster lists 50,000 jobs).

    None is no value; so is an empty string, except an empty pending reason, which
    means "not pending".
    """
    if kind != STRING or attr == "reason":
        return lambda s: Column(s.job_names, s.job_columns[attr])
    return lambda s: Column(s.job_names, tuple([v or None for v in s.job_columns[attr]]))


def _pending_time(s: Any) -> Column:
    """Seconds since submission of waiting jobs (no value if the submit time is unknown), 0 for others."""
    waiting_since = zip(s.job_columns["state"], s.job_columns["submit_time"], strict=True)
    return Column(s.job_names, tuple([
        (int(max(0.0, s.taken - submitted)) if submitted is not None else None)
        if state in _WAITING else 0 for state, submitted in waiting_since]))


def _usage(attr: str) -> Callable[[Any], dict]:
    return lambda s: {i: getattr(u, attr) for i, u in s.usage.items()
                      if getattr(u, attr) is not None}


def _job_metric(name, type_, sem, units, attr, help_, long_help) -> Metric:
    return Metric(f"job.{name}", type_, sem, units, help_, long_help, _job(attr, type_), indom="job")


JOB = cluster(1, [
    _job_metric("state", STRING, INSTANT, NONE, "state", "job state (running, pending, held, ...)",
                "Normalised state: running, pending, held (pending and held by a user or "
                "admin), completing, suspended, completed, failed, cancelled, timeout, other."),
    _job_metric("scheduler_state", STRING, INSTANT, NONE, "raw_state", "job state in the scheduler's words",
                "The state exactly as the scheduler prints it (Slurm: RUNNING, NODE_FAIL, "
                "OUT_OF_MEMORY, ...; PBS: R, Q, H, E, F, ...)."),
    _job_metric("user", STRING, DISCRETE, NONE, "user", "job owner", "User name that owns the job."),
    _job_metric("account", STRING, DISCRETE, NONE, "account", "charge account of the job",
                "Slurm account or PBS Account_Name the job is charged to; empty if none."),
    _job_metric("partition", STRING, DISCRETE, NONE, "partition", "partition or queue of the job",
                "Slurm partition(s) or PBS queue the job was submitted to."),
    _job_metric("name", STRING, DISCRETE, NONE, "name", "job name", "The job name given at submission."),
    _job_metric("array_id", STRING, DISCRETE, NONE, "display_id", "job id as users write it",
                "The id users see: for array tasks 'array_task' (6_1), otherwise the job id "
                "('6_[2-3]', the pending rest of an array, only from a squeue without -r)."),
    _job_metric("nodes", U32, INSTANT, COUNT, "nodes", "nodes allocated or requested",
                "Number of nodes the job runs on, or requests while pending."),
    _job_metric("node_list", STRING, INSTANT, NONE, "node_list", "nodes the job runs on",
                "Host list of the job in the scheduler's compressed form (nva[59-60])."),
    _job_metric("cpus", U32, INSTANT, COUNT, "cpus", "CPUs allocated or requested",
                "CPUs allocated to the job (requested, while pending)."),
    _job_metric("gpus", U32, INSTANT, COUNT, "gpus", "GPUs allocated or requested",
                "GPUs (GRES gpu / PBS ngpus) of the job; unavailable if it asked for none. "
                "Slurm with typed GPUs in AccountingStorageTRES (gres/gpu,gres/gpu:a100) lists "
                "each GPU twice in the job's TRES: the untyped total is taken, so each counts "
                "once."),
    _job_metric("memory", U64, INSTANT, BYTES, "memory", "memory allocated or requested",
                "Memory allocated to the job across all its nodes (Slurm allocated TRES mem; "
                "PBS Resource_List.mem), requested while pending."),
    _job_metric("submit_time", DOUBLE, DISCRETE, SEC, "submit_time", "submission time",
                "When the job was submitted, in seconds since the epoch."),
    _job_metric("start_time", DOUBLE, INSTANT, SEC, "start_time", "start time (expected, if pending)",
                "When the job started, in seconds since the epoch; for pending jobs Slurm's "
                "expected start if it has one."),
    _job_metric("end_time", DOUBLE, INSTANT, SEC, "end_time", "end time (expected, if running)",
                "When the job ended or is expected to end at its time limit, in "
                "seconds since the epoch; unavailable without a limit."),
    _job_metric("elapsed", U64, INSTANT, SEC, "elapsed", "run time so far",
                "Wall-clock seconds the job has run (excluding suspended time on Slurm)."),
    _job_metric("time_limit", U64, INSTANT, SEC, "time_limit", "wall-time limit",
                "The job's wall-time limit in seconds; unavailable when unlimited."),
    _job_metric("time_left", U64, INSTANT, SEC, "time_left", "time left before the limit",
                "Seconds until the job reaches its time limit; unavailable when unlimited."),
    _job_metric("pending_reason", STRING, INSTANT, NONE, "reason", "why the job is not running",
                "Slurm's Reason (Resources, Priority, BeginTime, JobHeldUser, ...) or PBS's "
                "comment for pending and held jobs; the end reason for finished Slurm jobs."),
    _job_metric("exit_code", I32, DISCRETE, NONE, "exit_code", "exit code of a finished job",
                "Exit code of the batch script of a finished job; unavailable until it ends. "
                "Read by squeue's format: Slurm 23.02 and later print 'exit:signal' (3:0), "
                "22.05 and older the raw wait status (768). PBS's negative codes mean PBS "
                "itself could not run the job."),
    _job_metric("exit_signal", U32, DISCRETE, NONE, "exit_signal", "signal that ended the job",
                "Signal number that killed the job (0 if it exited by itself); unavailable "
                "until it ends. Slurm 23.02 and later: the second half of 'exit:signal' (0:9); "
                "22.05 and older: from the raw wait status."),
    Metric("job.pending_time", U64, INSTANT, SEC, "seconds the job has been pending so far",
           "Time since submission of a job that is still pending or held; 0 once it has "
           "started or ended.  The alarm job.pending_too_long watches it.",
           _pending_time, indom="job"),
])

_NAMING = (" Slurm 26.05 names job cgroups by SLUID unless cgroup.conf sets CgroupJobIdPaths=yes: "
           "the job id is then read from the title of the job's slurmstepd, and a job cgroup "
           "with no step daemon left is not reported.")
_IO = ("Network file systems such as Lustre are not included. Needs the io controller in the "
       "job cgroup (v2 io.stat): Slurm before 25.05 enables every available controller, 25.05 "
       "and later only with EnableExtraControllers=io in cgroup.conf; without io.stat the "
       "value is unavailable, not 0. Slurm's cgroup/v1 plugin never creates blkio: unavailable "
       "there; PBS v1 from blkio.throttle.io_service_bytes where a blkio cgroup exists.")

USAGE = cluster(2, [
    Metric("job.cgroup.cpu_time", U64, COUNTER, NSEC, "CPU time used on this node",
           "User plus system CPU time of all the job's processes on this node, from its "
           "cgroup (v2 cpu.stat usage_usec, v1 cpuacct.usage)." + _NAMING, _usage("cpu_time"),
           indom="job"),
    Metric("job.cgroup.memory.current", U64, INSTANT, BYTES, "memory in use on this node",
           "Memory charged to the job's cgroup on this node now, page cache included "
           "(v2 memory.current, v1 memory.usage_in_bytes)." + _NAMING, _usage("memory"),
           indom="job"),
    Metric("job.cgroup.memory.peak", U64, INSTANT, BYTES, "peak memory on this node",
           "High-water mark of the job's cgroup memory on this node (v2 memory.peak, kernel "
           "5.19 and later; v1 memory.max_usage_in_bytes).", _usage("memory_peak"), indom="job"),
    Metric("job.cgroup.io.read_bytes", U64, COUNTER, BYTES, "bytes read from block devices",
           "Bytes the job read from block devices on this node (v2 io.stat rbytes). " + _IO,
           _usage("read_bytes"), indom="job"),
    Metric("job.cgroup.io.write_bytes", U64, COUNTER, BYTES, "bytes written to block devices",
           "Bytes the job wrote to block devices on this node (v2 io.stat wbytes). " + _IO,
           _usage("write_bytes"), indom="job"),
    Metric("job.cgroup.version", U32, DISCRETE, NONE, "cgroup version the usage came from",
           "1 or 2: which cgroup hierarchy the job's usage was read from.",
           _usage("version"), indom="job"),
])


def _partition_jobs(state: str) -> Metric:
    return Metric(f"partition.jobs.{state}", U32, INSTANT, COUNT, f"{state} jobs per partition",
                  f"Number of jobs in state '{state}' per partition or queue (cluster view). "
                  "Finished states count jobs the scheduler still lists.",
                  lambda s: ({p: c[state] for p, c in s.counts.by_partition.items()}
                             if s.counts else None), indom="partition")


def _partition_nodes(state: str) -> Metric:
    return Metric(f"partition.nodes.{state}", U32, INSTANT, COUNT, f"{state} nodes per partition",
                  f"Nodes in state '{state}' per partition (cluster view). A node in two "
                  "partitions counts in both.",
                  lambda s: ({p: n.nodes[state] for p, n in s.partitions.items()}
                             if s.partitions is not None else None), indom="partition")


def _partition_sum(name: str, attr: str, help_: str) -> Metric:
    return Metric(f"partition.{name}", U32, INSTANT, COUNT, help_,
                  f"{help_[0].upper()}{help_[1:]} over the partition's nodes (cluster view).",
                  lambda s: ({p: getattr(n, attr) for p, n in s.partitions.items()}
                             if s.partitions is not None else None), indom="partition")


def partition_metrics(job_items: Mapping[str, int], node_items: Mapping[str, int]) -> list[Metric]:
    """Cluster 3: jobs and nodes per state per partition, and the partitions' CPU/GPU sums."""
    return [
        *family(3, job_items, _partition_jobs),
        *family(3, node_items, _partition_nodes),
        *numbered(3, {
            19: _partition_sum("cpus.allocated", "cpus_allocated", "CPUs allocated to jobs"),
            20: _partition_sum("cpus.idle", "cpus_idle", "CPUs idle and usable"),
            21: _partition_sum("cpus.total", "cpus_total", "CPUs configured"),
            22: _partition_sum("gpus.allocated", "gpus_allocated", "GPUs allocated to jobs"),
            23: _partition_sum("gpus.total", "gpus_total", "GPUs configured"),
        }),
    ]


PARTITIONS = partition_metrics(pinned(JOB_STATES, PARTITION_JOB_ITEMS, "job state"),
                               pinned(NODE_STATES, PARTITION_NODE_ITEMS, "node state"))


def _tally(scope: str, attr: str, units, help_: str, long_help: str) -> Metric:
    type_ = U64 if units is BYTES else U32
    return Metric(f"{scope}.{attr.replace('_', '.')}", type_, INSTANT, units, f"{help_} per {scope}",
                  f"{long_help} per {scope} (cluster view).",
                  lambda s: ({k: getattr(t, attr) for k, t in getattr(s.counts, f"{scope}s").items()}
                             if s.counts else None), indom=scope)


_TALLIES = [  # Tally field, {scope: item}, units, one line, long help
    ("running", {"user": 1, "account": 6}, COUNT, "running jobs",
     "Jobs running, completing or suspended"),
    ("pending", {"user": 2, "account": 7}, COUNT, "pending jobs", "Jobs pending or held"),
    ("cpus", {"user": 3, "account": 8}, COUNT, "CPUs allocated", "CPUs allocated to running jobs"),
    ("gpus", {"user": 4, "account": 9}, COUNT, "GPUs allocated", "GPUs allocated to running jobs"),
    ("memory", {"user": 5, "account": 10}, BYTES, "memory allocated",
     "Memory allocated to running jobs"),
]

OWNERS = [
    *numbered(4, {0: Metric(
        "pending_reason.jobs", U32, INSTANT, COUNT, "pending jobs per reason",
        "Number of pending jobs (not held) per pending reason (cluster view).",
        lambda s: s.counts.pending_reasons if s.counts else None, indom="pending_reason")}),
    *numbered(4, ((items[scope], _tally(scope, attr, units, help_, long_help))
                  for scope in ("user", "account") for attr, items, units, help_, long_help in _TALLIES)),
]


def _nodes(state: str) -> Metric:
    return Metric(f"nodes.{state}", U32, INSTANT, COUNT, f"nodes in state {state}",
                  f"Distinct nodes in state '{state}' in the whole cluster (cluster view).",
                  lambda s: s.node_states[state] if s.node_states is not None else None)


def node_metrics(items: Mapping[str, int]) -> list[Metric]:
    """Cluster 5: distinct nodes per state over the whole cluster."""
    return family(5, items, _nodes)


NODES = node_metrics(pinned(NODE_STATES, NODE_ITEMS, "node state"))


def _stat(key: str) -> Callable[[Any], Any]:
    return lambda s: s.stats.get(key) if s.stats else None


_SDIAG = [  # item, name, sdiag key, semantics, units, one line, long help
    (3, "server_threads", "server_thread_count", INSTANT, COUNT, "slurmctld server threads",
     "Active slurmctld RPC threads; near the limit (256) the controller is saturated."),
    (4, "agent_queue", "agent_queue_size", INSTANT, COUNT, "outgoing RPCs queued",
     "slurmctld's queue of outgoing RPCs to slurmd; a growing queue means nodes are slow."),
    (5, "dbd_agent_queue", "dbd_agent_queue_size", INSTANT, COUNT, "messages queued for slurmdbd",
     "Messages waiting for slurmdbd; growth means accounting is falling behind."),
    (6, "jobs.submitted", "jobs_submitted", COUNTER, COUNT, "jobs submitted",
     "Jobs submitted since the statistics were last reset (midnight UTC or restart)."),
    (7, "jobs.started", "jobs_started", COUNTER, COUNT, "jobs started",
     "Jobs started since the statistics were last reset."),
    (8, "jobs.completed", "jobs_completed", COUNTER, COUNT, "jobs completed",
     "Jobs completed since the statistics were last reset."),
    (9, "jobs.canceled", "jobs_canceled", COUNTER, COUNT, "jobs cancelled",
     "Jobs cancelled since the statistics were last reset."),
    (10, "jobs.failed", "jobs_failed", COUNTER, COUNT, "jobs failed",
     "Jobs failed since the statistics were last reset."),
    (11, "main.cycle.last", "main.last_cycle", INSTANT, USEC, "last main scheduling cycle",
     "Duration of the last main scheduling cycle."),
    (12, "main.cycle.max", "main.max_cycle", INSTANT, USEC, "longest main scheduling cycle",
     "Longest main scheduling cycle since the statistics were reset."),
    (13, "main.cycle.mean", "main.mean_cycle", INSTANT, USEC, "mean main scheduling cycle",
     "Mean main scheduling cycle since the statistics were reset."),
    (14, "main.cycles", "main.total_cycles", COUNTER, COUNT, "main scheduling cycles",
     "Main scheduling cycles run since the statistics were reset."),
    (15, "main.queue_length", "main.last_queue_length", INSTANT, COUNT, "jobs in last main cycle",
     "Pending jobs the last main scheduling cycle looked at."),
    (16, "backfill.cycle.last", "backfill.last_cycle", INSTANT, USEC, "last backfill cycle",
     "Duration of the last backfill scheduling cycle."),
    (17, "backfill.cycle.max", "backfill.max_cycle", INSTANT, USEC, "longest backfill cycle",
     "Longest backfill scheduling cycle since the statistics were reset."),
    (18, "backfill.cycle.mean", "backfill.mean_cycle", INSTANT, USEC, "mean backfill cycle",
     "Mean backfill scheduling cycle since the statistics were reset."),
    (19, "backfill.cycles", "backfill.total_cycles", COUNTER, COUNT, "backfill cycles",
     "Backfill scheduling cycles run since the statistics were reset."),
    (20, "backfill.jobs", "backfill.total_backfilled_jobs_since_last_slurm_start", COUNTER, COUNT,
     "jobs started by backfill", "Jobs the backfill scheduler started since slurmctld started."),
    (21, "backfill.depth", "backfill.last_depth_cycle", INSTANT, COUNT, "jobs in last backfill cycle",
     "Jobs the last backfill cycle considered."),
]

_WRAPS = (" Deprecated: slurmctld sets it back to 0 every midnight UTC (also at its start and "
          "on 'sdiag -r'), which PCP takes for a counter wrap; use scheduler.since_reset.{name} "
          "with scheduler.stats_reset_time.")


def _sdiag(name: str, key: str, sem: str, units, help_: str, long_help: str) -> Metric:
    deprecated = _WRAPS.format(name=name) if sem == COUNTER else ""
    return Metric(f"scheduler.{name}", U64 if sem == COUNTER else U32, sem, units, help_,
                  long_help + " Slurm sdiag, cluster view." + deprecated, _stat(key))


# Item of each sdiag count as an instant since the last reset, by the item of the
# (deprecated) counter it replaces.
_SINCE_RESET_ITEMS = {6: 26, 7: 27, 8: 28, 9: 29, 10: 30, 14: 31, 19: 32, 20: 33}


def _since_reset(name: str, key: str, help_: str, long_help: str) -> Metric:
    when = ("since slurmctld started (or 'sdiag -r'), not reset at midnight"
            if name == "backfill.jobs" else
            "since slurmctld last reset its statistics (every midnight UTC, at its start, on "
            "'sdiag -r'): scheduler.stats_reset_time")
    return Metric(f"scheduler.since_reset.{name}", U64, INSTANT, COUNT,
                  f"{help_} since the statistics were reset",
                  f"{long_help.split(' since ')[0]} {when}. Instant, not a counter: the "
                  "daily reset is a drop, not a wrap; a rate over a reset is the value after "
                  "it. Slurm sdiag, cluster view.", _stat(key))


def _reset_time(s: Any) -> float | None:
    value = s.stats.get("stats_reset_time") if s.stats else None
    return float(value) if value is not None else None


SCHEDULER = [
    *numbered(6, {
        0: Metric("scheduler.reachable", U32, INSTANT, NONE,
                  "1 if the scheduler answered the job query",
                  "1 when the last refresh's job query (squeue or qstat) succeeded, 0 when the "
                  "controller was down, slow (timed out) or answered nonsense; see "
                  "agent.source.error. Also 1 when Slurm answered but its PrivateData=jobs "
                  "hides other users' jobs from the account the agent runs as (the pcp user "
                  "by default): the job metrics are then unavailable rather than a partial "
                  "list, and agent.source.error says so.", lambda s: int(s.reachable)),
        1: Metric("scheduler.response_time", DOUBLE, INSTANT, SEC, "time the job query took",
                  "Seconds the scheduler took to answer the last job query (squeue or qstat).",
                  lambda s: s.response_time),
        2: Metric("scheduler.kind", STRING, DISCRETE, NONE,
                  "which scheduler is asked (slurm or pbs)",
                  "The back end in use: slurm or pbs (from the scheduler option, or detected).",
                  lambda s: s.scheduler),
    }),
    *numbered(6, ((item, _sdiag(*row)) for item, *row in _SDIAG)),
    *numbered(6, {
        22: Metric("scheduler.jobs.pending", U32, INSTANT, COUNT, "pending jobs per the scheduler",
                   "Pending (queued) jobs as the scheduler itself counts them (sdiag; PBS "
                   "state_count).",
                   lambda s: (s.stats.get("jobs_pending",
                                          (s.stats.get("state_count") or {}).get("queued"))
                              if s.stats else None)),
        23: Metric("scheduler.jobs.running", U32, INSTANT, COUNT, "running jobs per the scheduler",
                   "Running jobs as the scheduler itself counts them (sdiag; PBS state_count).",
                   lambda s: (s.stats.get("jobs_running",
                                          (s.stats.get("state_count") or {}).get("running"))
                              if s.stats else None)),
        24: Metric("scheduler.server_state", STRING, INSTANT, NONE, "PBS server state",
                   "PBS server_state from qstat -Bf (Active, Idle, Scheduling, Hot_Start, ...).",
                   lambda s: s.stats.get("server_state") if s.stats else None),
        25: Metric("scheduler.stats_reset_time", DOUBLE, INSTANT, SEC,
                   "when slurmctld last reset its statistics",
                   "sdiag's 'Data since', in seconds since the epoch: slurmctld resets its "
                   "statistics at its start, on 'sdiag -r' and every midnight UTC (all Slurm "
                   "versions, 22.05 to 26.05). A new value flags a reset of the "
                   "scheduler.since_reset.* counts. Slurm sdiag, cluster view.", _reset_time),
    }),
    *numbered(6, ((_SINCE_RESET_ITEMS[item], _since_reset(name, key, help_, long_help))
                  for item, name, key, sem, _units, help_, long_help in _SDIAG
                  if item in _SINCE_RESET_ITEMS)),
]

METRICS = [*JOB, *USAGE, *PARTITIONS, *OWNERS, *NODES, *SCHEDULER]
