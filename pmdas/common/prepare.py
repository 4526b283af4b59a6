"""Published snapshot → what a fetch answers from: values by PMID and instance id, plus the
instance names and label JSON of each instance domain.  Pure Python (no PCP bindings), so it
runs wherever the refresh runs: the agent's refresh thread, or its refresh process
(``pmdas.common.worker``), which then ships the result to the agent in pieces.
"""
from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import compress, repeat
from operator import is_, is_not, itemgetter
from typing import Any

from .names import RAW_LABEL, label_json, printable_raw, renamed
from .namespace import AgentTable
from .refresh import Published
from .table import DOUBLE, I32, I64, STRING, U32, U64, Column

_UNSIGNED_MAX = {U32: 2**32 - 1, U64: 2**64 - 1}
_SIGNED_RANGE = {I32: (-2**31, 2**31 - 1), I64: (-2**63, 2**63 - 1)}


def coerce(kind: str, value: Any) -> Any:
    """Convert an extracted value to what PCP expects for ``kind``; None if impossible."""
    if value is None:
        return None
    try:
        if kind == STRING:
            return encodable(value if isinstance(value, str) else str(value))
        if kind == DOUBLE:
            return float(value)
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if kind in _UNSIGNED_MAX:
        return number if 0 <= number <= _UNSIGNED_MAX[kind] else None
    low, high = _SIGNED_RANGE[kind]
    return number if low <= number <= high else None


