"""Metric table, part two: OST/MDT servers, per-job I/O, LNet and the agent's own counters.

Families generated from data (per-job fields, MDT ops, LNet fields) carry an explicit
PMID item per member, so adding one moves no other metric.
"""
from __future__ import annotations

from typing import Any

from pmdas.common.table import (
    BYTES,
    BYTES_PER_SEC,
    COUNT,
    COUNT_PER_SEC,
    COUNTER,
    DISCRETE,
    DOUBLE,
    INSTANT,
    KBYTES,
    NONE,
    SEC,
    STRING,
    U32,
    U64,
    USEC,
    Indom,
    Metric,
    cluster,
    numbered,
)

from .jobs import OTHER
from .ops import SUM_RULE, counts_once
from .parsers import RECOVERY_STATES


def _target_labels(s: Any) -> dict[str, dict[str, str]]:
    return {n: {"filesystem": t.filesystem, "target": n, "type": t.kind} for n, t in s.targets.items()}


def _target_ops(s: Any) -> dict[str, dict[str, str]]:
    return {f"{n}::{op}": {"filesystem": t.filesystem, "target": n, "type": t.kind, "op": op}
            for n, t in s.targets.items() if t.stats for op in t.stats if not op.endswith("_bytes")}


SERVER_INDOMS = [
    Indom("server.target", 6, "OSTs and MDTs served by this node",
          "One instance per local Lustre target (OST or MDT), named like scratch-OST0002, with "
          "labels filesystem, target and type (ost/mdt).", _target_labels),
    Indom("server.target.op", 7, "operation types per OST/MDT",
          "One instance per operation counted in an OST's stats or an MDT's md_stats (punch, "
          "setattr, open, getattr...), named <target>::<op>.", _target_ops),
    Indom("job", 8, "jobs doing I/O per filesystem",
          "One instance per job seen in the job_stats of this node's OSTs and MDTs, per "
          "filesystem. Ids of the usual Slurm forms (24, 24.1, SLURM_JOB24, 24:uid:host from "
          "jobid_name=%j:%u:%H) are summed into their job, named <filesystem>/<job> "
          "(scratch/24: every client node and step of job 24; the name is the job id of "
          "hpc.job.*, so dashboards find a job by name) with labels jobid and job, and user "
          "when its ids agree on it; other ids are named <filesystem>/<raw id>. With "
          "job_by_host each raw id is its own instance, labelled job, step, user and host. "
          "Only the top job_limit jobs by bytes moved "
          f"are exported; the rest are summed in <filesystem>/{OTHER}.",
          lambda s: s.jobs.labels if s.jobs else {}),
]


def _has_line(t: Any, op: str) -> bool:
    """Whether the target's version prints ``op`` (so a missing line means zero).

    OSTs count bulk bytes in every version; MDTs only from 2.12 (Data-on-MDT), so
    on an older or unknown MDT a missing read_bytes/write_bytes is unavailable."""
    if t.kind == "mdt" and op.endswith("_bytes"):
        return t.version is not None and t.version >= (2, 12)
    return True


def _stat(op: str, part: str, unit: str | None = None):
    def value(s: Any) -> dict[str, int]:
        out = {}
        for n, t in s.targets.items():
            if not t.stats:
                continue
            c = t.stats.get(op)
            if c is None:
                if _has_line(t, op):
                    out[n] = 0      # zero-count lines are not printed
                continue
            if unit is not None and c.unit != unit:
                continue
            v = c.samples if part == "samples" else c.total
            if v is not None:
                out[n] = v
        return out
    return value


def _wanted(c: Any, part: str) -> bool:
    return part == "samples" or (c.unit == "usecs" and c.total is not None)


def _op(part: str):
    def value(s: Any) -> dict[str, int]:
        return {f"{n}::{op}": (c.samples if part == "samples" else c.total)
                for n, t in s.targets.items() if t.stats for op, c in t.stats.items()
                if not op.endswith("_bytes") and _wanted(c, part)}
    return value


def _ops_total(s: Any) -> dict[str, int]:
    return {n: sum(c.samples for op, c in t.stats.items() if counts_once(op))
            for n, t in s.targets.items() if t.stats is not None}


