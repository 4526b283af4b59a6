"""Script variables → the instances, labels and values of hpc.bpftrace.data.*, kept across refreshes.

Each refresh turns the latest print of every running script's maps into five tables,
one per metric kind (counter, instant, histogram, string, counter_bytes): instance names, a label
dict per instance, and values aligned with the names.  Scripts print the same keys
again and again (10,000 pids or slots, a few devices' buckets), so a variable's
instance names and labels are built when it first appears and kept while its set of
keys stays the same; a refresh then only gathers the new values in the kept order,
with C loops (``map(dict.get, kept keys)``).  A key that appears or disappears
rebuilds that variable's list, reusing the names and labels of the keys it already
had, so a map whose keys churn a little costs little.  A table whose variables all
kept their instances is handed out with the very same names tuple and labels dict,
which lets the PCP glue see by identity that nothing changed (no rebuilt instance
arrays or label JSON).  A variable not printed again since the last refresh costs
nothing at all.

Label dicts are shared between refreshes: readers must not change them.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from operator import is_
from typing import Any

from .output import KEY_SEPARATOR, Variable, bucket_bounds, flatten

KINDS = ("counter", "instant", "histogram", "string", "counter_bytes")


@dataclass(frozen=True)
class KindTable:
    """The instances of one data metric: ``values[i]`` belongs to ``names[i]``."""

    names: tuple[str, ...] = ()
    values: Sequence[Any] = ()
    labels: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(zip(self.names, self.values, strict=True))


EMPTY = {kind: KindTable() for kind in KINDS}


class _Segment:
    """The instances of one variable that go to one metric kind."""

    __slots__ = ("kind", "subkeys", "names", "labels", "values")

    def __init__(self, kind: str, subkeys: tuple, names: tuple, labels: tuple, values: list):
        self.kind, self.subkeys, self.names, self.labels, self.values = kind, subkeys, names, labels, values


class _Exported:
    """One script variable as last published: its segments and where they came from."""

    __slots__ = ("source", "kind", "unit", "segments", "known")

    def __init__(self, kind: str, unit: str):
        self.source: Variable | None = None     # the print the segments were built from
        self.kind, self.unit = kind, unit       # declared metric kind and unit
        self.segments: list[_Segment] = []
        self.known: dict[str, tuple[str, dict]] = {}   # subkey → (instance name, labels)


def _target(kind: str, types: set) -> str | None:
    """Where values of these types go: text to 'string', the rest to ``kind``; None if mixed."""
    if str not in types:
        return kind
    return "string" if len(types) == 1 else None


class DataTable:
    """Keeps every exported variable's instances between refreshes (one refresh at a time)."""

    def __init__(self) -> None:
        self._variables: dict[tuple[str, str], _Exported] = {}
        self._tables: dict[str, KindTable] = dict(EMPTY)
        self._parts: dict[str, list[tuple]] = {kind: [] for kind in KINDS}

    def update(self, scripts: Mapping[str, Any],
               values: Mapping[str, Mapping[str, Variable]]) -> dict[str, KindTable]:
        """``scripts``: {name: registry.Script}; ``values``: {script: {'@var': Variable}}.

        Returns {kind: KindTable}; scripts missing from ``scripts`` are left out.
        """
        seen: dict[tuple[str, str], _Exported] = {}
        for name, variables in values.items():
            script = scripts.get(name)
            if script is None:
                continue
            declared = {e.variable: (_metric_kind(e), e.unit) for e in script.header.exports} \
                if script.header else {}
            for variable in variables.values():
                kind, unit = _declared_kind(variable, declared)
                ident = (name, variable.name)
                entry = self._variables.get(ident)
                if entry is None or (entry.kind, entry.unit) != (kind, unit):
                    entry = _Exported(kind, unit)
                if entry.source is not variable:
                    _refresh(entry, name, variable)
                seen[ident] = entry
        self._variables = seen
        segments: dict[str, list[_Segment]] = {kind: [] for kind in KINDS}
        for entry in seen.values():
            for segment in entry.segments:
                segments[segment.kind].append(segment)
        self._tables = {kind: self._table(kind, segments[kind]) for kind in KINDS}
        return self._tables

    def _table(self, kind: str, segments: list[_Segment]) -> KindTable:
        previous, parts = self._tables[kind], self._parts[kind]
        names_now = [s.names for s in segments]
        values = (segments[0].values if len(segments) == 1
                  else tuple(chain.from_iterable(s.values for s in segments)))
        if len(parts) == len(names_now) and all(map(is_, parts, names_now)):
            return KindTable(previous.names, values, previous.labels)
        self._parts[kind] = names_now            # holds them, so identity stays meaningful
        names = names_now[0] if len(segments) == 1 else tuple(chain.from_iterable(names_now))
        labels = dict(zip(names, chain.from_iterable(s.labels for s in segments), strict=True))
        return KindTable(names, values, labels)


