"""Archives for a modelled cluster, shaped like our agents' real output (bench/logger_scale.py).

The shape comes from a real recording, tests/fixtures/archives/dashboards-2026-12-05 (pmlogger
of every agent on the demo's sources): each logged metric's PMID, type, semantics, units,
instance domain, instance names and last value.  What varies with the cluster's size is put
on the roles a real site has:

  head     scheduler view of every job, partitions, node states (hpcjob), alarms (hpcalarm)
  dtn      dtn-transfer runs and GridFTP (hpcdtn)
  server   Lustre OSS/MDS targets and job_stats (hpclustre), one entry per job and client
           node (jobid_name %j:%u:%H), kept 600 s after the job ends (job_cleanup_interval)
  compute  Lustre client, bpftrace scripts and histograms, the node's jobs' cgroups

and every host has the fixture's IB ports and the Linux metrics the node dashboard reads.
Jobs (1 to 32 nodes, about 3 h long, the freed nodes taken by a new job) move over the hour.
What is logged, and how often, is what our pmlogconf groups (logger/pmlogconf) say: a metric
of ours is written only if a group names it (or a subtree of it), at the group's ``delta``, or
at the farm's ``-t`` (10 s, the issue's target) when the group names none; the Linux metrics
come from PCP's default groups at the farm interval.  Per-job Lustre server instances are
named as hpclustre names them by default (ids folded into the job: <filesystem>/<job>, one
instance per job, not one per job and client node).  Written with PCP's LOGIMPORT API
(pcp.pmi), values through handles (pmiPutValueHandle) because one call per value is the cost.
"""
from __future__ import annotations

import os
import random
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import cpmapi as c
from pcp import pmapi
from pcp.pmi import LIBPCP_IMPORT, pmiLogImport

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURE = os.path.join(REPO, "tests", "fixtures", "archives", "dashboards-2026-12-05")
GROUPS = os.path.join(REPO, "logger", "pmlogconf")
INTERVAL = 10
START = 1796083200          # 2026-12-01 00:00:00 UTC: a fixed simulated start
LINGER = 600                # Lustre job_cleanup_interval: job_stats entries outlive the job
JOB_SIZES = (1, 1, 1, 2, 2, 4, 4, 8, 16, 32)
LINUX = ("kernel.", "mem.", "hinv.")
EVERY_HOST = ("hpc.ib.",)
ROLE_PREFIXES = {
    "head": ("hpc.job.", "hpc.alarm."),
    "dtn": ("hpc.dtn.",),
    "server": ("hpc.lustre.server.", "hpc.lustre.job.", "hpc.lustre.agent.", "hpc.lustre.healthy",
               "hpc.lustre.lnet.", "hpc.lustre.counter_resets", "hpc.lustre.last_counter_reset"),
    "compute": ("hpc.lustre.client.", "hpc.lustre.agent.", "hpc.lustre.healthy", "hpc.lustre.lnet.",
                "hpc.lustre.counter_resets", "hpc.lustre.last_counter_reset", "hpc.bpftrace.",
                "hpc.job.job.cgroup.", "hpc.job.agent."),
}
CGROUP = "hpc.job.job.cgroup."


@dataclass
class Metric:
    name: str
    pmid: int
    type: int
    sem: int
    units: pmapi.pmUnits
    indom: int
    instances: dict[int, str]      # fixture instance id -> name ({-1: ""} when singular)
    last: dict[int, object]        # fixture instance id -> last value

    @property
    def per_job(self) -> bool:      # hpcjob's job indom: every job (head) or the node's (cgroup)
        return self.indom != c.PM_INDOM_NULL and self.name.startswith("hpc.job.job.")

    @property
    def per_job_server(self) -> bool:  # hpclustre's job indom: <filesystem>/<job> (ids folded)
        return self.indom != c.PM_INDOM_NULL and self.name.startswith("hpc.lustre.job.")

    interval: int = INTERVAL        # seconds between its samples (its pmlogconf group's delta)


# -- what the pmlogconf groups log, and how often ------------------------------------------
_UNITS = {"sec": 1, "second": 1, "min": 60, "minute": 60, "hour": 3600}


def delta_seconds(spec: str) -> int | None:
    """A pmlogconf ``delta`` (pmlogger interval: '1 minute', '60 sec', 'once') → seconds;
    None for 'once' (logged at the start only)."""
    words = spec.split()
    if words == ["once"]:
        return None
    number = float(words[0])
    unit = words[1].rstrip("s") if len(words) > 1 else "sec"
    return int(number * _UNITS[unit])


