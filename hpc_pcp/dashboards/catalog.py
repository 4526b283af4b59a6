"""Every metric a dashboard may name, taken from the agents' own metric tables.

Dashboards are generated against this catalog so that a renamed or deleted
metric breaks generation (loudly) instead of leaving an empty panel on a
wall screen.  Panels of an agent whose code is not part of this installation
are left out; a panel naming a metric that no table has is an error.
"""
from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

from pmdas.common.health import health_metrics
from pmdas.common.table import BYTES, COUNTER, Units

from ..agents import available
from .base_metrics import BASE_METRICS

# PCP's own agents (linux, proc, pmcd): the stock metrics our boards and alarm rules read
# next to ours, declared with PCP's descriptors in base_metrics.py.  One owner label for them.
LINUX = "linux"
LINUX_METRICS: Mapping[str, tuple[str, Units]] = {
    name: (m.semantics, m.units) for name, m in BASE_METRICS.items()}


class UnknownMetric(Exception):
    """A dashboard names a metric that no agent table (nor the linux list) has."""


@dataclass(frozen=True)
class MetricInfo:
    name: str          # full PCP name, e.g. hpc.ib.port.xmit.bytes
    agent: str         # pmcd label of the agent that exports it, or "linux"
    semantics: str
    units: Units
    indom: str | None

    @property
    def is_counter(self) -> bool:
        return self.semantics == COUNTER

    @property
    def is_bytes(self) -> bool:
        return self.units.space == 1 and self.units.time == 0


@functools.cache
def catalog() -> Mapping[str, MetricInfo]:
    """Full metric name → MetricInfo for every agent whose code loads here, plus LINUX_METRICS."""
    out: dict[str, MetricInfo] = {}
    health = health_metrics()
    for name, entry in available().items():
        agent = entry.load()
        for m in [*agent.metrics, *health]:
            full = f"{agent.root}.{m.name}"
            out[full] = MetricInfo(full, name, m.semantics, m.units, m.indom)
    for full, (semantics, units) in LINUX_METRICS.items():
        out[full] = MetricInfo(full, LINUX, semantics, units, None)
    return out


def agent_roots() -> Mapping[str, str]:
    """Agent label → metric root (hpc.ib) of every agent in the registry, loadable or not."""
    from ..agents import AGENTS

    roots = {}
    for name, entry in AGENTS.items():
        try:
            roots[name] = entry.load().root
        except Exception:  # not written yet: its root follows the naming rule hpc<x> → hpc.<x>
            roots[name] = "hpc." + name.removeprefix("hpc")
    return roots


def owner(metric: str) -> str:
    """The agent label a metric name belongs to, by its root, whether or not the agent is present."""
    if metric in LINUX_METRICS:
        return LINUX
    for name, root in agent_roots().items():
        if metric.startswith(root + "."):
            return name
    raise UnknownMetric(f"metric {metric!r} belongs to no pcp-hpc agent and is not a declared "
                        "PCP base metric (base_metrics.py)")


def lookup(metric: str) -> MetricInfo:
    """The MetricInfo of ``metric``; UnknownMetric if its agent is present but lacks the name."""
    info = catalog().get(metric)
    if info is None:
        raise UnknownMetric(f"metric {metric!r} is in no agent's metric table "
                            f"(agent {owner(metric)} has no such metric)")
    return info


def present(agent: str) -> bool:
    """True if panels of ``agent`` can be generated (its code loads here)."""
    return agent == LINUX or agent in available()


def grafana_unit(info: MetricInfo, rate: bool) -> str:
    """Grafana's unit id for values of ``info`` (rate: the plugin converts counters per second)."""
    u = info.units
    if u == BYTES or (u.space == 1 and u.time == 0):
        scale = ["bytes", "kbytes", "mbytes", "gbytes"][min(u.scale_space, 3)]
        if rate:
            return {"bytes": "Bps", "kbytes": "KBs", "mbytes": "MBs", "gbytes": "GBs"}[scale]
        return scale
    if u.space == 1 and u.time == -1:
        return "Bps"
    if u.time == 1 and u.space == 0 and u.count == 0:
        if rate:  # grafana-pcp turns time counters into utilisation (seconds per second)
            return "percentunit"
        return ["ns", "µs", "ms", "s"][min(u.scale_time, 3)]
    if u.count == 1 and rate:
        return "ops"
    return "short"