def _metric_kind(export: Any) -> str:
    """The data metric a declared variable goes to: counters of bytes have a metric with byte
    units (data.counter_bytes), so that PCP scales and converts them as bytes."""
    kind = export.metric_kind
    return "counter_bytes" if kind == "counter" and export.unit == "bytes" else kind


def _declared_kind(variable: Variable, declared: dict[str, tuple[str, str]]) -> tuple[str, str]:
    """(metric kind, unit) for a variable: what the header declares, else by its shape."""
    if variable.name in declared:
        return declared[variable.name]
    if variable.kind == "hist":
        return "histogram", "none"
    return "instant", "none"


def _refresh(entry: _Exported, script: str, variable: Variable) -> None:
    """Bring ``entry`` up to the print ``variable``: values only, if its keys did not change."""
    entry.source = variable
    # A keyed map is already {key: value}; histograms and stats are flattened first.
    flat = variable.value if variable.keyed and variable.kind == "map" else flatten(variable)
    if not isinstance(flat, dict):
        _scalar(entry, script, variable.name, flat)
        return
    if len(entry.segments) == 1:
        segment = entry.segments[0]
        if len(flat) == len(segment.subkeys):
            got = list(map(flat.get, segment.subkeys))
            types = set(map(type, got))
            # Same count and every kept key present: the same key set.
            if type(None) not in types and _target(entry.kind, types) == segment.kind:
                segment.values = tuple(got)
                return
    _rebuild(entry, script, variable.name, flat)


def _scalar(entry: _Exported, script: str, name: str, value: Any) -> None:
    if isinstance(value, dict | list):          # a tuple value: nothing PCP can hold
        entry.segments = []
        return
    kind = "string" if isinstance(value, str) else entry.kind
    old = entry.segments[0] if len(entry.segments) == 1 else None
    if old is not None and old.kind == kind and not old.subkeys and len(old.names) == 1:
        old.values = (value,)
        return
    labels = {"script": script, "variable": name, "unit": entry.unit}
    entry.segments = [_Segment(kind, (), (f"{script}:{name}",), (labels,), (value,))]
    entry.known = {}


def _rebuild(entry: _Exported, script: str, name: str, flat: dict[str, Any]) -> None:
    """New instance lists for a variable whose keys changed (names and labels of kept keys reused)."""
    histogram = entry.kind == "histogram"
    subkeys = list(flat)
    if histogram:       # by key, then in bucket order, whatever order bpftrace printed them in
        subkeys.sort(key=_bucket_order)
    known, old = {}, entry.known
    grouped: dict[str, tuple[list, list, list, list]] = {}
    for sub in subkeys:
        instance = old.get(sub)
        if instance is None:
            labels = {"script": script, "variable": name, "unit": entry.unit}
            if histogram:
                key, _, bucket = sub.rpartition(KEY_SEPARATOR)
                if key:
                    labels["key"] = key
                labels["bucket"] = bucket
            else:
                labels["key"] = sub
            instance = (f"{script}:{name}:{sub}", labels)
        known[sub] = instance
        value = flat[sub]
        group = grouped.setdefault("string" if isinstance(value, str) else entry.kind, ([], [], [], []))
        group[0].append(sub)
        group[1].append(instance[0])
        group[2].append(instance[1])
        group[3].append(value)
    entry.known = known
    entry.segments = [_Segment(kind, tuple(s), tuple(n), tuple(lb), tuple(v))
                      for kind, (s, n, lb, v) in grouped.items()]
    if not entry.segments:       # an empty map: keep an empty segment so its keys can return
        entry.segments = [_Segment(entry.kind, (), (), (), ())]


def _bucket_order(sub: str) -> tuple:
    key, _, bucket = sub.rpartition(KEY_SEPARATOR)
    return key, bucket_bounds(bucket)