def _capacity(item: str):
    return lambda s: {n: t.capacity[item] for n, t in s.targets.items() if item in t.capacity}


def _recovery(fn):
    return lambda s: {n: v for n, t in s.targets.items() if t.recovery is not None
                      and (v := fn(t.recovery)) is not None}


def _job(field: str):
    return lambda s: {n: v[field] for n, v in s.jobs.values.items() if field in v} if s.jobs else {}


def _server_metrics() -> list[Metric]:
    t = "server.target"
    return [
        Metric(f"{t}.read.bytes", U64, COUNTER, BYTES, "bytes read from the OST by clients",
               "Bytes clients read from this OST (obdfilter stats read_bytes sum); on MDTs, "
               "Data-on-MDT reads (md_stats read_bytes, 2.12 and later; unavailable on 2.10 "
               "MDTs and on MDTs whose version file cannot be read).",
               _stat("read_bytes", "sum"), indom=t),
        Metric(f"{t}.write.bytes", U64, COUNTER, BYTES, "bytes written to the OST by clients",
               "Bytes clients wrote to this OST (obdfilter stats write_bytes sum).",
               _stat("write_bytes", "sum"), indom=t),
        Metric(f"{t}.read.count", U64, COUNTER, COUNT, "bulk read requests served",
               "Number of bulk read requests served (read_bytes samples).",
               _stat("read_bytes", "samples"), indom=t),
        Metric(f"{t}.write.count", U64, COUNTER, COUNT, "bulk write requests served",
               "Number of bulk write requests served (write_bytes samples).",
               _stat("write_bytes", "samples"), indom=t),
        Metric(f"{t}.ops", U64, COUNTER, COUNT, "operations served (all types but bulk I/O)",
               "Sum of the operation lines of the target's stats (OST) or md_stats (MDT): the "
               f"target's request load besides bulk reads and writes. {SUM_RULE} What is left: "
               "on MDTs open, close, mknod, link, unlink, mkdir, rmdir, rename, getattr, "
               "setattr, getxattr, setxattr, statfs, sync, plus punch (2.12+), migrate (2.14+), "
               "fallocate (2.15+); on OSTs getattr, setattr, punch, sync, destroy, create, "
               "statfs, get_info, set_info, quotactl, plus prealloc (2.14+), and on 2.10 also "
               "the generic OBD-operation lines (connect, reconnect, disconnect, ping, "
               "set_info_async...). See server.target.op.count for every line.",
               _ops_total, indom=t),
        Metric(f"{t}.op.count", U64, COUNTER, COUNT, "operations served, per type",
               "Number of operations of each type (open, close, getattr, punch, setattr...) the "
               "target served (stats/md_stats samples).", _op("samples"), indom="server.target.op"),
        Metric(f"{t}.op.time", U64, COUNTER, USEC, "time spent serving each operation type",
               "Microseconds the target spent serving each operation type ([usecs] sum). Lustre "
               "times server operations from 2.14 (OST stats, MDT md_stats); 2.10-2.13 print "
               "plain counts ([reqs]), so it is unavailable there.",
               _op("sum"), indom="server.target.op"),
        Metric(f"{t}.kbytes.total", U64, INSTANT, KBYTES, "size of the target",
               "Total space of the target's backing filesystem (kbytestotal).",
               _capacity("kbytestotal"), indom=t),
        Metric(f"{t}.kbytes.free", U64, INSTANT, KBYTES, "free space on the target",
               "Free space on the target including reserved blocks (kbytesfree).",
               _capacity("kbytesfree"), indom=t),
        Metric(f"{t}.kbytes.avail", U64, INSTANT, KBYTES, "space available to clients",
               "Space clients can still use on the target (kbytesavail): what 'lfs df' shows "
               "as available.", _capacity("kbytesavail"), indom=t),
        Metric(f"{t}.files.total", U64, INSTANT, COUNT, "inodes (objects) on the target",
               "Total inodes/objects the target can hold (filestotal).", _capacity("filestotal"), indom=t),
        Metric(f"{t}.files.free", U64, INSTANT, COUNT, "free inodes on the target",
               "Inodes/objects still free on the target (filesfree). An MDT running out of "
               "inodes stops file creation before space runs out.", _capacity("filesfree"), indom=t),
        Metric(f"{t}.recovery.status", STRING, INSTANT, NONE, "recovery status word",
               "The 'status:' line of recovery_status: COMPLETE, RECOVERING, WAITING_FOR_CLIENTS, "
               "INACTIVE. INACTIVE means the target had no recoverable clients when it started "
               "(a new filesystem, or every client unmounted cleanly): it stays INACTIVE until "
               "the target restarts, and is not a fault.", _recovery(lambda r: r.status), indom=t),
        Metric(f"{t}.recovery.state", U32, INSTANT, NONE, "recovery status as a number",
               "0 COMPLETE, 1 INACTIVE, 2 WAITING(_FOR_CLIENTS), 3 RECOVERING, 9 unknown word: "
               "for alarms and graphs. 2 or 3 after a restart until clients reconnect. 1 "
               "(INACTIVE) is permanent on a target that had no recoverable clients when it "
               "started (new filesystem, clean unmounts) and is harmless: alarm on 2 and 3.",
               _recovery(lambda r: RECOVERY_STATES.get(r.status, 9)), indom=t),
        Metric(f"{t}.recovery.connected_clients", U32, INSTANT, COUNT, "clients reconnected so far",
               "During recovery: clients that have reconnected (connected_clients numerator).",
               _recovery(lambda r: r.connected_clients), indom=t),
        Metric(f"{t}.recovery.completed_clients", U32, INSTANT, COUNT, "clients that finished recovery",
               "Clients that completed recovery (completed_clients).",
               _recovery(lambda r: r.completed_clients), indom=t),
        Metric(f"{t}.recovery.total_clients", U32, INSTANT, COUNT, "clients expected in recovery",
               "Clients the target expects back (the denominator of connected/completed_clients).",
               _recovery(lambda r: r.total_clients), indom=t),
        Metric(f"{t}.recovery.time_remaining", U32, INSTANT, SEC, "seconds left in the recovery window",
               "Seconds before the recovery window closes and missing clients are evicted.",
               _recovery(lambda r: r.time_remaining), indom=t),
        Metric(f"{t}.job_stats.entries", U32, INSTANT, COUNT, "job entries in the target's job_stats",
               "Job entries now held in the target's job_stats (before the job_limit cap). "
               "Unavailable when job_stats is missing (disabled or not supported); 0 when it "
               "is enabled but empty (jobid_var=disable on clients, or no recent I/O).",
               lambda s: {n: v for n, v in s.job_entries.items() if v is not None}, indom=t),
        Metric("healthy", U32, INSTANT, NONE, "1 if Lustre's health_check says healthy",
               "1 when health_check reads 'healthy', 0 on 'NOT HEALTHY' (a device reported "
               "unhealthy) or after an LBUG: the node needs attention.",
               lambda s: None if s.healthy is None else int(s.healthy)),
    ]


