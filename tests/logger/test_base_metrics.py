"""Tier 2: the PCP metrics we rely on without owning them (hpc_pcp/dashboards/base_metrics.py)
are what PCP's agents on this node export: names, PMIDs, types, semantics, units and instance
domains as ``pminfo -dm`` prints them, and every one the boards or alarm rules name is declared."""
from __future__ import annotations

import re

import pytest

from hpc_pcp.alarm import load_catalogue
from hpc_pcp.dashboards import catalog, generate
from hpc_pcp.dashboards.base_metrics import BASE_METRICS, FLOAT
from pmdas.common.table import COUNTER, DISCRETE, I32, INSTANT, U32, U64, Units
from tests.harness.pcp import run_pcp

_TYPES = {"32-bit unsigned int": U32, "64-bit unsigned int": U64, "32-bit int": I32, "float": FLOAT}
_SEM = {"counter": COUNTER, "instant": INSTANT, "discrete": DISCRETE}
_UNITS = {"millisec": Units(time=1, scale_time=2), "none": Units(), "Kbyte": Units(space=1, scale_space=1),
          "count": Units(count=1)}


def described(text: str) -> dict[str, tuple]:
    """``pminfo -dm`` output → name → (pmid, type, semantics, units, indom)."""
    found = {}
    for block in re.split(r"\n\s*\n", text.strip()):
        head = re.match(r"(\S+) PMID: (\d+)\.(\d+)\.(\d+)", block.strip())
        desc = re.search(r"Data Type: (.+?)\s+InDom: (\S+)", block)
        sem = re.search(r"Semantics: (\w+)\s+Units: (.+)", block)
        assert head and desc and sem, f"unexpected pminfo output: {block}"
        indom = None if desc.group(2) == "PM_INDOM_NULL" else tuple(int(x) for x in desc.group(2).split("."))
        found[head.group(1)] = (tuple(int(x) for x in head.group(2, 3, 4)), _TYPES.get(desc.group(1)),
                                _SEM.get(sem.group(1)), _UNITS.get(sem.group(2).strip()), indom)
    return found


def test_pminfo_output_is_parsed():
    text = ("\nproc.runq.blocked PMID: 3.13.1\n    Data Type: 32-bit int  InDom: PM_INDOM_NULL 0xffffffff\n"
            "    Semantics: instant  Units: count\n\nkernel.all.load PMID: 60.2.0\n"
            "    Data Type: float  InDom: 60.2 0xf000002\n    Semantics: instant  Units: none\n")
    assert described(text) == {"proc.runq.blocked": ((3, 13, 1), I32, INSTANT, Units(count=1), None),
                               "kernel.all.load": ((60, 2, 0), FLOAT, INSTANT, Units(), (60, 2))}


@pytest.mark.pcp
@pytest.mark.usefixtures("pmcd")
def test_declared_base_metrics_match_pcp():
    done = run_pcp("pminfo", "-dm", *BASE_METRICS)
    assert done.returncode == 0, done.stderr
    real = described(done.stdout)
    assert set(real) == set(BASE_METRICS), done.stderr
    wrong = {name: (real[name], (m.pmid, m.type, m.semantics, m.units, m.indom))
             for name, m in BASE_METRICS.items()
             if real[name] != (m.pmid, m.type, m.semantics, m.units, m.indom)}
    assert not wrong, f"declared descriptors differ from PCP's (pminfo, declared): {wrong}"


def test_every_pcp_metric_of_the_boards_and_rules_is_declared():
    named = set()
    for board in generate().values():
        for panel in board["panels"]:
            named |= {t["expr"].split("{", 1)[0] for t in panel.get("targets", [])}
    for rule in load_catalogue():
        bare = re.sub(r'"[^"]*"', "", rule.condition)     # string literals hold no metric
        named |= set(re.findall(r"\b[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+", bare))
    ours = {n for n in named if n.startswith("hpc.")}
    assert "proc.runq.blocked" in named - ours
    assert named - ours <= set(BASE_METRICS), sorted(named - ours - set(BASE_METRICS))
    assert all(catalog.owner(n) == catalog.LINUX for n in named - ours)