@dataclass
class Group:
    name: str
    delta: int | None | str          # seconds, None (once) or "farm" (no delta: the farm's -t)
    metrics: list[str]


def logged_groups(directory: str = GROUPS) -> list[Group]:
    """Every group file under ``directory``/<agent>/ (several per agent allowed)."""
    found = []
    for agent in sorted(os.listdir(directory)):
        folder = os.path.join(directory, agent)
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            delta: int | None | str = "farm"
            metrics = []
            with open(os.path.join(folder, name), encoding="utf-8") as f:
                for line in f:
                    text = line.split("#", 1)[0]
                    if not text.strip():
                        continue
                    if line[0] in " \t":
                        metrics.append(text.split()[0])
                    elif text.split()[0] == "delta":
                        delta = delta_seconds(text.split(None, 1)[1])
            found.append(Group(f"{agent}/{name}", delta, metrics))
    return found


def interval_of(name: str, groups: list[Group]) -> int | None | str:
    """The logging interval of metric ``name``: the delta of the group naming it most closely
    (the metric itself or its deepest ancestor); "farm" for the Linux metrics (PCP's own default
    groups) and for groups without delta; "never" when no group names it."""
    if name.startswith(LINUX):
        return "farm"
    best, depth = "never", -1
    for group in groups:
        for prefix in group.metrics:
            if (name == prefix or name.startswith(prefix + ".")) and prefix.count(".") > depth:
                best, depth = group.delta, prefix.count(".")
    return best


def fixture_shape(path: str = FIXTURE) -> list[Metric]:
    """Every metric the recording holds values for, with its descriptor and instances."""
    ctx = pmapi.pmContext(c.PM_CONTEXT_ARCHIVE, path)
    names: list[str] = []
    ctx.pmTraversePMNS("", names.append)
    pmids = ctx.pmLookupName(names)
    descs = ctx.pmLookupDescs(pmids)
    seen: dict[int, dict[int, object]] = {}
    while True:
        try:
            result = ctx.pmFetch(pmids)
        except pmapi.pmErr as err:
            if err.args[0] == c.PM_ERR_EOL:
                break
            raise
        for i in range(result.contents.numpmid):
            for j in range(result.contents.get_numval(i)):
                inst = result.contents.get_inst(i, j)
                atom = ctx.pmExtractValue(result.contents.get_valfmt(i), result.contents.get_vlist(i, j),
                                          descs[i].type, descs[i].type)
                seen.setdefault(i, {})[inst] = atom.dref(descs[i].type)
        ctx.pmFreeResult(result)
    shape = []
    for i, values in sorted(seen.items()):
        desc = descs[i]
        if desc.indom == c.PM_INDOM_NULL:
            instances = {-1: ""}
        else:
            ids, inames = ctx.pmGetInDomArchive(desc)
            known = dict(zip(ids, inames, strict=True))
            instances = {inst: known.get(inst, str(inst)) for inst in values}
        shape.append(Metric(names[i], pmids[i], desc.type, desc.sem, desc.units, desc.indom,
                            instances, values))
    return shape


