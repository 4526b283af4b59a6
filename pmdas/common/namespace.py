"""An agent's whole table, checked and numbered once: its metrics and the shared health ones.

The PMDA glue, the refresher and the refresh process all serve this one object, so the
numbers pmcd sees, the numbers the refresh process prepares values under and the numbers
in the committed listing (``pmdas/<agent>/metrics.golden``) cannot disagree.  Pure
Python: PMIDs and instance-domain ids are built here as libpcp builds them.
"""
from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .agent import Agent
from .health import HEALTH_INDOMS, health_metrics
from .table import Indom, Metric, check_table


def pmid(domain: int, cluster: int, item: int) -> int:
    """libpcp's pmID_build: 9 bits of domain, 12 of cluster, 10 of item."""
    return ((domain & 0x1FF) << 22) | ((cluster & 0xFFF) << 10) | (item & 0x3FF)


def indom_id(domain: int, serial: int) -> int:
    """libpcp's pmInDom_build: 9 bits of domain, 22 of serial."""
    return ((domain & 0x1FF) << 22) | (serial & 0x3FFFFF)


@dataclass(frozen=True)
class AgentTable:
    """name, root, domain: the agent's; metrics and indoms: its own, then the health ones."""

    name: str
    root: str
    domain: int
    metrics: Sequence[Metric]
    indoms: Sequence[Indom]
    health_names: frozenset[str] = field(default=frozenset())

    @classmethod
    def of(cls, agent: Agent | type[Agent], domain: int | None = None) -> AgentTable:
        """The checked, numbered table of an agent (class or instance); ``domain`` overrides
        the agent's own number, as pmcd's -d does."""
        return _table(type(agent) if isinstance(agent, Agent) else agent,
                      agent.domain if domain is None else domain)

    def full_name(self, metric: Metric) -> str:
        return f"{self.root}.{metric.name}"

    def pmid(self, metric: Metric) -> int:
        return pmid(self.domain, metric.cluster, metric.item)

    def indom_id(self, indom: Indom | str) -> int:
        serial = indom.serial if isinstance(indom, Indom) else self.indom_by_name[indom].serial
        return indom_id(self.domain, serial)

    @functools.cached_property
    def indom_by_name(self) -> Mapping[str, Indom]:
        return {i.name: i for i in self.indoms}

    @functools.cached_property
    def pmids(self) -> Mapping[str, int]:
        """Relative metric name → PMID."""
        return {m.name: self.pmid(m) for m in self.metrics}

    @functools.cached_property
    def numbered(self) -> list[tuple[Metric, int]]:
        return [(m, self.pmid(m)) for m in self.metrics]

    @functools.cached_property
    def indom_ids(self) -> Mapping[str, int]:
        """Instance-domain name → libpcp instance-domain id."""
        return {i.name: self.indom_id(i) for i in self.indoms}


@functools.cache
def _table(agent_class: type[Agent], domain: int) -> AgentTable:
    health = health_metrics()
    metrics = [*agent_class.metrics, *health]
    indoms = [*agent_class.indoms, *HEALTH_INDOMS]   # health ones last
    check_table(metrics, indoms)
    return AgentTable(agent_class.name, agent_class.root, domain, tuple(metrics), tuple(indoms),
                      frozenset(m.name for m in health))
