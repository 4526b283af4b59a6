"""A PCP archive holding one sample of every pcp-hpc metric, built from the agents' tables.

``pmie -C`` resolves names and descriptors (types, semantics) from its metric
source, so checking the rule files against the live pmcd would need every agent
installed.  An archive written with PCP's own log-import library from the same
metric tables the agents register gives pmie exactly the descriptors the agents
would, with no pmcd state shared with other tests.
"""
from __future__ import annotations

import os

import cpmapi as c_api
from pcp import pmi

from hpc_pcp.agents import available
from hpc_pcp.dashboards.base_metrics import BASE_METRICS, FLOAT
from pmdas.common.health import HEALTH_INDOMS, health_metrics
from pmdas.common.table import COUNTER, DISCRETE, DOUBLE, I32, I64, STRING, U32, U64

_TYPE = {U32: c_api.PM_TYPE_U32, U64: c_api.PM_TYPE_U64, I32: c_api.PM_TYPE_32,
         I64: c_api.PM_TYPE_64, DOUBLE: c_api.PM_TYPE_DOUBLE, STRING: c_api.PM_TYPE_STRING,
         FLOAT: c_api.PM_TYPE_FLOAT}
_SEM = {COUNTER: c_api.PM_SEM_COUNTER, DISCRETE: c_api.PM_SEM_DISCRETE}


def metric_names() -> set[str]:
    """Every metric name the installed agents export (with health metrics), plus the PCP
    base metrics (linux, proc, pmcd) declared in hpc_pcp/dashboards/base_metrics.py."""
    names = set(BASE_METRICS)
    for entry in available().values():
        agent = entry.load()
        names |= {f"{agent.root}.{m.name}" for m in [*agent.metrics, *health_metrics()]}
    return names


def build(directory: str, host: str = "localhost") -> str:
    """Write the archive under ``directory``; return its base name for ``pmie -a``."""
    base = os.path.join(directory, "hpc-metrics")
    log = pmi.pmiLogImport(base)
    log.pmiSetHostname(host)
    log.pmiSetTimezone("UTC")
    base_indoms: set[tuple[int, int]] = set()
    for name, m in BASE_METRICS.items():   # PCP's own descriptors, as pminfo -dm shows them
        pm_indom = c_api.PM_INDOM_NULL if m.indom is None else log.pmiInDom(*m.indom)
        log.pmiAddMetric(name, log.pmiID(*m.pmid), _TYPE[m.type], pm_indom,
                         _SEM.get(m.semantics, c_api.PM_SEM_INSTANT), log.pmiUnits(*m.units.as_tuple()))
        if m.indom is not None:
            if m.indom not in base_indoms:
                log.pmiAddInstance(pm_indom, "hpcsample", 0)
                base_indoms.add(m.indom)
            log.pmiPutValue(name, "hpcsample", "0")
        else:
            log.pmiPutValue(name, "", "1")
    for entry in available().values():
        agent = entry.load()
        indoms = {i.name: log.pmiInDom(agent.domain, i.serial) for i in [*agent.indoms, *HEALTH_INDOMS]}
        for pm_indom in indoms.values():
            log.pmiAddInstance(pm_indom, "x", 0)
        own = [i.name for i in agent.indoms]  # agent.instances is per indom of the agent's own
        for n, name in enumerate(own, start=1):
            log.pmiAddInstance(indoms["agent.indom"], name, n)
        for m in [*agent.metrics, *health_metrics()]:
            full = f"{agent.root}.{m.name}"
            pm_indom = indoms[m.indom] if m.indom else c_api.PM_INDOM_NULL
            log.pmiAddMetric(full, log.pmiID(agent.domain, m.cluster, m.item), _TYPE[m.type],
                             pm_indom, _SEM.get(m.semantics, c_api.PM_SEM_INSTANT),
                             log.pmiUnits(*m.units.as_tuple()))
            log.pmiPutValue(full, "x" if m.indom else "", "x" if m.type == STRING else "1")
            if m.indom == "agent.indom":
                for name in own:
                    log.pmiPutValue(full, name, "1")
    log.pmiWrite(0, 0)
    del log
    return base
