"""Per-job I/O per filesystem: job_stats of every OST and MDT, summed, capped.

Each target's entry for a job is turned into a small vector (bytes, ops,
microseconds); the increase since the last refresh is added to the job's
running totals for its filesystem.  Working from increases keeps the totals
monotonic when one target restarts, when an entry expires on one target but
not another, and when a job moves between the top N and the "other" bucket:
the bucket gets exactly the increases of the jobs that are in it now.

A job idle for ``job_cleanup_interval`` (600 s by default) loses its entry on
every target and, when it does I/O again, comes back from zero.  Its totals are
therefore kept while it is gone ("resting", for ``memory`` seconds, at most
RESTING_LIMIT jobs) and its increases after the return are added to them; a
resting job dropped for age or room is counted in ``JobView.forgotten``, since
if the same id comes back later its totals start again from its new values.

Ids are folded into their job first (``job_of``): with ``jobid_name=%j:%u:%H`` each
client node of a job has its own entry on every target, and the job's instance is
their sum (``fold=False`` keeps one instance per raw id).
"""
from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from .counters import CounterGuard
from .job_stats import JobCounters, job_labels, job_of
from .ops import counts_once

# Exported per-job fields.
FIELDS = ("read_bytes", "write_bytes", "read_ops", "write_ops", "read_usecs", "write_usecs",
          "ost_ops", "mdt_ops", "open", "close", "mknod", "unlink", "getattr", "setattr",
          "rename", "mkdir", "rmdir")
_METADATA = frozenset(("open", "close", "mknod", "unlink", "getattr", "setattr", "rename",
                       "mkdir", "rmdir"))
# Fields a target kind can supply; the others are unavailable, not zero (an OSS
# has no metadata counts, 2.10 has no times).
_DATA_FIELDS = frozenset(("read_bytes", "write_bytes", "read_ops", "write_ops"))
_MDT_FIELDS = _METADATA | {"mdt_ops"}

OTHER = "[other]"   # the bucket name; brackets cannot occur in a Slurm job id

# Most jobs whose totals are kept while they have no job_stats entry anywhere (about
# 500 bytes each, measured); beyond it the ones gone longest are forgotten first.
RESTING_LIMIT = 100_000


def job_vector(counters: JobCounters, is_mdt: bool) -> dict[str, int]:
    """One job's entry on one target → the exported fields (missing ones are zero)."""
    out: dict[str, int] = {}
    for op, (samples, unit, total) in counters.items():
        if op == "read_bytes" or op == "write_bytes":
            kind = op[:-6]
            out[f"{kind}_ops"] = samples
            if total is not None:
                out[op] = total
        elif op == "read" or op == "write":
            if unit == "usecs" and total is not None:
                out[f"{op}_usecs"] = total
        else:
            if counts_once(op):
                side = "mdt_ops" if is_mdt else "ost_ops"
                out[side] = out.get(side, 0) + samples
            if is_mdt and op in _METADATA:
                out[op] = samples
    return out


@dataclass(frozen=True)
class JobView:
    """What the metric table reads: instance → labels and instance → {field: value}."""

    labels: dict[str, dict[str, str]]
    values: dict[str, dict[str, int]]
    tracked: int      # jobs seen across all filesystems before the cap
    dropped: int      # jobs folded into the "other" buckets
    # instance → {"io_bytes": read+write bytes/s, "mdt_ops": metadata ops/s} over the last
    # refresh interval; empty on the first refresh (no interval yet)
    rates: dict[str, dict[str, float]] = field(default_factory=dict)
    # jobs whose totals were dropped after resting too long (or for room), since the start
    forgotten: int = 0