_JOB_HELP = {  # job_stats field → (item in cluster 3, units, one line, long help)
    "read_bytes": (0, BYTES, "bytes read by the job", "Bytes the job read from this filesystem's "
                   "targets on this node (job_stats read_bytes sums over OSTs and MDTs)."),
    "write_bytes": (1, BYTES, "bytes written by the job", "Bytes the job wrote to this filesystem's "
                    "targets on this node (job_stats write_bytes sums)."),
    "read_ops": (2, COUNT, "read requests of the job", "Bulk read requests (read_bytes samples)."),
    "write_ops": (3, COUNT, "write requests of the job", "Bulk write requests (write_bytes samples)."),
    "read_usecs": (4, USEC, "time serving the job's reads", "Microseconds spent serving the job's "
                   "reads (job_stats 'read' [usecs] sum): OST job_stats time reads from 2.14, "
                   "MDT ones (Data-on-MDT) from 2.15; unavailable on 2.10-2.13 and until some "
                   "job's entry has a read or write line."),
    "write_usecs": (5, USEC, "time serving the job's writes", "Microseconds spent serving the job's "
                    "writes (job_stats 'write' [usecs] sum): OSTs from 2.14, MDTs from 2.15; "
                    "unavailable on 2.10-2.13."),
    "ost_ops": (6, COUNT, "other OST requests of the job", "OST requests other than bulk reads and "
                "writes (punch, setattr, getattr, sync, statfs, destroy, create, get_info, "
                "set_info, quotactl; prealloc from 2.14). The 2.14+ 'read'/'write' timing lines "
                "count the bulk I/O again and are left out."),
    "mdt_ops": (7, COUNT, "metadata requests of the job", "Metadata requests the MDTs served for "
                f"the job, each once. {SUM_RULE} A job with many metadata ops and few bytes is a "
                "metadata storm."),
}
# MDT ops counted per job → item in cluster 3.  Items 17-21 are the job totals below; a
# new field or op takes the next unused item: 23.
_JOB_METADATA = {"open": 8, "close": 9, "mknod": 10, "unlink": 11, "getattr": 12, "setattr": 13,
                 "rename": 14, "mkdir": 15, "rmdir": 16}