def for_role(shape: list[Metric], role: str, groups: list[Group] | None = None) -> list[Metric]:
    """The metrics a host of ``role`` has that the groups log, each with its interval."""
    groups = logged_groups() if groups is None else groups
    prefixes = LINUX + EVERY_HOST + ROLE_PREFIXES[role]
    chosen = []
    for m in shape:
        if not m.name.startswith(prefixes) or (role == "head" and m.name.startswith(CGROUP)):
            continue
        every = interval_of(m.name, groups)
        if every == "never":
            continue
        # "once": the first sample only (an interval longer than any run)
        seconds = INTERVAL if every == "farm" else (1 << 40) if every is None else int(every)
        chosen.append(replace(m, interval=max(INTERVAL, seconds // INTERVAL * INTERVAL)))
    return chosen


# -- the cluster -------------------------------------------------------------------------
@dataclass
class Job:
    id: int
    uid: int
    nodes: list[str]
    start: int                  # seconds from START (may be negative: running before the hour)
    end: int


@dataclass
class Cluster:
    hosts: int
    seconds: int
    roles: dict[str, list[str]] = field(default_factory=dict)
    jobs: list[Job] = field(default_factory=list)

    def __post_init__(self) -> None:
        dtn = self.hosts // 500
        servers = max(1, round(self.hosts / 125))
        compute = max(1, self.hosts - 1 - dtn - servers)
        self.roles = {"head": ["head01"], "dtn": [f"dtn{i:02d}" for i in range(1, dtn + 1)],
                      "server": ["mds01"] + [f"oss{i:02d}" for i in range(1, servers)],
                      "compute": [f"cn{i:04d}" for i in range(1, compute + 1)]}
        rng = random.Random(4242)
        nodes, next_id = self.roles["compute"], 100000

        def place(members: list[str], start: int) -> None:
            nonlocal next_id
            end = start + max(INTERVAL, int(rng.expovariate(1 / (3 * 3600))))
            self.jobs.append(Job(next_id, rng.choice((1000, 1001, 1002, 1003)), members, start, end))
            next_id += 1
            if end < self.seconds:      # the freed nodes go to a new job
                place(members, end + INTERVAL)

        i = 0
        while i < len(nodes):
            size = min(rng.choice(JOB_SIZES), len(nodes) - i)
            if rng.random() < 0.9:      # about one node in ten idle
                place(nodes[i:i + size], -rng.randrange(0, 3 * 3600))
            i += size

    def running(self, t: int, linger: int = 0) -> list[Job]:
        return [j for j in self.jobs if j.start <= t < j.end + linger]

    def host_jobs(self) -> dict[str, list[Job]]:
        found: dict[str, list[Job]] = {}
        for job in self.jobs:
            for node in job.nodes:
                found.setdefault(node, []).append(job)
        return found


# -- writing -----------------------------------------------------------------------------
def instance_names(metric: Metric, host: str, t: int, cluster: Cluster, mine: list[Job]) -> Iterator[str]:
    if metric.per_job:
        jobs = cluster.running(t) if not metric.name.startswith(CGROUP) else \
            [j for j in mine if j.start <= t < j.end]
        for job in jobs:
            yield str(job.id)
    elif metric.per_job_server:     # every client node's entry folded into the job
        for job in cluster.running(t, LINGER):
            yield f"scratch/{job.id}"
    else:
        yield from metric.instances.values()


def value_text(metric: Metric, base: object, rate: float, tick: int) -> bytes:
    if metric.type == c.PM_TYPE_STRING:
        return str(base).encode()
    number = float(base) if isinstance(base, (int, float)) else 0.0
    if metric.sem == c.PM_SEM_COUNTER:
        number += rate * tick
    elif metric.sem == c.PM_SEM_INSTANT:
        number *= 1 + 0.05 * ((tick * 7 + int(rate)) % 11 - 5) / 5
    if metric.type in (c.PM_TYPE_FLOAT, c.PM_TYPE_DOUBLE):
        return repr(number).encode()
    return str(max(0, int(number))).encode()


def write_host(directory: str, host: str, role: str, metrics: list[Metric], cluster: Cluster) -> dict:
    """One host's archive for the whole simulated time; returns its counts and path."""
    path = os.path.join(directory, host)
    log = pmiLogImport(path)
    log.pmiSetHostname(host)
    log.pmiSetTimezone("UTC")
    for m in metrics:
        log.pmiAddMetric(m.name, m.pmid, m.type, m.indom, m.sem, m.units)
    rng = random.Random(host)
    mine = cluster.host_jobs().get(host, [])
    inst_ids: dict[tuple[int, str], int] = {}
    handles: dict[tuple[str, str], tuple[int, Metric, object, float]] = {}
    samples = 0
    for tick in range(cluster.seconds // INTERVAL):
        t = tick * INTERVAL
        LIBPCP_IMPORT.pmiUseContext(log.ctx)
        for m in metrics:
            if t % m.interval:
                continue
            base = next(iter(m.last.values()))
            for name in instance_names(m, host, t, cluster, mine):
                key = (m.name, name)
                if key not in handles:
                    if m.indom != c.PM_INDOM_NULL and (m.indom, name) not in inst_ids:
                        inst = inst_ids[(m.indom, name)] = len(inst_ids)
                        log.pmiAddInstance(m.indom, name, inst)
                        if m.per_job or m.per_job_server:
                            job = name.rsplit("/", 1)[-1]
                            log.pmiPutLabel(c.PM_LABEL_INSTANCES, m.indom, inst, "job", job)
                    handles[key] = (log.pmiGetHandle(m.name, name), m, base, rng.uniform(1, 5e5))
                    LIBPCP_IMPORT.pmiUseContext(log.ctx)
                handle, _, first, rate = handles[key]
                LIBPCP_IMPORT.pmiPutValueHandle(handle, value_text(m, first, rate, tick))
                samples += 1
        log.pmiWrite(START + t, 0)
    log.pmiEnd()
    size = sum(os.path.getsize(os.path.join(directory, f)) for f in os.listdir(directory)
               if f.startswith(host + "."))
    return {"host": host, "role": role, "path": path, "samples": samples, "bytes": size,
            "ticks": cluster.seconds // INTERVAL}
