"""Tier 1: the dashboards are generated from the agents' tables, committed, and well formed."""
from __future__ import annotations

import json
import re

import pytest

from hpc_pcp import dashboards
from hpc_pcp.dashboards import boards, catalog
from hpc_pcp.dashboards.model import HISTORY, VALKEY, VECTOR, Board, Panel, Query

PANEL_TYPES = {"row", "timeseries", "stat", "bargauge", "table", "state-timeline", "heatmap"}
DASHBOARD_KEYS = {"uid": str, "title": str, "tags": list, "schemaVersion": int, "version": int,
                  "time": dict, "templating": dict, "annotations": dict, "panels": list, "links": list,
                  "editable": bool, "refresh": str, "timezone": str}


def test_committed_json_matches_generation():
    problems = dashboards.differences()
    assert not problems, "stale dashboards (run: python -m hpc_pcp.dashboards): " + "; ".join(problems)


def _boards() -> dict[str, dict]:
    return dashboards.generate()


@pytest.mark.parametrize("filename", sorted(dashboards.generate()))
def test_dashboard_structure(filename):
    """Grafana's dashboard model (schemaVersion 39): keys, types, ids, grid, datasources, variables."""
    board = _boards()[filename]
    for key, kind in DASHBOARD_KEYS.items():
        assert isinstance(board.get(key), kind), f"{filename}: {key} missing or not {kind.__name__}"
    assert board["schemaVersion"] >= 36 and re.fullmatch(r"[a-z0-9-]{1,40}", board["uid"])
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["history"]["type"] == "datasource" and variables["history"]["query"] == VALKEY
    assert variables["live"]["type"] == "datasource" and variables["live"]["query"] == VECTOR
    ids, cells = set(), set()
    for panel in board["panels"]:
        assert panel["type"] in PANEL_TYPES, panel["type"]
        assert panel["id"] not in ids, f"{filename}: duplicate panel id {panel['id']}"
        ids.add(panel["id"])
        grid = panel["gridPos"]
        assert set(grid) == {"x", "y", "w", "h"} and grid["x"] + grid["w"] <= 24 and grid["h"] > 0
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{filename}: panel {panel['title']!r} overlaps another"
                cells.add((x, y))
        if panel["type"] == "row":
            continue
        assert panel["targets"], f"{filename}: panel {panel['title']!r} has no query"
        assert panel["description"].strip() and panel["fieldConfig"]["defaults"]["unit"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(set(refs)) == len(refs)
        for target in panel["targets"]:
            assert target["datasource"]["uid"] in ("${history}", "${live}")
            assert target["datasource"]["type"] == panel["datasource"]["type"]
            assert target["format"] == "time_series" and target["expr"] and "legendFormat" in target
            used = set(re.findall(r"\$\{?(\w+)\}?", target["expr"] + target.get("hostspec", "")))
            undefined = used - set(variables)
            assert not undefined, f"{filename}: {target['expr']} uses undefined {undefined}"
    json.dumps(board)  # serialisable


def test_links_follow_summary_to_node_to_job():
    uids = {b["uid"] for b in _boards().values()}
    text = json.dumps(_boards())
    targets = set(re.findall(r"/d/([a-z0-9-]+)\?", text))
    assert targets, "no data links at all"
    # a link may point at a board whose agents are absent here, but never at an unknown uid
    assert targets <= set(boards.UIDS.values())
    cluster = json.dumps(_boards()["hpc-cluster.json"])
    assert "/d/hpc-node?" in cluster and "var-host=${__field.labels.hostname}" in cluster
    if "hpc-job" in uids:
        assert "/d/hpc-job?" in json.dumps(_boards()["hpc-node.json"]) + cluster


def test_every_query_names_a_table_metric():
    known = catalog.catalog()
    for filename, board in _boards().items():
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                metric = target["expr"].split("{", 1)[0]
                if metric.endswith("*"):
                    assert any(n.startswith(metric.rstrip("*")) for n in known), metric
                else:
                    assert metric in known, f"{filename}: {metric} is in no agent table"


def test_unknown_metric_fails_loudly():
    board = Board("t", "t", "t").row("r", Panel("timeseries", "bad", "d", [Query("hpc.ib.port.no_such")]))
    with pytest.raises(catalog.UnknownMetric, match="hpc.ib.port.no_such"):
        board.render()
    with pytest.raises(catalog.UnknownMetric):
        Board("t", "t", "t").row("r", Panel("stat", "x", "d", [Query("nosuch.metric")])).render()


def test_absent_agent_panels_are_dropped(monkeypatch):
    monkeypatch.setattr(catalog, "present", lambda agent: agent != "hpcib")
    board = Board("t", "t", "t").row(
        "ib", Panel("timeseries", "ib", "d", [Query("hpc.ib.total.xmit.bytes")])).row(
        "cpu", Panel("timeseries", "cpu", "d", [Query("kernel.all.cpu.user")])).render()
    titles = [p["title"] for p in board["panels"]]
    assert titles == ["cpu", "cpu"], titles   # the row and its panel; the ib row vanished


def test_units_follow_the_tables():
    board = Board("t", "t", "t").row("r", Panel("timeseries", "b", "d", [Query("hpc.ib.port.xmit.bytes")]),
                                     Panel("stat", "s", "d", [Query("hpc.ib.total.ports")], rate=False))
    panels = [p for p in board.render()["panels"] if p["type"] != "row"]
    assert panels[0]["fieldConfig"]["defaults"]["unit"] == "Bps"     # byte counter shown as a rate
    assert panels[1]["fieldConfig"]["defaults"]["unit"] == "short"
    assert panels[0]["datasource"] == HISTORY


def test_qualifiers_and_live_targets():
    q = Query("hpc.ib.port.xmit.bytes", {"hostname": "$host"}, "$instance")
    assert q.expr() == 'hpc.ib.port.xmit.bytes{hostname == "$host"}'
    live = Query("kernel.all.cpu.user", {"hostname": "$host"}, live=True).target("A")
    assert live["expr"] == "kernel.all.cpu.user" and live["hostspec"] == "${host}"
    assert live["datasource"]["type"] == VECTOR


def test_bpftrace_board_shows_every_numeric_kind_of_script_variable():
    """Histograms, counters, byte counters and levels (the agent's data.* metrics but text),
    each selected by host alone and named by instance: a script added live (its instances
    script:@variable:key) appears with no change to the board and no filter drops it."""
    from hpc_pcp.agents import available
    if "hpcbpftrace" not in available():
        pytest.skip("hpcbpftrace is not part of this installation")
    wanted = {n for n, i in catalog.catalog().items()
              if n.startswith("hpc.bpftrace.data.") and n != "hpc.bpftrace.data.string"}
    assert {"hpc.bpftrace.data.counter", "hpc.bpftrace.data.instant",
            "hpc.bpftrace.data.counter_bytes", "hpc.bpftrace.data.histogram"} <= wanted
    shown = {}
    for panel in _boards()["hpc-bpftrace.json"]["panels"]:
        for target in panel.get("targets", []):
            shown[target["expr"].split("{", 1)[0]] = (panel, target)
    assert wanted <= set(shown), sorted(wanted - set(shown))
    for name in wanted:
        panel, target = shown[name]
        assert target["expr"] == f'{name}{{hostname == "$host"}}' and target["legendFormat"] == "$instance"
        assert not panel["transformations"]
        assert target["options"]["rateConversion"] == (catalog.catalog()[name].is_counter)
    units = {n: shown[n][0]["fieldConfig"]["defaults"]["unit"] for n in wanted}
    assert units["hpc.bpftrace.data.counter_bytes"] == "Bps" and units["hpc.bpftrace.data.counter"] == "ops"
