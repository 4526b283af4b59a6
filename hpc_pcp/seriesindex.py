"""pmproxy before PCP 6.3.4: index instances that appear after pmproxy first cached a metric.

pmproxy keeps one ``cached`` flag per instance of an instance domain, not per metric and
instance (PCP 6.0.3 libpcp_web/src/schema.c, ``redis_series_metadata``: an instance is
indexed ``if (instance->cached == 0 || metric->cached == 0)``, then ``instance->cached = 1``).
An instance that appears once every metric of its domain is cached -- a Slurm job that
starts after the logger -- is indexed for the first metric of the result that has a value
for it, and for no other: ``hpc.lustre.job.*{instance.name == "scratch/4242"}`` finds
``mdt.ops_rate`` only, although pmproxy stores the job's values of every metric.  PCP 6.3.4
fixed it (commit fe58e561ab, "relax instance/label setup cache checks", RHEL-67227).

Until then this adds, in Valkey/Redis, the two index entries pmproxy 6.3.4 would have
written (``redis_series_instance``): for each metric series M of a host and instance
domain, every instance another metric of that host and domain has, in
``pcp:instances:series:M`` and ``pcp:series:inst.name:<name>``.  Sets only grow, so one
SCARD per series and pass tells which (host, domain) groups gained an instance; only those
are read and repaired.  Instance labels are not indexed: PCP 6.0.3's pmlogger never logs
them for such instances (the boards select by instance name).

Valkey/Redis is reached through redis-py (Debian's python3-redis, a Recommends of pcp-hpc:
only the logger node needs it), one server or a cluster, in pipelines of single-key commands.
"""
from __future__ import annotations

import contextlib
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

# pcp-hpc's agents: hpcjob, hpclustre, hpcib, hpcbpftrace, hpcdtn, hpcsample, hpcalarm
OUR_DOMAINS = frozenset(range(410, 417))
FIXED_IN = (6, 3, 4)
CHUNK = 10000       # commands per pipeline
CLIENT_PACKAGE = "python3-redis"


def missing_client() -> str | None:
    """Why the series index cannot run here (no redis-py), or None: one sentence for setup and
    the index to print."""
    try:
        import redis  # noqa: F401
    except ImportError:
        return (f"the series index needs the Python Redis client: install the {CLIENT_PACKAGE} "
                f"package (apt-get install {CLIENT_PACKAGE}) on the logger node")
    return None


def store_errors() -> tuple[type[Exception], ...]:
    """What a pass may raise when Valkey/Redis is unreachable, restarting or resharding."""
    import redis
    from redis.exceptions import RedisClusterException

    return (redis.RedisError, RedisClusterException, OSError)


class Store:
    """pmproxy's Valkey/Redis: one server, or a cluster when the first seed that answers has
    ``cluster_enabled:1``.  ``run`` sends single-key commands in one pipeline (no transaction;
    a cluster's pipeline routes each by its key's slot and follows MOVED/ASK) and returns the
    replies in order, as redis-py parses them with bytes values (SMEMBERS: a set)."""

    def __init__(self, seeds: Sequence[str], timeout: float = 10.0) -> None:
        import redis
        from redis.cluster import ClusterNode, RedisCluster

        nodes = [(s.rsplit(":", 1)[0], int(s.rsplit(":", 1)[1])) for s in seeds]
        options = {"socket_timeout": timeout, "socket_connect_timeout": timeout, "decode_responses": False}
        last: Exception | None = None
        for host, port in nodes:
            probe = redis.Redis(host=host, port=port, **options)
            try:
                clustered = bool(probe.info("cluster").get("cluster_enabled"))
            except redis.RedisError as exc:
                last = exc
                continue
            finally:
                probe.close()
            self.client: redis.Redis | RedisCluster = (
                RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in nodes], **options) if clustered
                else redis.Redis(host=host, port=port, **options))
            return
        raise redis.ConnectionError(f"no Valkey/Redis answered at {', '.join(seeds)}: {last}"
                                    if nodes else "no Valkey/Redis server given")

    def run(self, commands: Sequence[Sequence]) -> list:
        """Replies to ``commands`` in order; the first error reply is raised."""
        pipe = self.client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        return pipe.execute()

    def close(self) -> None:
        self.client.close()


