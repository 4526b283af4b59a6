"""Health metrics every agent exports: is it refreshing, which sources are up, why not."""
from __future__ import annotations

from dataclasses import dataclass, field

from .table import (
    COUNT,
    COUNTER,
    DISCRETE,
    DOUBLE,
    INSTANT,
    NONE,
    SEC,
    STRING,
    U32,
    U64,
    Indom,
    Metric,
    cluster,
)

HEALTH_CLUSTER = 4000
SOURCE_INDOM_SERIAL = 4000
INDOM_INDOM_SERIAL = 4001


@dataclass(frozen=True)
class SourceHealth:
    up: bool
    error: str
    seconds: float
    failures: int


@dataclass(frozen=True)
class Health:
    up: bool = False
    refreshes: int = 0
    failed_refreshes: int = 0
    last_refresh: float = 0.0
    refresh_seconds: float = 0.0
    last_error: str = ""
    interval: float = 0.0
    sources: dict[str, SourceHealth] = field(default_factory=dict)
    extractor_errors: int = 0
    config_error: str = ""
    instance_counts: dict[str, int] = field(default_factory=dict)  # the agent's own indoms


SOURCE_INDOM = Indom(
    "agent.source", SOURCE_INDOM_SERIAL,
    "sources this agent reads",
    "One instance per source the agent reads each refresh (a file tree, a command). "
    "Source health metrics use it to say which source is down and why.",
    lambda h: {name: {"source": name} for name in h.sources},
)

INDOM_INDOM = Indom(
    "agent.indom", INDOM_INDOM_SERIAL,
    "instance domains of this agent",
    "One instance per instance domain of the agent's own metrics (jobs, ports, targets, ...), "
    "so that their sizes can be watched.",
    lambda h: {name: {"indom": name} for name in h.instance_counts},
)

HEALTH_INDOMS = (SOURCE_INDOM, INDOM_INDOM)


def health_metrics() -> list[Metric]:
    """The agent.* metrics, read from a Health object (not from the agent's snapshot)."""
    return cluster(HEALTH_CLUSTER, [
        Metric("agent.up", U32, INSTANT, NONE, "1 if the last refresh read every source, else 0",
               "1 when the most recent refresh succeeded for every source; 0 when any source "
               "failed or timed out, or before the first refresh has finished. See "
               "agent.source.up and agent.last_error for which source and why.",
               lambda h: 1 if h.up else 0),
        Metric("agent.refreshes", U64, COUNTER, COUNT, "refreshes completed since the agent started",
               "Number of refreshes of the agent's sources completed since the agent started.",
               lambda h: h.refreshes),
        Metric("agent.failed_refreshes", U64, COUNTER, COUNT,
               "refreshes in which at least one source failed",
               "Number of refreshes since the agent started in which at least one source failed "
               "or timed out. Values from the failed sources are reported unavailable.",
               lambda h: h.failed_refreshes),
        Metric("agent.last_refresh", DOUBLE, INSTANT, SEC, "when the last refresh finished (epoch seconds)",
               "Wall-clock time at which the most recent refresh finished, in seconds since "
               "1970-01-01 UTC. Fetched values are at most this old.",
               lambda h: h.last_refresh or None),
        Metric("agent.refresh_seconds", DOUBLE, INSTANT, SEC, "duration of the last refresh",
               "How long the most recent refresh took to read and parse all sources.",
               lambda h: h.refresh_seconds),
        Metric("agent.last_error", STRING, INSTANT, NONE, "last error any source reported",
               "The most recent error message from any source, or an empty string if the last "
               "refresh had none.", lambda h: h.last_error),
        Metric("agent.interval", DOUBLE, DISCRETE, SEC, "configured refresh interval",
               "Seconds between refreshes, from the agent's configuration file.",
               lambda h: h.interval),
        Metric("agent.source.up", U32, INSTANT, NONE, "1 if the source was read in the last refresh",
               "Per source: 1 if the last refresh read and parsed it, 0 if it failed or timed out.",
               lambda h: {n: int(s.up) for n, s in h.sources.items()}, indom="agent.source"),
        Metric("agent.source.error", STRING, INSTANT, NONE, "why the source failed last refresh",
               "Per source: the one-sentence reason it failed in the last refresh, or empty.",
               lambda h: {n: s.error for n, s in h.sources.items()}, indom="agent.source"),
        Metric("agent.source.seconds", DOUBLE, INSTANT, SEC, "time spent reading the source",
               "Per source: seconds the last read took (up to its timeout).",
               lambda h: {n: s.seconds for n, s in h.sources.items()}, indom="agent.source"),
        Metric("agent.source.failures", U64, COUNTER, COUNT, "failed reads of the source",
               "Per source: number of refreshes in which it failed or timed out.",
               lambda h: {n: s.failures for n, s in h.sources.items()}, indom="agent.source"),
        Metric("agent.extractor_errors", U64, COUNTER, COUNT,
               "metric values that could not be computed from a snapshot",
               "Number of times a metric's value could not be computed from a refresh's "
               "snapshot (an agent bug or unexpected source content); details go to the "
               "agent's log.", lambda h: h.extractor_errors),
        Metric("agent.config_error", STRING, DISCRETE, NONE,
               "why the configuration file was rejected, or empty",
               "If the agent's YAML configuration file could not be used, the one-sentence reason "
               "(file, key, problem); the agent then runs with default settings. Empty when the "
               "file was valid or absent. Check a file before installing with 'hpc-pcp check'.",
               lambda h: h.config_error),
        Metric("agent.instances", U32, INSTANT, COUNT, "instances in each of the agent's instance domains",
               "Per instance domain of the agent: how many instances the last refresh exported "
               "(jobs, ports, targets, ...).  Watch it for cardinality; alarm rules use it to clear "
               "when the last offending instance has gone.",
               lambda h: dict(h.instance_counts), indom="agent.indom"),
    ])