def encodable(text: str) -> str:
    """``text``, with any lone surrogate (from hostile JSON: "\\ud800") written as an escape
    and any NUL replaced by U+FFFD: PCP's bindings hand strings to C as UTF-8 C strings, and
    one such value failed the fetch (PCP 6.0.3 then left the error pending for the next
    callback of the agent)."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return printable_raw(text)


def _all_encodable(values: Collection[str]) -> bool:
    joined = "".join(values)
    if "\x00" in joined:
        return False
    try:
        joined.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


_RANGE = {U32: (0, 2**32 - 1), U64: (0, 2**64 - 1), I32: _SIGNED_RANGE[I32], I64: _SIGNED_RANGE[I64]}


def by_instance_id(kind: str, raw: Mapping[str, Any], ids: Mapping[str, int],
                   idents: Sequence[int | None] | None = None) -> dict[int, Any]:
    """{instance name: value} (a dict or a Column) → {instance id: value as PCP wants it},
    leaving out instances ``ids`` does not know and values ``coerce`` refuses.

    The usual metric (every instance known, every value None or already of the right
    Python type and in range) is converted in bulk, with no Python call per value: a
    cluster's 50,000 jobs times twenty metrics are a million values per refresh.
    ``idents``: a Column's instance ids in the order of its names, if the caller has them
    (the columns of one snapshot share their names).
    """
    if isinstance(raw, Column):
        names, values = raw.names, raw.values
    else:
        names, values = raw.keys(), raw.values()
    if idents is None:
        idents = list(map(ids.get, names))
    if any(map(is_, values, repeat(None))):     # leave out the gaps first
        present = list(map(is_not, values, repeat(None)))
        idents, values = list(compress(idents, present)), list(compress(values, present))
    if not any(map(is_, idents, repeat(None))) and _needs_no_coercion(kind, values):
        try:
            converted = map(float, values) if kind == DOUBLE else values
            return dict(zip(idents, converted, strict=True))
        except OverflowError:  # an int too big for a double: let coerce() drop it
            pass
    out = {}
    for ident, v in zip(idents, values, strict=True):
        value = coerce(kind, v)
        if ident is not None and value is not None:
            out[ident] = value
    return out


def _needs_no_coercion(kind: str, values: Collection[Any]) -> bool:
    """True if coerce() would return every value unchanged (DOUBLE: float() of it)."""
    if not values:
        return True
    types = set(map(type, values))
    if kind == STRING:
        return types <= {str} and _all_encodable(values)
    if kind == DOUBLE:
        return types <= {float, int}
    if not types <= {int}:
        return False
    low, high = _RANGE[kind]
    return low <= min(values) and max(values) <= high


@dataclass
class Plain:
    """One refresh, ready to serve, in plain (picklable) Python.

    values:  pmid → value, or {instance id: value}
    ids:     indom id → {instance name: instance id}
    labels:  indom id → {instance id: label JSON}
    The same ``ids``/``labels`` object as in the previous Plain means "unchanged".
    """

    values: dict[int, Any] = field(default_factory=dict)
    ids: dict[int, dict[str, int]] = field(default_factory=dict)
    labels: dict[int, dict[int, str]] = field(default_factory=dict)


class Preparer:
    """Turns each Published snapshot into a Plain; remembers the last instance names and
    labels so that unchanged ones are passed on as the same objects (50,000 pending jobs
    often do not change between refreshes)."""

    def __init__(self, table: AgentTable):
        """``table``: the numbers and names the PMDA registered, whichever process this runs in."""
        self._pmids = table.numbered
        self._indom_ids = table.indom_ids
        self._full_name = table.full_name
        self._last_ids: dict[int, dict[str, int]] = {}
        self._label_memo: dict[int, tuple[dict, dict]] = {}

    def prepare(self, published: Published) -> Plain:
        plain = Plain()
        ids_by_indom: dict[str, dict[str, int]] = {}
        for name, instances in published.instances.items():
            indom_id = self._indom_ids[name]
            ids = dict(zip(instances, map(itemgetter(0), instances.values()), strict=True))
            ids_by_indom[name] = ids           # values are keyed by the source's own names
            labelled: Iterable[tuple[int, Mapping[str, Any]]] = instances.values()
            changes = renamed(ids.keys())      # what pmcd may be shown (pmdas/common/names.py)
            shown = ids
            if changes:
                shown = {changes.get(raw, raw): ident for raw, ident in ids.items()}
                labelled = [(ident, {**labels, RAW_LABEL: printable_raw(raw)} if raw in changes else labels)
                            for raw, (ident, labels) in instances.items()]
            last = self._last_ids.get(indom_id)
            if last == shown:
                shown = last
            self._last_ids[indom_id] = plain.ids[indom_id] = shown
            plain.labels[indom_id] = self._labels_json(indom_id, labelled)
        aligned: dict[tuple[str, int], list[int | None]] = {}  # ids in the order of shared names
        for metric, pmid in self._pmids:
            raw = published.values.get(self._full_name(metric))
            if metric.indom is None:
                value = coerce(metric.type, raw)
                if value is not None:
                    plain.values[pmid] = value
                continue
            ids = ids_by_indom.get(metric.indom, {})
            if isinstance(raw, Column):
                if not any(map(is_not, raw.values, repeat(None))):
                    continue   # no value at all, as an empty dict
                key = (metric.indom, id(raw.names))
                if key not in aligned:
                    aligned[key] = list(map(ids.get, raw.names))
                plain.values[pmid] = by_instance_id(metric.type, raw, ids, aligned[key])
            elif raw:
                plain.values[pmid] = by_instance_id(metric.type, raw, ids)
        return plain

    def _labels_json(self, indom_id: int,
                     instances: Iterable[tuple[int, Mapping[str, Any]]]) -> dict[int, str]:
        """{instance id: label JSON}; encoded again only for instances whose labels changed
        since the last refresh (a job's never do, and a cluster lists 50,000 jobs)."""
        old_labels, old_json = self._label_memo.get(indom_id, ({}, {}))
        labels_by_id: dict[int, Mapping[str, Any]] = dict(filter(itemgetter(1), instances))
        if labels_by_id == old_labels and indom_id in self._label_memo:
            return old_json
        json_by_id: dict[int, str] = {}
        for ident, labels in labels_by_id.items():
            text = old_json.get(ident)
            json_by_id[ident] = (text if text is not None and old_labels[ident] == labels
                                 else label_json(labels))
        self._label_memo[indom_id] = (labels_by_id, json_by_id)
        return json_by_id
