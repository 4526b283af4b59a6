"""bpftrace ``-f json`` output lines → plain events (pure, no I/O, never raises).

Formats as bpftrace 0.17 prints them (fixtures in tests/hpcbpftrace/fixtures):

  {"type": "attached_probes", "data": {"probes": 2}}        printed *before* attaching
  {"type": "map", "data": {"@x": 5}}                        scalar (count/sum/min/max/assigned)
  {"type": "map", "data": {"@x": {"bash": 42, "cat": 7}}}   keyed; multi-keys joined with ','
  {"type": "map", "data": {"@t": [1, "a"]}}                 a tuple value
  {"type": "stats", "data": {"@a": 6841}}                   avg(); keyed: {"1": 3, ...}
  {"type": "stats", "data": {"@s": {"count": 1, "average": 4, "total": 4}}}   stats()
  {"type": "hist", "data": {"@h": [{"min": 0, "max": 0, "count": 1}, ...]}}   hist and lhist;
      keyed: {"@h": {"sda": [...]}}; below range: no "min"; above an lhist's range: no "max"
  {"type": "printf"|"time"|"value"|"cat"|"syscall", "data": "text"}
  {"type": "lost_events", "data": {"events": 14}}
  {"type": "helper_error", "helper": "probe_read", "retcode": -14, "line": 1, "col": 62}

Quirks handled: an empty map prints nothing at all; at exit bpftrace dumps every map
after two blank lines; non-ASCII bytes come out as invalid escapes such as
``\\uffffffc3`` (sign-extended chars), which are turned back into UTF-8 text; u64
values above 2**63 print as negative numbers (left as they are: bpftrace's bug).
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

TEXT_TYPES = ("printf", "time", "value", "cat", "syscall")
KEY_SEPARATOR = "|"    # between a map key and a bucket/statistic in flattened instance names
_BAD_ESCAPE = re.compile(r"(?<!\\)\\uffffff([0-9a-fA-F]{2})")


@dataclass(frozen=True)
class Bucket:
    """One histogram bucket: values in [low, high]; None means unbounded on that side."""

    low: int | None
    high: int | None
    count: int

    @property
    def name(self) -> str:
        """Stable instance name: '0', '2-3', '4-7', '<0' (below range), '>=100' (above)."""
        return bucket_name(self.low, self.high)


Histogram = tuple  # tuple[Bucket, ...], ordered from the lowest bucket up


@dataclass(frozen=True)
class Attached:
    probes: int


@dataclass(frozen=True)
class Variable:
    """The current value of one map, as last printed.

    kind "map":   value is a scalar (int, float, str, list) or {key: scalar}
    kind "stats": value is a number, {"count","average","total"}, or {key: either}
    kind "hist":  value is a Histogram, or {key: Histogram}
    """

    name: str      # "@syscalls"
    kind: str
    value: Any
    keyed: bool


@dataclass(frozen=True)
class Text:
    type: str      # one of TEXT_TYPES
    text: str


@dataclass(frozen=True)
class LostEvents:
    events: int


@dataclass(frozen=True)
class HelperError:
    helper: str
    retcode: int
    line: int
    col: int


Event = Attached | Variable | Text | LostEvents | HelperError
_STATS_FIELDS = frozenset(("count", "average", "total"))


def bucket_name(low: int | None, high: int | None) -> str:
    if low is None and high is None:
        return "all"
    if low is None:
        return f"<{high + 1}"
    if high is None:
        return f">={low}"
    return str(low) if low == high else f"{low}-{high}"


def bucket_bounds(name: str) -> tuple[float, float]:
    """The inverse of bucket_name, for sorting instance names (unknown names sort last)."""
    inf = float("inf")
    try:
        if name == "all":
            return (-inf, inf)
        if name.startswith("<"):
            return (-inf, int(name[1:]) - 1)
        if name.startswith(">="):
            return (int(name[2:]), inf)
        m = re.fullmatch(r"(-?\d+)(?:-(-?\d+))?", name)
        if m:
            low = int(m[1])
            return (low, int(m[2]) if m[2] is not None else low)
    except ValueError:
        pass
    return (inf, inf)


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def _histogram(raw: Any) -> Histogram | None:
    if not isinstance(raw, list):
        return None
    buckets = []
    for item in raw:
        if not isinstance(item, dict):
            return None
        count = _int(item.get("count"))
        low, high = item.get("min"), item.get("max")
        if count is None or (low is not None and _int(low) is None) \
                or (high is not None and _int(high) is None):
            return None
        buckets.append(Bucket(low, high, count))
    return tuple(buckets)


def _scalar(value: Any) -> bool:
    if isinstance(value, (bool, int, float, str)):
        return True
    return isinstance(value, list) and all(isinstance(v, (int, float, str)) for v in value)


def _stats_value(value: Any) -> bool:
    if isinstance(value, dict):
        return set(value) == _STATS_FIELDS and all(_int(v) is not None for v in value.values())
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# json.loads makes exact types, so a keyed map's values are checked by the set of their
# types (one C pass over 10,000 keys) and only the odd ones (tuples, stats) one by one.
_SCALAR_TYPES = frozenset((bool, int, float, str))
_NUMBER_TYPES = frozenset((int, float))


def _all_scalars(values: Any) -> bool:
    types = set(map(type, values))
    if types <= _SCALAR_TYPES:
        return True
    return types <= _SCALAR_TYPES | {list} and all(map(_scalar, values))


def _all_stats(values: Any) -> bool:
    types = set(map(type, values))
    return types <= _NUMBER_TYPES or (types <= _NUMBER_TYPES | {dict} and all(map(_stats_value, values)))


def _variable(kind: str, data: Any) -> Variable | None:
    if not isinstance(data, dict) or len(data) != 1:
        return None
    (name, raw), = data.items()
    if not isinstance(name, str) or not name.startswith("@"):
        return None
    if kind == "hist":
        hist = _histogram(raw)
        if hist is not None:
            return Variable(name, kind, hist, False)
        if isinstance(raw, dict):
            keyed = {k: _histogram(v) for k, v in raw.items()}
            if all(h is not None for h in keyed.values()):
                return Variable(name, kind, keyed, True)
        return None
    # JSON object keys are always str: a keyed map is kept as json.loads made it, no copy.
    if kind == "stats":
        if _stats_value(raw):
            return Variable(name, kind, raw, False)
        if isinstance(raw, dict) and _all_stats(raw.values()):
            return Variable(name, kind, raw, True)
        return None
    if _scalar(raw):
        return Variable(name, kind, raw, False)
    if isinstance(raw, dict) and _all_scalars(raw.values()):
        return Variable(name, kind, raw, True)
    return None


def _repair_text(value: Any) -> Any:
    """Undo the latin-1 view of UTF-8 bytes left by the \\uffffffXX repair."""
    if isinstance(value, str):
        try:
            return value.encode("latin-1").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            return value
    if isinstance(value, list):
        return [_repair_text(v) for v in value]
    if isinstance(value, dict):
        return {_repair_text(k): _repair_text(v) for k, v in value.items()}
    return value


def parse_line(line: str | bytes) -> Event | None:
    """One output line → an event, or None for blank, malformed or unknown lines."""
    try:
        if isinstance(line, bytes):
            line = line.decode("utf-8", "replace")
        line = line.strip()
        if not line.startswith("{"):
            return None
        repaired = False
        if "\\uffffff" in line:
            line, n = _BAD_ESCAPE.subn(r"\\u00\1", line)
            repaired = n > 0
        obj = json.loads(line)
        if not isinstance(obj, dict):
            return None
        if repaired:
            obj = _repair_text(obj)
        return _event(obj)
    except (ValueError, TypeError, AttributeError, RecursionError):
        return None


# How bpftrace 0.17 starts every print of a map: type, then the one variable's name.
_PRINT_HEAD = re.compile(rb'\{"type": "(?:map|hist|stats)", "data": \{"(@[A-Za-z_][A-Za-z0-9_]*)": ')


def printed_variable(line: bytes) -> str | None:
    """The variable a map print is of, read from the line's first bytes without decoding it.

    A script may print a 10,000-key map every second while the agent refreshes every
    10 s: the reader keeps each variable's latest print as bytes and only that one is
    decoded (parse_line), when a refresh asks for the values.  None for any other line,
    or one not laid out exactly as bpftrace prints it: those are parsed at once.
    """
    m = _PRINT_HEAD.match(line)
    return m[1].decode("ascii") if m else None


def _event(obj: Mapping[str, Any]) -> Event | None:
    kind, data = obj.get("type"), obj.get("data")
    if kind in ("map", "stats", "hist"):
        return _variable(kind, data)
    if kind in TEXT_TYPES:
        return Text(kind, data) if isinstance(data, str) else None
    if kind == "attached_probes" and isinstance(data, dict):
        probes = _int(data.get("probes"))
        return Attached(probes) if probes is not None else None
    if kind == "lost_events" and isinstance(data, dict):
        events = _int(data.get("events"))
        return LostEvents(events) if events is not None else None
    if kind == "helper_error":
        fields = [obj.get(k) for k in ("retcode", "line", "col")]
        if isinstance(obj.get("helper"), str) and all(_int(f) is not None for f in fields):
            return HelperError(obj["helper"], *fields)
    return None


def flatten(variable: Variable) -> Any:
    """A Variable as PCP sees it: a single value, or {instance name: value}.

    Histograms become {bucket name: count} ('0', '1', '2-3', '4-7', ...), in
    bucket order; keyed ones '{key}|{bucket}'.  stats() becomes
    {'count','average','total'} (keyed: '{key}|count', ...).  Keyed maps keep
    bpftrace's key text (multi-keys joined with ',').
    """
    value = variable.value
    if variable.kind == "hist":
        if not variable.keyed:
            return {b.name: b.count for b in value}
        return {f"{key}{KEY_SEPARATOR}{b.name}": b.count
                for key, hist in value.items() for b in hist}
    if variable.kind == "stats":
        if not variable.keyed:
            return dict(value) if isinstance(value, dict) else value
        out: dict[str, Any] = {}
        for key, v in value.items():
            if isinstance(v, dict):
                out.update({f"{key}{KEY_SEPARATOR}{f}": n for f, n in v.items()})
            else:
                out[key] = v
        return out
    return dict(value) if variable.keyed else value
