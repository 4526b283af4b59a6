"""Tier 1: what the shipped pmlogconf groups log.  Every metric a dashboard panel shows must be
logged (a panel of an unlogged metric is empty in history), and every metric of ours is either
logged or left out on purpose, named here with the reason, so a metric added to an agent's
table is not silently dropped from the archives."""
from __future__ import annotations

import fnmatch
import re

from hpc_pcp import dashboards, logger
from hpc_pcp.dashboards import catalog

# Subtrees the default groups leave out: high-volume diagnostics, read live (pminfo, Vector).
NOT_LOGGED = {
    "hpc.lustre.client.target.rpc_hist": "RPC page/in-flight/offset histograms, ~500 values a client",
    "hpc.ib.port.counter": "each counter's fixed width and saturation flag (port.saturated sums them)",
    "hpc.sample": "the example agent (a template for new agents) ships no group",
}


def logged_names() -> list[str]:
    """The metric lines (names or subtrees) of every shipped group."""
    names = []
    for text in logger.pmlogconf_groups().values():
        names += [ln.split()[0] for ln in text.splitlines() if ln[:1].isspace() and ln.strip()]
    return names


def is_logged(metric: str, names: list[str]) -> bool:
    return any(metric == n or metric.startswith(n + ".") for n in names)


def test_every_dashboard_metric_of_ours_is_logged():
    names = logged_names()
    shown = set()
    for board in dashboards.generate().values():
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                if target["datasource"]["type"] == "performancecopilot-valkey-datasource":
                    shown.add(target["expr"].split("{", 1)[0].rstrip("*").rstrip("."))
    ours = {m for m in shown if m.startswith("hpc.")}
    assert ours and not {m for m in ours if not is_logged(m, names)}, \
        sorted(m for m in ours if not is_logged(m, names))


def test_every_metric_is_logged_or_left_out_on_purpose():
    names = logged_names()
    ours = [n for n, info in catalog.catalog().items() if info.agent != catalog.LINUX]
    unplaced = [n for n in ours if not is_logged(n, names) and not is_logged(n, list(NOT_LOGGED))]
    assert not unplaced, f"metrics no group logs and NOT_LOGGED does not name: {unplaced}"
    wrongly = [n for n in ours if is_logged(n, list(NOT_LOGGED)) and is_logged(n, names)]
    assert not wrongly, f"left out on purpose but logged: {wrongly}"
    for subtree in NOT_LOGGED:     # each exclusion still names something real
        assert any(n.startswith(subtree + ".") for n in ours), subtree


def test_pmproxy_loads_every_metric_a_panel_reads():
    conf = logger.pmproxy_conf("localhost:6379", 10, 1)
    found = re.search(r"(?m)^exclude\.metrics\s*=\s*(.*)$", conf)
    patterns = [p.strip() for p in found.group(1).split(",")] if found else []
    shown = set()
    for board in dashboards.generate().values():
        for panel in board["panels"]:
            shown |= {t["expr"].split("{", 1)[0] for t in panel.get("targets", [])
                      if t["datasource"]["type"] == "performancecopilot-valkey-datasource"}
    assert "proc.runq.blocked" in shown
    dropped = sorted(m for m in shown if any(fnmatch.fnmatch(m, p) for p in patterns))
    assert not dropped, f"pmproxy's discovery drops {dropped} ({patterns})"