def needed(pcp_version: str) -> bool:
    """True for a PCP older than 6.3.4 (the pmproxy that needs this)."""
    parts = []
    for part in pcp_version.strip().split(".")[:3]:
        digits = "".join(ch for ch in part if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts) < FIXED_IN


def domains(text: str) -> frozenset[int] | None:
    """'all' → None (every domain); '410-416,60' → those domains; ValueError otherwise."""
    if text.strip() == "all":
        return None
    out: set[int] = set()
    for part in text.split(","):
        low, _, high = part.strip().partition("-")
        out.update(range(int(low), int(high or low) + 1))
    if not out or min(out) < 0 or max(out) > 511:
        raise ValueError(f"domains {text!r}: give 'all' or numbers such as 410-416,60")
    return frozenset(out)


@dataclass
class Pass:
    """What one pass did."""
    series: int = 0            # metric series with an instance domain, watched
    groups_checked: int = 0    # (host, domain) groups that gained an instance
    added: int = 0             # (metric series, instance) index entries added
    seconds: float = 0.0


@dataclass
class Indexer:
    store: Store
    wanted: frozenset[int] | None = OUR_DOMAINS
    contexts: dict[bytes, int] = field(default_factory=dict)          # context id → series count
    group_of: dict[bytes, tuple[bytes, str]] = field(default_factory=dict)   # series → (source, indom)
    groups: dict[tuple[bytes, str], list[bytes]] = field(default_factory=dict)
    counts: dict[bytes, int] = field(default_factory=dict)            # series → instances indexed
    names: dict[bytes, bytes] = field(default_factory=dict)           # instance → name id

    def _new_series(self) -> None:
        """Learn series of contexts whose series sets grew (new hosts, archives, metrics)."""
        ids = self.store.run([("HKEYS", "pcp:map:context.name")])[0] or []
        keys = [f"pcp:series:context.name:{i.hex()}" for i in ids]
        sizes = self.store.run([("SCARD", k) for k in keys]) if keys else []
        grown = [(i, k, n) for i, k, n in zip(ids, keys, sizes, strict=True)
                 if n and self.contexts.get(i) != n]
        if not grown:
            return
        members = self.store.run([("SMEMBERS", k) for _, k, _ in grown])
        fresh = sorted({s for batch in members for s in batch if s not in self.group_of})
        descs: list = []
        for start in range(0, len(fresh), CHUNK):
            descs += self.store.run([("HMGET", f"pcp:desc:series:{s.hex()}", "indom", "source")
                                     for s in fresh[start:start + CHUNK]])
        for series, (indom, source) in zip(fresh, descs, strict=True):
            indom_text = (indom or b"none").decode(errors="replace")
            group = (source or b"", indom_text)
            self.group_of[series] = group
            if indom_text == "none" or not source or not self._wanted(indom_text):
                continue
            self.groups.setdefault(group, []).append(series)
            self.counts.setdefault(series, -1)
        for context, _, size in grown:
            self.contexts[context] = size

    def _wanted(self, indom: str) -> bool:
        if self.wanted is None:
            return True
        try:
            return int(indom.split(".")[0]) in self.wanted
        except ValueError:
            return False

    def _changed_groups(self) -> list[tuple[bytes, str]]:
        watched = [s for members in self.groups.values() for s in members]
        changed = set()
        for start in range(0, len(watched), CHUNK):
            chunk = watched[start:start + CHUNK]
            sizes = self.store.run([("SCARD", b"pcp:instances:series:" + s.hex().encode()) for s in chunk])
            for series, size in zip(chunk, sizes, strict=True):
                if self.counts.get(series) != size:
                    changed.add(self.group_of[series])
                    self.counts[series] = size
        return [g for g in self.groups if g in changed and len(self.groups[g]) > 1]

    def _repair(self, groups: list[tuple[bytes, str]]) -> int:
        """Give every series of each group the union of the group's instances (in 3 pipelines)."""
        members = [(group, m) for group in groups for m in self.groups[group]]
        if not members:
            return 0
        sets = [set(s) for s in self.store.run([("SMEMBERS", f"pcp:instances:series:{m.hex()}")
                                                for _, m in members])]
        unions: dict[tuple[bytes, str], set[bytes]] = {}
        for (group, _), have in zip(members, sets, strict=True):
            unions.setdefault(group, set()).update(have)
        lacking = [(series, have, unions[group] - have)
                   for (group, series), have in zip(members, sets, strict=True)]
        unknown = sorted({i for _, _, gap in lacking for i in gap if i not in self.names})
        if unknown:     # names of instances some series lacks: the later ones, not every job
            names = self.store.run([("HGET", f"pcp:inst:series:{i.hex()}", "name") for i in unknown])
            for instance, name in zip(unknown, names, strict=True):
                if name:
                    self.names[instance] = name
        commands: list[tuple] = []
        added = 0
        for series, have, gap in lacking:
            missing = sorted(i for i in gap if i in self.names)
            if len(missing) < len(gap):     # pmproxy has not written its name yet: next pass
                self.counts[series] = -1
            if not missing:
                continue
            commands.append(("SADD", f"pcp:instances:series:{series.hex()}", *missing))
            commands.extend(("SADD", f"pcp:series:inst.name:{self.names[i].hex()}", series) for i in missing)
            if len(missing) == len(gap):
                self.counts[series] = len(have) + len(missing)
            added += len(missing)
        if commands:
            self.store.run(commands)
        return added

    def run_once(self) -> Pass:
        started = time.monotonic()
        self._new_series()
        changed = self._changed_groups()
        done = Pass(series=sum(len(m) for m in self.groups.values()), groups_checked=len(changed))
        batch: list[tuple[bytes, str]] = []
        for group in changed:      # a few thousand series at a time: bounded replies in memory
            batch.append(group)
            if sum(len(self.groups[g]) for g in batch) >= CHUNK // 4:
                done.added += self._repair(batch)
                batch = []
        done.added += self._repair(batch)
        done.seconds = time.monotonic() - started
        return done


