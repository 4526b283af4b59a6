"""Small builders for Grafana dashboard JSON as the grafana-pcp plugin reads it.

Plain dictionaries, not an SDK: the JSON is the product (committed, diffed,
imported by hand), so the code stays a thin, readable layer over it.  Every
query names its metric through the catalog, so a panel can only show metrics
that an agent table defines; queries of agents absent from this installation
are dropped, and a panel left without queries is dropped with them.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import catalog

VALKEY = "performancecopilot-valkey-datasource"     # history: pmproxy /series/* (Valkey or Redis)
VECTOR = "performancecopilot-vector-datasource"     # live: pmproxy /pmapi/* → pmcd of one host
BPFTRACE = "performancecopilot-bpftrace-datasource"
HISTORY = {"type": VALKEY, "uid": "${history}"}
LIVE = {"type": VECTOR, "uid": "${live}"}

GRAFANA_VERSION = "10.4.0"      # oldest Grafana the JSON is written for
SCHEMA_VERSION = 39             # Grafana 10.4's dashboard schemaVersion
PLUGIN_VERSION = "5.2.0"        # grafana-pcp: first release with the Valkey data source


@dataclass(frozen=True)
class Query:
    """One panel target: a metric, label qualifiers (pmseries syntax) and a legend."""

    metric: str
    where: Mapping[str, str] = field(default_factory=dict)   # label → value (may hold $variables)
    legend: str = "$instance"
    live: bool = False        # vector (pmapi, one host, now) instead of valkey (series, history)
    glob: bool = False        # metric is a name pattern (hpc.alarm.*): checked against the agent root
    # label → glob patterns (pmseries ~~), any of which may match
    like: Mapping[str, Sequence[str]] = field(default_factory=dict)

    @property
    def agent(self) -> str:
        return catalog.owner(self.metric.rstrip("*").rstrip(".") + ".x" if self.glob else self.metric)

    def expr(self) -> str:
        if self.live or not (self.where or self.like):
            return self.metric
        if self.where and self.like or len(self.like) > 1:
            raise ValueError(f"{self.metric}: one 'like' qualifier alone (pmseries has no "
                             "grouping to AND it with others)")
        qualifiers = ", ".join(f'{label} == "{value}"' for label, value in self.where.items())
        for label, patterns in self.like.items():
            qualifiers = " || ".join(f'{label} ~~ "{pattern}"' for pattern in patterns)
        return f"{self.metric}{{{qualifiers}}}"

    def target(self, ref: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "refId": ref, "datasource": LIVE if self.live else HISTORY,
            "expr": self.expr(), "format": "time_series", "legendFormat": self.legend,
        }
        if self.live:
            out["hostspec"] = "${host}"
        return out


@dataclass
class Panel:
    """A panel before layout: kind, title, queries and display settings."""

    kind: str                      # timeseries, stat, bargauge, table, state-timeline, heatmap
    title: str
    description: str
    queries: Sequence[Query]
    unit: str | None = None
    rate: bool = True              # let grafana-pcp convert counters to rates
    width: int = 12
    height: int = 8
    stack: bool = False
    links: Sequence[Mapping[str, Any]] = ()
    options: Mapping[str, Any] = field(default_factory=dict)
    transformations: Sequence[Mapping[str, Any]] = ()
    overrides: Sequence[Mapping[str, Any]] = ()
    # Grafana's relative time override ("5m": this panel reads the last 5 minutes whatever the
    # board's range): grafana-pcp then asks pmproxy for that window's values only (plus two
    # minutes before, one after), where a whole-series query would read the board's 3 hours.
    time_from: str | None = None
    # Grafana's "Min interval" ("1m"): the step grafana-pcp passes to pmproxy, which then returns
    # one sample per step, not every one pmlogger took (a 3-hour view of 1,000 hosts at 10 s is
    # a million points a metric; at 1 minute, a sixth).
    min_interval: str | None = None

    def usable_queries(self) -> list[Query]:
        """Queries of present agents; raises UnknownMetric for names no table has."""
        usable = []
        for q in self.queries:
            if not catalog.present(q.agent):
                continue
            if q.glob:
                root = q.metric.rstrip("*").rstrip(".")
                if not any(name.startswith(root + ".") for name in catalog.catalog()):
                    raise catalog.UnknownMetric(f"pattern {q.metric!r} matches no metric of {q.agent}")
            else:
                catalog.lookup(q.metric)
            usable.append(q)
        return usable

    def default_unit(self, queries: Sequence[Query]) -> str:
        if self.unit:
            return self.unit
        first = next((q for q in queries if not q.glob), None)
        if first is None:
            return "short"
        info = catalog.lookup(first.metric)
        return catalog.grafana_unit(info, rate=self.rate and info.is_counter)

    def render(self, panel_id: int, x: int, y: int) -> dict[str, Any] | None:
        queries = self.usable_queries()
        if not queries:
            return None
        datasource = LIVE if all(q.live for q in queries) else HISTORY
        if any(q.live for q in queries) and not all(q.live for q in queries):
            raise ValueError(f"panel {self.title!r} mixes live and history queries")
        defaults: dict[str, Any] = {"unit": self.default_unit(queries)}
        if self.links:
            defaults["links"] = list(self.links)
        if self.kind == "timeseries":
            defaults["custom"] = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10,
                                  "stacking": {"mode": "normal" if self.stack else "none", "group": "A"}}
        targets = []
        for i, q in enumerate(queries):
            target = q.target(chr(ord("A") + i))
            target["options"] = {"rateConversion": self.rate, "timeUtilizationConversion": self.rate}
            targets.append(target)
        out = {
            "id": panel_id, "type": self.kind, "title": self.title, "description": self.description,
            "datasource": datasource, "gridPos": {"x": x, "y": y, "w": self.width, "h": self.height},
            "targets": targets, "fieldConfig": {"defaults": defaults, "overrides": list(self.overrides)},
            "options": dict(self.options), "transformations": list(self.transformations),
        }
        if self.time_from:
            out["timeFrom"] = self.time_from
        if self.min_interval:
            out["interval"] = self.min_interval
        return out


def top(limit: int, field_name: str = "Last *") -> list[dict[str, Any]]:
    """Transformations that keep the ``limit`` largest series by their last value (top-N tables)."""
    return [
        {"id": "reduce", "options": {"reducers": ["lastNotNull"], "labelsToFields": False}},
        {"id": "sortBy", "options": {"sort": [{"field": field_name, "desc": True}]}},
        {"id": "limit", "options": {"limitField": limit}},
    ]


def only_named(variable: str) -> dict[str, Any]:
    """Keep the fields whose name is the value of ``variable`` (Grafana's filter by variable).

    A pmseries qualifier selects series, and a series is one metric on one host with all its
    instances: ``{instance.name == "4242"}`` brings every job of the hosts that ran 4242."""
    return {"id": "filterFieldsByName",
            "options": {"byVariable": True, "include": {"variable": f"${variable}"}}}


def after_slash() -> dict[str, Any]:
    """Rename fields named <prefix>/<rest> to <rest> (a Lustre job instance scratch/4242 → 4242)."""
    return {"id": "renameByRegex", "options": {"regex": "^[^/]*/(.*)$", "renamePattern": "$1"}}


# A raw Lustre job id of a Slurm job (what hpclustre's job_by_host names instances by, and
# every instance before it folded ids into jobs): 4242:1000:cn017, SLURM_JOB4242:0:node, 4242.1.
SLURM_JOB_ID = r"^(?:SLURM_JOB(?:_ID)?[=_]?|slurm[-_]?|job[-_]?)?(\d+)(?:[.:_].*)?$"


def job_of_id() -> dict[str, Any]:
    """Rename fields named by a raw Slurm job id to the job id (4242:1000:cn017 → 4242)."""
    return {"id": "renameByRegex", "options": {"regex": SLURM_JOB_ID, "renamePattern": "$1"}}


def summed(field_name: str = "Last *", aggregation: str = "sum") -> list[dict[str, Any]]:
    """Transformations that sum (or ``aggregation``) the last value of the fields of one name
    over every series: one row per name (a job's value on each of its nodes or servers → the
    job's total)."""
    return [
        {"id": "reduce", "options": {"reducers": ["lastNotNull"], "labelsToFields": False}},
        {"id": "groupBy", "options": {"fields": {
            "Field": {"aggregations": [], "operation": "groupby"},
            field_name: {"aggregations": [aggregation], "operation": "aggregate"}}}},
    ]


def top_summed(limit: int, field_name: str = "Last *") -> list[dict[str, Any]]:
    """``summed``, then the ``limit`` largest sums (top-N over every node or server)."""
    total = f"{field_name} (sum)"
    return [*summed(field_name),
            {"id": "sortBy", "options": {"sort": [{"field": total, "desc": True}]}},
            {"id": "limit", "options": {"limitField": limit}}]


def named_by_query(names: Mapping[str, str]) -> list[dict[str, Any]]:
    """Field overrides: the display name of each query's fields (refId → name, which may hold
    ${__field.labels.X}); overrides win over names set by transformations."""
    return [{"matcher": {"id": "byFrameRefID", "options": ref},
             "properties": [{"id": "displayName", "value": name}]} for ref, name in names.items()]


def link(title: str, uid: str, variables: str = "") -> dict[str, Any]:
    """A data link to another of our dashboards, keeping the time range."""
    return {"title": title, "url": f"/d/{uid}?${{__url_time_range}}{variables}", "targetBlank": False}


def datasource_variable(name: str, plugin: str, label: str) -> dict[str, Any]:
    return {"type": "datasource", "name": name, "label": label, "query": plugin, "hide": 0,
            "refresh": 1, "regex": "", "current": {}, "options": [], "skipUrlSync": False}


def query_variable(name: str, label: str, query: str, multi: bool = False) -> dict[str, Any]:
    """A variable filled by the Valkey data source (label_values(...), metrics(...))."""
    return {"type": "query", "name": name, "label": label, "datasource": HISTORY, "query": query,
            "definition": query, "refresh": 2, "sort": 1, "multi": multi, "includeAll": False,
            "hide": 0, "regex": "", "current": {}, "options": [], "skipUrlSync": False}


@dataclass
class Board:
    """A dashboard: rows of panels laid out left to right on Grafana's 24-column grid."""

    uid: str
    title: str
    description: str
    variables: Sequence[Mapping[str, Any]] = ()
    links: Sequence[Mapping[str, Any]] = ()
    rows: list[tuple[str, list[Panel]]] = field(default_factory=list)

    def row(self, title: str, *panels: Panel) -> Board:
        self.rows.append((title, list(panels)))
        return self

    def render(self) -> dict[str, Any]:
        panels: list[dict[str, Any]] = []
        y = 0
        next_id = 1
        for title, row_panels in self.rows:
            rendered_row: list[dict[str, Any]] = []
            x, row_y, row_height = 0, y + 1, 0
            for spec in row_panels:
                if x + spec.width > 24:
                    x, row_y, row_height = 0, row_y + row_height, 0
                out = spec.render(next_id + 1 + len(rendered_row), x, row_y)
                if out is None:
                    continue
                rendered_row.append(out)
                x += spec.width
                row_height = max(row_height, spec.height)
            if not rendered_row:
                continue
            panels.append({"id": next_id, "type": "row", "title": title, "collapsed": False,
                           "gridPos": {"x": 0, "y": y, "w": 24, "h": 1}, "panels": []})
            panels.extend(rendered_row)
            next_id += 1 + len(rendered_row)
            y = row_y + row_height
        return {
            "__requires": [
                {"type": "grafana", "id": "grafana", "name": "Grafana", "version": GRAFANA_VERSION},
                {"type": "app", "id": "performancecopilot-pcp-app", "name": "Performance Co-Pilot",
                 "version": PLUGIN_VERSION},
            ],
            "uid": self.uid, "title": self.title, "description": self.description,
            "tags": ["pcp-hpc"], "editable": True, "graphTooltip": 1, "timezone": "browser",
            "schemaVersion": SCHEMA_VERSION, "version": 1, "refresh": "30s",
            "time": {"from": "now-3h", "to": "now"}, "timepicker": {}, "fiscalYearStartMonth": 0,
            "liveNow": False, "weekStart": "",
            "annotations": {"list": [{
                "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True,
                "hide": True, "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts",
                "type": "dashboard"}]},
            "links": list(self.links),
            "templating": {"list": list(self.variables)},
            "panels": panels,
        }
