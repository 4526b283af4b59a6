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


# ---- a panel's data as Grafana shows it: grafana-pcp's frames, then the panel's transformations

@dataclass
class Field:
    """One numeric field as grafana-pcp builds it: one instance of one series (a metric on one
    host), named by the target's legend; ``values`` are (seconds, value) oldest first."""

    name: str
    ref: str
    labels: dict[str, str]
    values: list[tuple[float, float]]
    series: str = ""   # pmproxy's id of the metric series (one metric on one host)


def _legend(legend: str, instance: str | None, labels: dict[str, str]) -> str:
    """grafana-pcp's legendFormat: $instance is the instance name, $<label> a label's value,
    an unknown $word stays as written."""
    def one(match: re.Match) -> str:
        word = match.group(1)
        if word == "instance" and instance is not None:
            return instance
        return labels.get(word, match.group(0))
    return re.sub(r"\$(\w+)", one, legend)


def _rates(values: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """grafana-pcp's rate conversion of a counter: per second between neighbours, none across a
    counter going back."""
    return [(t1, (v1 - v0) / (t1 - t0)) for (t0, v0), (t1, v1) in zip(values, values[1:], strict=False)
            if t1 > t0 and v1 >= v0]


def target_fields(get: Get, target: dict, values: dict[str, str], window: tuple[int, int]) -> list[Field]:
    """The fields grafana-pcp makes of a history target: /series/query, then every instance of
    every series it names (/series/values, /series/instances, /series/labels)."""
    series = get("/series/query", expr=substitute(target["expr"], values))
    assert isinstance(series, list), f"pmproxy refused {target['expr']}: {series}"
    if not series:
        return []
    descs = get("/series/descs", series=",".join(series))
    counter = {d["series"]: d["semantics"] == "counter" for d in descs}
    rate = target.get("options", {}).get("rateConversion", True)
    points = get("/series/values", series=",".join(series), start=window[0], finish=window[1])
    names = {i["instance"]: i["name"] for i in get("/series/instances", series=",".join(series))}
    labelled = get("/series/labels", series=",".join([*series, *names])) if names else \
        get("/series/labels", series=",".join(series))
    labels: dict[str, dict] = {}
    for entry in labelled:   # pmproxy 6.0.3 may split one id's labels over several entries
        labels.setdefault(entry["series"], {}).update(entry.get("labels", {}))
    by_field: dict[tuple[str, str | None], list[tuple[float, float]]] = {}
    for p in points:
        by_field.setdefault((p["series"], p.get("instance")), []).append(
            (p["timestamp"] / 1000.0, float(p["value"])))
    fields = []
    for (sid, inst), vals in sorted(by_field.items(), key=lambda kv: kv[0][0] + (kv[0][1] or "")):
        vals.sort()
        field_labels = {k: str(v) for k, v in {**labels.get(sid, {}), **labels.get(inst or "", {})}.items()}
        name = _legend(target["legendFormat"], names.get(inst) if inst else None, field_labels)
        fields.append(Field(name, target["refId"], field_labels,
                            _rates(vals) if rate and counter.get(sid) else vals, sid))
    return fields


def _js_replace(pattern: str, text: str, replacement: str) -> str:
    return re.sub(pattern, re.sub(r"\$(\d)", r"\\\1", replacement), text, count=1)


def transform(data: list, transformations: list[dict], values: dict[str, str]) -> list:
    """Apply the panel's transformations to fields, as Grafana 10.4 does, for the kinds our
    dashboards use: filterFieldsByName (byVariable), renameByRegex, reduce (lastNotNull, series
    to rows), groupBy (one group-by field, sum/max), sortBy, limit.  Fields in, rows (dicts)
    out once a reduce has run.  Any other transformation is an error: the model is partial."""
    for step in transformations:
        kind, options = step["id"], step["options"]
        if kind == "filterFieldsByName" and options.get("byVariable"):
            wanted = set(substitute(options["include"]["variable"], values).split(","))
            data = [f for f in data if f.name in wanted]
        elif kind == "renameByRegex":
            data = [Field(_js_replace(options["regex"], f.name, options["renamePattern"]), f.ref,
                          f.labels, f.values, f.series) for f in data]
        elif kind == "reduce" and options["reducers"] == ["lastNotNull"]:
            data = [{"Field": f.name, "Last *": f.values[-1][1]} for f in data if f.values]
        elif kind == "groupBy":
            (key,) = [k for k, o in options["fields"].items() if o["operation"] == "groupby"]
            aggregated = {k: o["aggregations"] for k, o in options["fields"].items()
                          if o["operation"] == "aggregate"}
            groups: dict[str, list[dict]] = {}
            for row in data:
                groups.setdefault(row[key], []).append(row)
            functions = {"sum": sum, "max": max}
            data = [{key: name, **{f"{k} ({a})": functions[a](r[k] for r in rows)
                                   for k, aggs in aggregated.items() for a in aggs}}
                    for name, rows in groups.items()]
        elif kind == "sortBy":
            (order,) = options["sort"]
            data = sorted(data, key=lambda r: r[order["field"]], reverse=order.get("desc", False))
        elif kind == "limit":
            data = data[:options["limitField"]]
        else:
            raise NotImplementedError(f"transformation {kind} {options} is not modelled here")
    return data


def panel_data(get: Get, board: str, title: str, values: dict[str, str], window: tuple[int, int]) -> list:
    """What the panel titled ``title`` of ``board`` (hpc-job.json, ...) shows: its targets' fields
    through its transformations."""
    panel = next(p for p in dashboards.generate()[board]["panels"] if p.get("title") == title)
    fields = [f for t in panel["targets"] for f in target_fields(get, t, values, window)]
    return transform(fields, panel["transformations"], values)