def follow(seeds: Iterable[str], interval: float, wanted: frozenset[int] | None = OUR_DOMAINS,
           echo: Callable[[str], None] = print, passes: int | None = None) -> None:
    """Repair every ``interval`` seconds (``passes`` times, or forever), reconnecting on errors."""
    problem = missing_client()
    if problem:
        raise SystemExit(f"Error: {problem}")
    errors = store_errors()
    seeds = list(seeds)
    indexer: Indexer | None = None
    count = 0
    while passes is None or count < passes:
        count += 1
        try:
            if indexer is None:
                indexer = Indexer(Store(seeds), wanted)
            done = indexer.run_once()
            if done.added:
                echo(f"indexed {done.added} (series, instance) pairs in {done.groups_checked} "
                     f"group(s) of {done.series} series, {done.seconds:.3f} s")
        except Exception as exc:   # noqa: BLE001 -- one bad pass must not end the service
            if isinstance(exc, errors):
                echo(f"Valkey/Redis: {str(exc).rstrip('.')}; retrying in {interval:g} s")
            else:
                echo(f"pass failed ({type(exc).__name__}: {exc}); starting afresh in {interval:g} s\n"
                     + "".join(traceback.format_exc(limit=6)).rstrip())
            if indexer is not None:
                with contextlib.suppress(Exception):   # a connection already broken
                    indexer.store.close()
            indexer = None
        if passes is None or count < passes:
            time.sleep(interval)