class JobTotals:
    """Running per-(filesystem, job) totals; call ``update`` per target, then ``finish``."""

    def __init__(self, guard: CounterGuard | None = None, memory: float = 86400.0,
                 fold: bool = True):
        self._guard = guard or CounterGuard()
        self._memory = memory
        self._fold = fold
        # (filesystem, job) → its raw ids' user this refresh, None if they disagree
        self._users: dict[tuple[str, str], str | None] = {}
        self._totals: dict[tuple[str, str], dict[str, int]] = {}
        # (filesystem, job) gone from every target → (when it left, its totals as a tuple
        # aligned with FIELDS, None where absent: a third of a dict's memory); oldest first
        self._resting: dict[tuple[str, str], tuple[float, tuple]] = {}
        self._forgotten = 0
        self._other: dict[str, dict[str, int]] = {}
        self._fresh: dict[tuple[str, str], dict[str, int]] = {}
        self._available: set[str] = set()
        self._finished_at: float | None = None

    def update(self, filesystem: str, target: str, jobs: Mapping[str, JobCounters]) -> None:
        """Add one target's job_stats (already parsed) to this refresh."""
        is_mdt = "-MDT" in target
        deltas = self._guard.deltas
        self._available |= _DATA_FIELDS | (_MDT_FIELDS if is_mdt else {"ost_ops"})
        fold, users = self._fold, self._users
        for job_id, counters in jobs.items():
            if "read_usecs" not in self._available and any(
                    counters.get(op, (0, ""))[1] == "usecs" for op in ("read", "write")):
                self._available |= {"read_usecs", "write_usecs"}
            key = (filesystem, job_id)
            if fold:
                job, user = job_of(job_id)
                key = (filesystem, job)
                if job != job_id and users.setdefault(key, user) != user:
                    users[key] = None
            increases = self._fresh.setdefault(key, {})
            vector = job_vector(counters, is_mdt)
            steps = deltas((target, job_id), tuple(vector), tuple(vector.values()))
            if any(steps):
                for name, step in zip(vector, steps, strict=True):
                    if step:
                        increases[name] = increases.get(name, 0) + step

    def finish(self, limit: int, now: float | None = None) -> JobView:
        """Apply this refresh's increases; export the top ``limit`` jobs by bytes moved."""
        fresh, self._fresh = self._fresh, {}
        users, self._users = self._users, {}
        now = time.monotonic() if now is None else now
        elapsed = None if self._finished_at is None else now - self._finished_at
        self._finished_at = now
        fields = [f for f in FIELDS if f in self._available]
        self._available = set()
        totals: dict[tuple[str, str], dict[str, int]] = {}
        resting = self._resting
        for key, increases in fresh.items():
            before = self._totals.get(key)
            if before is None:
                came_back = resting.pop(key, None)
                before = {} if came_back is None else {
                    f: v for f, v in zip(FIELDS, came_back[1], strict=True) if v is not None}
            total = dict(before)
            for name, step in increases.items():
                total[name] = total.get(name, 0) + step
            totals[key] = total
        for key in self._totals.keys() - totals.keys():   # gone from every target: rest
            gone = self._totals[key]
            resting[key] = (now, tuple(gone.get(f) for f in FIELDS))
        self._totals = totals
        self._forget(now)
        ranked = sorted(totals, key=lambda k: (-(totals[k].get("read_bytes", 0)
                                                 + totals[k].get("write_bytes", 0)),
                                               -sum(totals[k].values()), k))
        kept = set(ranked[:max(0, limit)])
        labels: dict[str, dict[str, str]] = {}
        values: dict[str, dict[str, int]] = {}
        steps: dict[str, dict[str, int]] = {}   # this refresh's increases per instance
        for key in ranked:
            filesystem, job_id = key
            if key in kept:
                name = f"{filesystem}/{job_id}"
                labels[name] = {"filesystem": filesystem, **job_labels(job_id)}
                if users.get(key) is not None:
                    labels[name]["user"] = users[key]
                values[name] = {f: totals[key].get(f, 0) for f in fields}
                steps[name] = fresh[key]
            else:
                bucket = self._other.setdefault(filesystem, {})
                step = steps.setdefault(f"{filesystem}/{OTHER}", {})
                for name_, inc in fresh[key].items():
                    bucket[name_] = bucket.get(name_, 0) + inc
                    step[name_] = step.get(name_, 0) + inc
        for filesystem, bucket in self._other.items():
            name = f"{filesystem}/{OTHER}"
            labels[name] = {"filesystem": filesystem, "jobid": OTHER}
            values[name] = {f: bucket.get(f, 0) for f in fields}
        rates = {} if not elapsed or elapsed <= 0 else {
            name: _rates(steps.get(name, {}), elapsed, "mdt_ops" in fields) for name in values}
        return JobView(labels, values, len(totals), len(totals) - len(kept), rates,
                       self._forgotten)

    def _forget(self, now: float) -> None:
        """Drop resting jobs gone longer than ``memory`` seconds, then the oldest over the limit."""
        resting = self._resting
        while resting:
            key = next(iter(resting))
            if len(resting) <= RESTING_LIMIT and now - resting[key][0] <= self._memory:
                break
            del resting[key]
            self._forgotten += 1


def _rates(step: Mapping[str, int], elapsed: float, has_mdt: bool) -> dict[str, float]:
    out = {"io_bytes": (step.get("read_bytes", 0) + step.get("write_bytes", 0)) / elapsed}
    if has_mdt:
        out["mdt_ops"] = step.get("mdt_ops", 0) / elapsed
    return out
