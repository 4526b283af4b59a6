"""Metric table of the Lustre agent: instance domains and the client-side metrics.

Server, job and LNet metrics are in metrics_server.py; both lists are joined
here.  PMIDs never change (archives record them): hand-written lists are numbered
by position and append-only; families generated from data (llite ops, rpc_stats
sections) carry an explicit item per member, so a new op moves nothing.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from itertools import chain
from operator import attrgetter
from typing import Any

from pmdas.common.table import (
    BYTES,
    COUNT,
    COUNTER,
    INSTANT,
    U32,
    U64,
    USEC,
    Column,
    Indom,
    Metric,
    cluster,
    numbered,
)

from .metrics_server import SERVER_INDOMS, SERVER_METRICS

# llite stats counters across 2.10–2.15 → (PMID items of client.<op>.count and
# client.<op>.time in cluster 0, what one event is).  read_bytes and write_bytes are
# exported as client.read.* / client.write.* (items 0-5) instead.  A new op takes the
# next unused items: 70 and 71.
LLITE_OPS = {
    "ioctl": (6, 7, "ioctl() calls on Lustre files"),
    "open": (8, 9, "file opens"),
    "close": (10, 11, "file closes"),
    "mmap": (12, 13, "mmap() calls"),
    "page_fault": (14, 15, "page faults on memory-mapped Lustre files"),
    "page_mkwrite": (16, 17, "first writes to memory-mapped pages"),
    "seek": (18, 19, "lseek() calls"),
    "fsync": (20, 21, "fsync()/fdatasync() calls"),
    "readdir": (22, 23, "directory reads"),
    "setattr": (24, 25, "attribute changes (chmod, chown, utimes)"),
    "truncate": (26, 27, "truncates"),
    "flock": (28, 29, "flock()/fcntl() lock requests"),
    "getattr": (30, 31, "attribute lookups (stat)"),
    "fallocate": (32, 33, "fallocate() calls"),
    "create": (34, 35, "file creations"),
    "link": (36, 37, "hard links created"),
    "unlink": (38, 39, "files removed"),
    "symlink": (40, 41, "symbolic links created"),
    "mkdir": (42, 43, "directories created"),
    "rmdir": (44, 45, "directories removed"),
    "mknod": (46, 47, "device/FIFO nodes created"),
    "rename": (48, 49, "renames"),
    "statfs": (50, 51, "statfs() calls (df)"),
    "alloc_inode": (52, 53, "inodes allocated in the client cache"),
    "setxattr": (54, 55, "extended attributes set"),
    "getxattr": (56, 57, "extended attribute lookups"),
    "getxattr_hits": (58, 59, "extended attribute lookups answered from the client cache"),
    "listxattr": (60, 61, "extended attribute listings"),
    "removexattr": (62, 63, "extended attributes removed"),
    "inode_permission": (64, 65, "permission checks"),
    "opencount": (66, 67, "opens counted for open-close statistics"),
    "openclosetime": (68, 69, "open-to-close intervals measured"),
}
# llite lines that only some versions have, as (first, last) (major, minor) versions
# (lustre/llite/lproc_llite.c, 2.10-2.16); every other op of LLITE_OPS is in all of them.
# A missing line of an op this version has means zero (Lustre leaves zero counts out);
# of an op it does not have, or on a client whose version is unknown, unavailable.
LLITE_VERSIONS = {
    "fallocate": ((2, 14), None),
    "opencount": ((2, 15), None),
    "openclosetime": ((2, 15), None),
    "alloc_inode": (None, (2, 13)),
}


# llite ops counted but never timed, in every version (LPROCFS_TYPE_REQS in 2.14+).
UNTIMED = ("ioctl", "getxattr_hits")
UNTIMED_NOTE = "; this op stays untimed ([reqs]) in 2.14 and later too"


def _versions_text(op: str) -> str:
    first, last = LLITE_VERSIONS.get(op, (None, None))
    if first is not None:
        return f" Counted from Lustre {first[0]}.{first[1]}: unavailable on older versions."
    if last is not None:
        return f" Counted up to Lustre {last[0]}.{last[1]}: unavailable on later versions."
    return ""


def llite_counts(op: str, version: tuple[int, int] | None) -> bool:
    """Whether a client of ``version`` has a stats line for ``op`` (so missing means zero)."""
    first, last = LLITE_VERSIONS.get(op, (None, None))
    if first is None and last is None:
        return True
    if version is None:
        return False
    return (first is None or version >= first) and (last is None or version <= last)


# rpc_stats sections → (metric word, indom, instance label, PMID items of the read
# and write histograms in cluster 1; a new section takes the next unused: 18 and 19).
RPC_SECTIONS = {
    "pages per rpc": ("pages", "client.target.pages_per_rpc", "pages", 12, 13),
    "rpcs in flight": ("in_flight", "client.target.in_flight", "in_flight", 14, 15),
    "offset": ("offset", "client.target.offset", "offset", 16, 17),
}


# A client with thousands of OSCs has hundreds of thousands of per-RPC-type and
# histogram-bucket instances.  Their names, labels and values are built once per snapshot,
# in one pass, and shared (as Columns) by the instance domain and its metrics.

def _shared(s: Any, key: tuple, make: Callable[[Any], Any]) -> Any:
    """``make(s)``, computed once per snapshot."""
    memo = getattr(s, "memo", None)
    if memo is None:
        return make(s)
    value = memo.get(key)
    if value is None:
        value = memo[key] = make(s)
    return value


def _device_labels(s: Any) -> dict[str, dict[str, str]]:
    return {n: {"filesystem": d.filesystem, "target": d.target, "type": d.kind}
            for n, d in s.devices.items()}


@lru_cache(maxsize=1 << 17)
def _instances_of(device: str, filesystem: str, target: str, kind: str, label: str,
                  keys: tuple) -> tuple[list[str], list[dict[str, Any]]]:
    """Names and labels of one device's instances (one per op or bucket in ``keys``).

    Cached: they are the same every refresh, and the same label objects let the PCP glue
    see at once that nothing changed.  Callers must not modify them.
    """
    return ([f"{device}::{key}" for key in keys],
            [{"filesystem": filesystem, "target": target, "type": kind, label: key} for key in keys])


def _op_table(s: Any) -> tuple[tuple, tuple, tuple, tuple]:
    """(instance names, labels, samples, [usecs] sums or None) of every OSC/MDC RPC type."""
    names, labels, counters = [], [], []
    for n, d in s.devices.items():
        ops = tuple(op for op in d.stats if not op.endswith("_bytes"))
        more_names, more_labels = _instances_of(n, d.filesystem, d.target, d.kind, "op", ops)
        names += more_names
        labels += more_labels
        counters += map(d.stats.__getitem__, ops)
    return (tuple(names), tuple(labels), tuple(map(attrgetter("samples"), counters)),
            tuple(c.total if _wanted(c, "sum") else None for c in counters))


def _device_ops(s: Any) -> dict[str, dict[str, str]]:
    names, labels, _samples, _sums = _shared(s, ("ops",), _op_table)
    return dict(zip(names, labels, strict=True))


def _hist_table(section: str, label: str):
    """(instance names, labels, read counts, write counts) of one rpc_stats histogram."""
    def table(s: Any) -> tuple[tuple, tuple, tuple, tuple]:
        names, labels, counts = [], [], []
        for n, d in s.devices.items():
            buckets = d.rpc.histograms.get(section) if d.rpc is not None else None
            if not buckets:
                continue
            more_names, more_labels = _instances_of(n, d.filesystem, d.target, d.kind, label,
                                                    tuple(buckets))
            names += more_names
            labels += more_labels
            counts.append(chain.from_iterable(buckets.values()))
        flat = tuple(chain.from_iterable(counts))
        return tuple(names), tuple(labels), flat[0::2], flat[1::2]
    return lambda s: _shared(s, ("hist", section), table)


def _hist_instances(section: str, label: str):
    table = _hist_table(section, label)

    def instances(s: Any) -> dict[str, dict[str, Any]]:
        names, labels, _reads, _writes = table(s)
        return dict(zip(names, labels, strict=True))
    return instances


INDOMS = [
    Indom("client.fs", 0, "mounted Lustre filesystems",
          "One instance per Lustre filesystem mounted on this client (named by the filesystem; "
          "by the full llite device name if one filesystem is mounted twice).",
          lambda s: {fs: {"filesystem": fs} for fs in s.filesystems}),
    Indom("client.target", 1, "OSC and MDC devices of this client",
          "One instance per client connection to an OST (osc) or MDT (mdc), named by the target, "
          "e.g. scratch-OST0003, with labels filesystem, target and type.", _device_labels),
    Indom("client.target.op", 2, "RPC types per OSC/MDC",
          "One instance per RPC type (ost_write, mds_getattr, ldlm_enqueue...) counted in an "
          "OSC's or MDC's stats, named <target>::<rpc type>.", _device_ops),
    Indom("client.target.pages_per_rpc", 3, "pages-per-RPC buckets per OSC/MDC",
          "rpc_stats 'pages per rpc' histogram buckets, named <target>::<pages>. Large buckets "
          "(256, 1024 pages) mean full-size bulk RPCs; many small ones point at small or "
          "unaligned I/O.", _hist_instances("pages per rpc", "pages")),
    Indom("client.target.in_flight", 4, "RPCs-in-flight buckets per OSC/MDC",
          "rpc_stats 'rpcs in flight' histogram buckets, named <target>::<count>: how many RPCs "
          "were in flight when each RPC was sent, counting the RPC itself (Lustre counts it "
          "after adding it: bucket 1 means it was the only one, never 0).",
          _hist_instances("rpcs in flight", "in_flight")),
    Indom("client.target.offset", 5, "file-offset buckets per OSC/MDC",
          "rpc_stats 'offset' histogram buckets, named <target>::<pages>: the offset (in pages) "
          "of each RPC within its object; shows how sequential the I/O is.",
          _hist_instances("offset", "offset")),
    *SERVER_INDOMS,
]


def _filesystems_with_unit(unit: str) -> Callable[[Any], frozenset[str]]:
    """The filesystems whose llite stats have some line in ``unit`` (asked by 60 metrics)."""
    return lambda s: frozenset(fs for fs, stats in s.filesystems.items()
                               if any(c.unit == unit for c in stats.values()))


def _fs_stat(op: str, part: str, unit: str | None = None):
    """Extractor: one column of one llite counter for every filesystem.

    Lustre omits lines whose count is zero, so a missing line reads as 0 when
    this version has the line (llite_counts), else it is unavailable; a time (unit
    usecs) reads as 0 only if this version times operations at all (some line is
    in [usecs], 2.14+), else it is unavailable (2.10-2.13 print plain counts).
    """
    def value(s: Any) -> dict[str, int]:
        out = {}
        timed = _shared(s, ("units", unit), _filesystems_with_unit(unit)) if unit is not None else None
        counted = llite_counts(op, getattr(s, "client_version", None))
        for fs, stats in s.filesystems.items():
            c = stats.get(op)
            if c is None:
                if counted and (timed is None or fs in timed):
                    out[fs] = 0
                continue
            if unit is not None and c.unit != unit:
                continue
            v = c.samples if part == "samples" else c.total
            if v is not None:
                out[fs] = v
        return out
    return value


def _client_metrics() -> list[Metric]:
    """Cluster 0: items 0-5 by position, then each llite op at the items LLITE_OPS gives it."""
    m = cluster(0, [
        Metric("client.read.bytes", U64, COUNTER, BYTES, "bytes read by applications",
               "Bytes returned by read() and similar calls on this client's Lustre files "
               "(llite read_bytes sum). Page-cache hits count too, so it can exceed OSC traffic.",
               _fs_stat("read_bytes", "sum"), indom="client.fs"),
        Metric("client.write.bytes", U64, COUNTER, BYTES, "bytes written by applications",
               "Bytes passed to write() and similar calls on this client's Lustre files "
               "(llite write_bytes sum), before client caching and RPC aggregation.",
               _fs_stat("write_bytes", "sum"), indom="client.fs"),
        Metric("client.read.count", U64, COUNTER, COUNT, "read calls",
               "Number of read calls on this filesystem (llite read_bytes samples). Bytes per "
               "call = read.bytes / read.count; small values mean small reads.",
               _fs_stat("read_bytes", "samples"), indom="client.fs"),
        Metric("client.write.count", U64, COUNTER, COUNT, "write calls",
               "Number of write calls on this filesystem (llite write_bytes samples).",
               _fs_stat("write_bytes", "samples"), indom="client.fs"),
        Metric("client.read.time", U64, COUNTER, USEC, "time spent in reads (2.14+)",
               "Microseconds spent in read calls (llite 'read' [usecs] sum). Divide its rate by "
               "the rate of read.count for the mean read latency. Lustre times llite operations "
               "from 2.14; unavailable on 2.10-2.13 (their llite stats print plain counts, "
               "'[regs]').",
               _fs_stat("read", "sum", "usecs"), indom="client.fs"),
        Metric("client.write.time", U64, COUNTER, USEC, "time spent in writes (2.14+)",
               "Microseconds spent in write calls (llite 'write' [usecs] sum). Unavailable on "
               "2.10-2.13 (no timings before 2.14).",
               _fs_stat("write", "sum", "usecs"), indom="client.fs"),
    ])
    for op, (count_item, time_item, what) in LLITE_OPS.items():
        m += numbered(0, {count_item: Metric(
            f"client.{op}.count", U64, COUNTER, COUNT, f"llite {op}: {what}",
            f"Number of {what} on this Lustre filesystem since it was mounted (llite stats "
            f"'{op}' samples). A missing line reads 0 (Lustre leaves zero counts out) on "
            f"versions that have it.{_versions_text(op)}",
            _fs_stat(op, "samples"), indom="client.fs")})
        m += numbered(0, {time_item: Metric(
            f"client.{op}.time", U64, COUNTER, USEC, f"llite {op}: total latency",
            f"Microseconds spent in {what} (llite stats '{op}' [usecs] sum). Rate divided by the "
            f"rate of client.{op}.count is the mean latency. Lustre times llite operations "
            f"from 2.14 ([usecs]); 2.10-2.13 print plain counts ('[regs]'), so it is "
            f"unavailable there{UNTIMED_NOTE if op in UNTIMED else ''}.{_versions_text(op)}",
            _fs_stat(op, "sum", "usecs"), indom="client.fs")})
    return m


def _dev(fn):
    return lambda s: {n: v for n, d in s.devices.items() if (v := fn(d)) is not None}


def _dev_stat(op: str, part: str):
    def get(d):
        c = d.stats.get(op)
        if c is None:
            return 0 if d.stats else None   # zero-count lines are not printed
        return c.samples if part == "samples" else c.total
    return _dev(get)


def _dev_header(key: str):
    return _dev(lambda d: None if d.rpc is None else d.rpc.header.get(key))


def _wanted(c: Any, part: str) -> bool:
    return part == "samples" or (c.unit == "usecs" and c.total is not None)


def _dev_op(part: str):
    def value(s: Any) -> Column:
        names, _labels, samples, sums = _shared(s, ("ops",), _op_table)
        return Column(names, samples if part == "samples" else sums)
    return value


def _hist(section: str, half: int):
    table = _hist_table(section, RPC_SECTIONS[section][2])

    def value(s: Any) -> Column:
        names, _labels, reads, writes = table(s)
        return Column(names, writes if half else reads)
    return value


def _target_metrics() -> list[Metric]:
    """Cluster 1: items 0-11 by position, then the rpc_stats histograms at the items
    RPC_SECTIONS gives them."""
    t = "client.target"
    m = cluster(1, [
        Metric(f"{t}.read.bytes", U64, COUNTER, BYTES, "bytes read from the target by RPC",
               "Bytes this client read from the OST or MDT in bulk RPCs (osc/mdc stats read_bytes "
               "sum): what crossed the network, after client caching.", _dev_stat("read_bytes", "sum"),
               indom=t),
        Metric(f"{t}.write.bytes", U64, COUNTER, BYTES, "bytes written to the target by RPC",
               "Bytes this client sent to the OST or MDT in bulk write RPCs (osc/mdc stats "
               "write_bytes sum).", _dev_stat("write_bytes", "sum"), indom=t),
        Metric(f"{t}.read.count", U64, COUNTER, COUNT, "bulk read RPCs",
               "Number of bulk read RPCs to the target (read_bytes samples).",
               _dev_stat("read_bytes", "samples"), indom=t),
        Metric(f"{t}.write.count", U64, COUNTER, COUNT, "bulk write RPCs",
               "Number of bulk write RPCs to the target (write_bytes samples).",
               _dev_stat("write_bytes", "samples"), indom=t),
        Metric(f"{t}.waittime.count", U64, COUNTER, COUNT, "RPCs whose wait time was measured",
               "Number of RPCs in req_waittime: every RPC this client sent to the target.",
               _dev_stat("req_waittime", "samples"), indom=t),
        Metric(f"{t}.waittime.time", U64, COUNTER, USEC, "total RPC round-trip time",
               "Microseconds from sending to completing RPCs to the target (req_waittime sum). "
               "Its rate over waittime.count's rate is the mean RPC latency: rising values mean "
               "a busy server or network.", _dev_stat("req_waittime", "sum"), indom=t),
        Metric(f"{t}.rpcs_in_flight.read", U32, INSTANT, COUNT, "read RPCs in flight now",
               "Read RPCs sent to the target and not yet answered (rpc_stats header). Pinned at "
               "max_rpcs_in_flight means the client is limited by it or by the server.",
               _dev_header("read RPCs in flight"), indom=t),
        Metric(f"{t}.rpcs_in_flight.write", U32, INSTANT, COUNT, "write RPCs in flight now",
               "Write RPCs sent to the target and not yet answered (rpc_stats header).",
               _dev_header("write RPCs in flight"), indom=t),
        Metric(f"{t}.pending_pages.read", U64, INSTANT, COUNT, "pages waiting to be read",
               "Pages queued for read RPCs to the target but not yet sent (rpc_stats header).",
               _dev_header("pending read pages"), indom=t),
        Metric(f"{t}.pending_pages.write", U64, INSTANT, COUNT, "dirty pages waiting to be written",
               "Dirty pages queued for write RPCs to the target but not yet sent (rpc_stats "
               "header). A steady high value means writes outrun the OST.",
               _dev_header("pending write pages"), indom=t),
        Metric(f"{t}.op.count", U64, COUNTER, COUNT, "RPCs of each type",
               "Number of RPCs of each type (ost_write, obd_ping, ldlm_enqueue, mds_close...) "
               "this client sent to the target (osc/mdc stats samples).", _dev_op("samples"),
               indom="client.target.op"),
        Metric(f"{t}.op.time", U64, COUNTER, USEC, "time spent in RPCs of each type",
               "Microseconds spent waiting for RPCs of each type (osc/mdc stats [usecs] sum).",
               _dev_op("sum"), indom="client.target.op"),
    ])
    for section, (word, indom, _label, *items) in RPC_SECTIONS.items():
        for half, (direction, item) in enumerate(zip(("read", "write"), items, strict=True)):
            m += numbered(1, {item: Metric(
                f"{t}.rpc_hist.{word}.{direction}", U64, COUNTER, COUNT,
                f"{direction} RPCs per '{section}' bucket",
                f"Number of {direction} RPCs counted in each bucket of the rpc_stats "
                f"'{section}' histogram since it was last cleared (a clear is handled as a "
                f"counter reset)."
                + (" The bucket is the number of RPCs in flight counting the RPC itself "
                   "(Lustre tallies after adding it), so bucket 1 means no other RPC was in "
                   "flight." if section == "rpcs in flight" else ""),
                _hist(section, half), indom=indom)})
    return m


METRICS = [
    *_client_metrics(),
    *_target_metrics(),
    *SERVER_METRICS,
]