_JOB_NAMES = {"read_bytes": "read.bytes", "write_bytes": "write.bytes", "read_ops": "read.count",
              "write_ops": "write.count", "read_usecs": "read.time", "write_usecs": "write.time",
              "ost_ops": "ost.ops", "mdt_ops": "mdt.ops"}


def _job_metrics() -> list[Metric]:
    """Cluster 3, every member at an explicit item."""
    m = []
    for field, (item, units, short, long) in _JOB_HELP.items():
        m += numbered(3, {item: Metric(
            f"job.{_JOB_NAMES[field]}", U64, COUNTER, units, short,
            f"{long} Summed over the local targets of each filesystem; kept monotonic across "
            f"target restarts and entry expiry: a job idle for job_cleanup_interval (600 s by "
            f"default) loses its entries and comes back from zero; its totals are kept for "
            f"job_memory seconds (default one day) and go on from there. A job that returns "
            f"later starts again from its new values (counted in job.forgotten).",
            _job(field), indom="job")})
    for op, item in _JOB_METADATA.items():
        m += numbered(3, {item: Metric(
            f"job.mdt.{op}", U64, COUNTER, COUNT, f"MDT {op} requests of the job",
            f"Number of '{op}' requests the MDTs of the filesystem served for the job.",
            _job(op), indom="job")})
    m += numbered(3, dict(enumerate([
        Metric("job.tracked", U32, INSTANT, COUNT, "jobs seen in job_stats (before the cap)",
               "Distinct (filesystem, job id) pairs in this node's job_stats at the last refresh.",
               lambda s: s.jobs.tracked if s.jobs else None),
        Metric("job.folded", U32, INSTANT, COUNT, "jobs summed into the [other] buckets",
               "Jobs beyond job_limit, whose I/O is reported in the <filesystem>/[other] instance.",
               lambda s: s.jobs.dropped if s.jobs else None),
        Metric("job.limit", U32, DISCRETE, COUNT, "configured job_limit",
               "Most job instances exported (the job_limit setting).", lambda s: s.job_limit),
        Metric("job.io_rate", DOUBLE, INSTANT, BYTES_PER_SEC, "read plus write bytes per second",
               "The job's read plus write bytes on this filesystem's local targets per second, over "
               "the last refresh interval (the agent's own rate: it stays defined while other jobs "
               "come and go, which a client-side rate over a changing instance set does not). "
               "Unavailable until the second refresh.", _job_rate("io_bytes"), indom="job"),
        Metric("job.mdt.ops_rate", DOUBLE, INSTANT, COUNT_PER_SEC, "metadata operations per second",
               "The job's MDT operations per second over the last refresh interval, on nodes with "
               "an MDT. Unavailable until the second refresh.", _job_rate("mdt_ops"), indom="job"),
        Metric("job.forgotten", U64, COUNTER, COUNT, "jobs whose totals were dropped while absent",
               "Jobs whose entries had expired on every target and whose totals the agent "
               "dropped after job_memory seconds (or to keep at most 100,000 absent jobs). "
               "Should such a job id do I/O again, its per-job counters start again from the "
               "new job_stats values: a counter reset for that instance, flagged here.",
               lambda s: s.jobs.forgotten if s.jobs else None),
    ], start=17)))
    return m


