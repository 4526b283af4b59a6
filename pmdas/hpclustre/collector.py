"""The Lustre agent: which sources exist on this node, and one snapshot per refresh.

A node may be a client, an OSS, an MDS or several at once; the sources listed
each refresh follow what is present, so filesystems and targets appear and
disappear as they are mounted.  build() is where state lives: counters are made
monotonic across target restarts and job_stats are summed per filesystem.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from itertools import chain, compress, repeat
from operator import attrgetter, is_not
from typing import Any

from pmdas.common.agent import Agent
from pmdas.common.config import REFRESH_PROCESS, Option, non_negative
from pmdas.common.sources import Results, Source, SourceError, under

from . import metrics as table
from . import paths
from .counters import CounterGuard
from .jobs import JobTotals, JobView
from .lnet import LnetWraps
from .parsers import RpcStats, StatCounter
from .readers import (
    ClientData,
    ClientDevice,
    ServerTarget,
    TargetJobs,
    read_client,
    read_health,
    read_job_stats,
    read_lnet,
    read_servers,
)

LNET_LEVELS = ("msgs_alloc", "msgs_max")   # levels, not counters: never guarded


@dataclass(frozen=True)
class LustreSnapshot:
    filesystems: dict[str, dict[str, StatCounter]] = field(default_factory=dict)
    devices: dict[str, ClientDevice] = field(default_factory=dict)
    targets: dict[str, ServerTarget] = field(default_factory=dict)
    job_entries: dict[str, int | None] = field(default_factory=dict)
    jobs: JobView | None = None
    job_limit: int = 0
    lnet: dict[str, int] | None = None
    healthy: bool | None = None
    resets: int = 0
    last_reset: str = ""
    client_version: tuple[int, int] | None = None   # Lustre (major, minor) of the client side
    lnet_wraps: int = 0
    # Working space of the metric table for this snapshot (instance names and value
    # columns that several metrics share); not part of the snapshot's value.
    memo: dict = field(default_factory=dict, compare=False, repr=False)


# Counter names of a stats group, by (its counter names, those with a sum): few shapes
# occur (one per kind of stats file), so each is built once and shared.
_STAT_NAMES: dict[tuple, tuple] = {}
_HIST_NAMES: dict[tuple, tuple] = {}
_SAMPLES, _TOTAL = attrgetter("samples"), attrgetter("total")


def _memo(memo: dict[tuple, tuple], key: tuple, make: Callable[[tuple], tuple]) -> tuple:
    names = memo.get(key)
    if names is None:
        if len(memo) > 10000:   # shapes from garbled files: do not keep them forever
            memo.clear()
        names = memo[key] = make(key)
    return names


def _stat_names(key: tuple) -> tuple:
    counters, with_sum = key
    return (*((n, "sum") for n in with_sum), *((n, "samples") for n in counters))


def _hist_names(buckets: tuple) -> tuple:
    return tuple(chain.from_iterable(((b, "read"), (b, "write")) for b in buckets))


def _guard_stats(guard: CounterGuard, where: tuple, stats: dict[str, StatCounter]) -> dict[str, StatCounter]:
    """Monotonic samples and sums; the parsed dict itself when no counter ever went back."""
    counters = tuple(stats.values())
    totals = tuple(map(_TOTAL, counters))
    with_sum = tuple(compress(stats, map(is_not, totals, repeat(None))))
    names = _memo(_STAT_NAMES, (tuple(stats), with_sum), _stat_names)
    raw = (*compress(totals, map(is_not, totals, repeat(None))), *map(_SAMPLES, counters))
    out = guard.monotonic_many(where, names, raw)
    if out is raw:
        return stats
    sums = dict(zip(with_sum, out, strict=False))
    return {name: StatCounter(samples, c.unit, sums.get(name))
            for (name, c), samples in zip(stats.items(), out[len(with_sum):], strict=True)}


def _guard_rpc(guard: CounterGuard, where: tuple, rpc: RpcStats | None) -> RpcStats | None:
    """Monotonic histogram buckets; the parsed object itself when no bucket ever went back."""
    if rpc is None:
        return None
    histograms = {}
    changed = False
    for section, buckets in rpc.histograms.items():
        keys = tuple(buckets)
        names = _memo(_HIST_NAMES, keys, _hist_names)
        raw = tuple(chain.from_iterable(buckets.values()))
        out = guard.monotonic_many((*where, section), names, raw)
        if out is not raw:
            buckets = dict(zip(keys, zip(out[0::2], out[1::2], strict=True), strict=True))
            changed = True
        histograms[section] = buckets
    return RpcStats(rpc.header, histograms) if changed else rpc


def _guard_device(guard: CounterGuard, name: str, dev: ClientDevice) -> ClientDevice:
    stats = _guard_stats(guard, (dev.kind, name), dev.stats)
    rpc = _guard_rpc(guard, (dev.kind, name, "rpc"), dev.rpc)
    return dev if stats is dev.stats and rpc is dev.rpc else replace(dev, stats=stats, rpc=rpc)


# Which counter keys each source feeds (by the first element of the key); job
# counters are keyed by target name instead.
_FAMILIES = {"client": ("llite", "osc", "mdc"), "server": ("ost", "mdt"), "lnet": ("lnet",)}
_NOT_JOBS = frozenset(f for fams in _FAMILIES.values() for f in fams)


def _failed_families(results: Results, unread: frozenset[str] = frozenset()):
    """A predicate keeping the counter state of sources that failed this refresh.

    Without it one failed read would make every counter (and every job) look
    new on the next refresh, and the running totals would be lost.  ``unread``
    names targets still listed whose job_stats could not be read this time: their
    jobs' last values are kept too, or a job resting through the failed read would
    have its whole value counted again when the read works.
    """
    failed = {f for name, fams in _FAMILIES.items()
              if name in results and not results[name].ok for f in fams}
    jobs_failed = "job_stats" in results and not results["job_stats"].ok
    return lambda key: (key[0] in failed or key[0] in unread
                        or (jobs_failed and key[0] not in _NOT_JOBS))


class LustreAgent(Agent):
    name = "hpclustre"
    domain = 411
    root = "hpc.lustre"
    options = {
        "job_limit": Option(500, "Most jobs exported per refresh (top N by bytes read and "
                            "written); the rest are summed into one '[other]' instance per "
                            "filesystem. 0 exports only the '[other]' totals.", int, non_negative),
        "job_stats": Option(True, "Read job_stats on servers (set false to skip the per-job "
                            "metrics entirely on very large servers).", bool),
        "job_memory": Option(86400, "Seconds the totals of a job with no job_stats entry left "
                             "on any target are kept (an idle job's entries expire after "
                             "job_cleanup_interval, 600 s by default, and come back from zero): "
                             "if the job does I/O again within this time, its counters go on from "
                             "where they were. Longer uses more memory (about 500 bytes a job, "
                             "at most 100,000 jobs kept: about 50 MB).", (int, float), non_negative),
        "job_by_host": Option(False, "One job instance per raw job_stats id: with "
                              "jobid_name=%j:%u:%H a job then has one instance per client node "
                              "(<filesystem>/4242:1000:cn017). By default the ids of one job "
                              "(its nodes, its steps) are summed into <filesystem>/<job>.", bool),
        "refresh_process": REFRESH_PROCESS,
    }

    def __init__(self, config: Any):
        super().__init__(config)
        self._guard = CounterGuard()
        self._jobs = JobTotals(self._guard, float(config.get("job_memory", 86400)),
                               fold=not config.get("job_by_host", False))
        self._lnet = LnetWraps()

    metrics = table.METRICS
    indoms = table.INDOMS

    def needs_root(self) -> str:
        """Root where Lustre keeps statistics in debugfs: llite, osc and mdc stats of 2.12+
        clients and LNet's counters, below /sys/kernel/debug, which the kernel mounts 0700.
        Elsewhere (a node without Lustre loaded at start, a 2.10 node with everything in
        /proc, debugfs mounted readable by all) the sysfs and /proc files read need no root.
        Decided when the agent starts: Lustre loaded later is reported as unreadable until
        the agent restarts (or runs with 'user: root')."""
        debugfs = under(self.config.root, paths.DEBUGFS)
        kept = [d for d in ("lustre", "lnet") if os.path.isdir(os.path.join(debugfs, d))]
        if not kept or os.stat(debugfs).st_mode & 0o005 == 0o005:
            return ""
        return (f"Lustre keeps its {' and '.join(kept)} statistics in debugfs ({debugfs}), "
                f"which only root can read")

    def sources(self) -> list[Source]:
        """The sources present now: client, server and job_stats ones come and go with mounts."""
        root, timeout = self.config.root, self.config.timeout
        if not paths.lustre_present(root):
            return [Source("lustre", lambda: self._absent(root), timeout)]
        found = [Source("health", lambda: read_health(root), timeout),
                 Source("lnet", lambda: read_lnet(root), timeout)]
        if paths.has_devices(root, ("llite",), (paths.SYSFS_LLITE,)):
            found.append(Source("client", lambda: read_client(root), timeout))
        if paths.has_devices(root, ("obdfilter", "mdt")):
            found.append(Source("server", lambda: read_servers(root), timeout))
            if self.config.job_stats:
                found.append(Source("job_stats", lambda: read_job_stats(root), timeout))
        return found

    @staticmethod
    def _absent(root: str) -> None:
        raise SourceError(f"Lustre is not loaded on this node: neither "
                          f"{under(root, '/sys/fs/lustre')} nor {under(root, '/proc/fs/lustre')} exists")

    def build(self, results: Results) -> LustreSnapshot:
        guard = self._guard
        client: ClientData | None = results.value("client")
        filesystems, devices = {}, {}
        if client is not None:
            filesystems = {fs: _guard_stats(guard, ("llite", fs), stats)
                           for fs, stats in client.filesystems.items()}
            devices = {name: _guard_device(guard, name, dev) for name, dev in client.devices.items()}
        servers: dict[str, ServerTarget] = results.value("server") or {}
        targets = {name: replace(t, stats=None if t.stats is None
                                 else _guard_stats(guard, (t.kind, name), t.stats))
                   for name, t in servers.items()}
        job_entries: dict[str, int | None] = {}
        jobs = None
        per_target: dict[str, TargetJobs] | None = results.value("job_stats")
        if per_target is not None:
            for name, target_jobs in per_target.items():
                job_entries[name] = None if target_jobs.jobs is None else len(target_jobs.jobs)
                if target_jobs.jobs:
                    self._jobs.update(target_jobs.filesystem, name, target_jobs.jobs)
            jobs = self._jobs.finish(int(self.config.job_limit))
        lnet = results.value("lnet")
        if lnet is not None:
            lnet = self._lnet.widen(lnet)
            counted = tuple(k for k in lnet if k not in LNET_LEVELS)
            lnet = {**lnet, **dict(zip(counted, guard.monotonic_many(
                ("lnet",), counted, tuple(lnet[k] for k in counted)), strict=True))}
        unread = frozenset(name for name, n in job_entries.items() if n is None)
        guard.sweep(keep=_failed_families(results, unread))
        return LustreSnapshot(filesystems, devices, targets, job_entries, jobs,
                              int(self.config.job_limit), lnet, results.value("health"),
                              guard.resets, guard.last_reset,
                              client.version if client is not None else None, self._lnet.wraps)
