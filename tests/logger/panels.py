"""Every dashboard panel's queries, run the way grafana-pcp runs them, against any pmproxy.

``get(path, **params)`` answers one pmproxy REST call with decoded JSON: the live logger stack
(tests/logger/stack.py) on this machine, or a client inside another release's namespace
(tests/matrix).  ``window`` is the (start, finish) time range the series queries read.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hpc_pcp import dashboards
from hpc_pcp.dashboards import catalog

Get = Callable[..., Any]


def variables(board: dict) -> dict[str, str]:
    return {v["name"]: v["query"] for v in board["templating"]["list"] if v["type"] == "query"}


def label_variables() -> list[tuple[str, str, str]]:
    """(board uid, variable, label) of every template variable: each is a label_values() query."""
    found = []
    for board in dashboards.generate().values():
        for name, query in variables(board).items():
            label = re.fullmatch(r"label_values\((\w+)\)", query)
            assert label, f"{board['uid']}: variable {name} is not a label_values() query: {query}"
            found.append((board["uid"], name, label.group(1)))
    return found


def substitute(text: str, values: dict[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: values.get(m.group(1), m.group(0)), text)


def metric(expr: str) -> str:
    return expr.split("{", 1)[0]


def target_has_data(get: Get, target: dict, values: dict[str, str], where: str,
                    window: tuple[int, int]) -> bool:
    """True if the target returns data the way grafana-pcp asks for it."""
    expr = substitute(target["expr"], values)
    if target["datasource"]["type"] == "performancecopilot-vector-datasource":
        reply = get("/pmapi/fetch", hostspec=substitute(target["hostspec"], values), names=expr)
        return bool(reply.get("values") and reply["values"][0]["instances"])
    series = get("/series/query", expr=expr)
    assert isinstance(series, list), f"{where}: pmproxy refused the query: {series}"
    if not series:
        return False
    # a handful of series over the window at Grafana-like steps proves the data is there
    try:
        points = get("/series/values", series=",".join(series[:8]),
                     start=window[0], finish=window[1], interval=10)
    except AssertionError as exc:
        raise AssertionError(f"{where}: {exc}") from None
    return bool(points)


@dataclass
class PanelRun:
    panels: int = 0
    with_data: int = 0
    empty: list[str] = field(default_factory=list)


def run_every_panel(get: Get, values: dict[str, str], installed: set[str],
                    window: tuple[int, int], linux: bool = True) -> PanelRun:
    """Every panel of every dashboard; a panel of an installed agent (or of PCP's own Linux
    metrics, if ``linux``) that returns no data from any of its targets is listed in ``empty``."""
    run = PanelRun()
    for filename, board in dashboards.generate().items():
        for panel in board["panels"]:
            if panel["type"] == "row":
                continue
            run.panels += 1
            where = f"{filename} / {panel['title']}"
            results, ours = [], False
            for target in panel["targets"]:
                name = metric(target["expr"])
                agent = catalog.owner(name.rstrip("*") + "x" if name.endswith("*") else name)
                ours = ours or agent in installed or (linux and agent == catalog.LINUX)
                results.append(target_has_data(get, target, values, f"{where} / {target['expr']}", window))
            if not ours:
                continue
            if any(results):
                run.with_data += 1
            else:
                run.empty.append(where)
    return run