def _job_rate(kind: str):
    return lambda s: {n: r[kind] for n, r in s.jobs.rates.items() if kind in r} if s.jobs else {}


# LNet stats field → (item in cluster 4, metric name, units, one line); items 0-1 are
# msgs_alloc and msgs_max, a new field takes the next unused item: 12 (11 is lnet.wraps).
_LNET = [("errors", 2, "errors", COUNT, "LNet message errors"),
         ("send_count", 3, "send.count", COUNT, "messages sent"),
         ("recv_count", 4, "recv.count", COUNT, "messages received"),
         ("route_count", 5, "route.count", COUNT, "messages routed (LNet routers)"),
         ("drop_count", 6, "drop.count", COUNT, "messages dropped"),
         ("send_length", 7, "send.bytes", BYTES, "bytes sent"),
         ("recv_length", 8, "recv.bytes", BYTES, "bytes received"),
         ("route_length", 9, "route.bytes", BYTES, "bytes routed"),
         ("drop_length", 10, "drop.bytes", BYTES, "bytes dropped")]


def _lnet_metrics() -> list[Metric]:
    """Cluster 4: items 0-1 by position, then each LNet field at its item."""
    m = cluster(4, [Metric("lnet.msgs_alloc", U32, INSTANT, COUNT, "LNet messages allocated now",
                "LNet message descriptors in use: messages being sent or received right now.",
                lambda s: (s.lnet or {}).get("msgs_alloc")),
         Metric("lnet.msgs_max", U32, INSTANT, COUNT, "sum of per-CPU-partition peaks of msgs_alloc",
                "LNet's msgs_max: each CPU partition (CPT) keeps its own high-water mark of "
                "allocated messages and LNet prints their sum (all versions 2.10-2.16). The "
                "partitions peak at different moments, so this is an upper bound on the peak "
                "number of messages allocated at once, not the peak itself; it only grows "
                "until LNet restarts or its stats are cleared.",
                lambda s: (s.lnet or {}).get("msgs_max"))])
    for key, item, name, units, short in _LNET:
        width = ("a 32-bit counter in LNet: its wraps at 2^32 are counted (see lnet.wraps), "
                 "not taken for restarts" if units is COUNT else "64 bits wide in LNet")
        m += numbered(4, {item: Metric(
            f"lnet.{name}", U64, COUNTER, units, f"LNet: {short}",
            f"LNet {short} on this node since LNet started (the '{key}' field of LNet stats; "
            f"{width}). Drops usually mean a dead peer or router.",
            lambda s, k=key: (s.lnet or {}).get(k))})
    m += numbered(4, {11: Metric(
        "lnet.wraps", U64, COUNTER, COUNT, "wraps of LNet's 32-bit message counters",
        "Times one of LNet's 32-bit counters (errors, send/recv/route/drop counts) passed 2^32 "
        "and started again from 0; the agent adds 2^32 for each so lnet.*.count keep growing. "
        "A counter that goes down is taken for a wrap when it was at 2^31 or more and is now "
        "below, and no 64-bit byte counter went down in the same refresh; otherwise it is a "
        "restart or a clear (lnet stats written), which zeroes all of them and is counted in "
        "counter_resets. Two wraps within one refresh interval cannot be seen.",
        lambda s: s.lnet_wraps if s.lnet is not None else None)})
    return m


def _agent_metrics() -> list[Metric]:
    return [
        Metric("counter_resets", U64, COUNTER, COUNT, "Lustre counters seen going backwards",
               "Times a Lustre counter went down between refreshes (target restart, failover, "
               "stats cleared). The agent keeps its exported counters monotonic by counting on "
               "from the new value; the increase during the restart itself is lost.",
               lambda s: s.resets),
        Metric("last_counter_reset", STRING, INSTANT, NONE, "the last counter seen going backwards",
               "Which counter went backwards most recently, from what to what; empty if none.",
               lambda s: s.last_reset),
    ]


SERVER_METRICS = [
    *cluster(2, _server_metrics()),
    *_job_metrics(),
    *_lnet_metrics(),
    *cluster(5, _agent_metrics()),
]
