"""Script headers: what a bpftrace script is called, needs and exports (pure, no I/O).

A script declares itself in ``//`` comment lines at its top, before the first
line of code, one ``key: value`` per line::

    // name: syscalls
    // description: System calls entered, by process name.
    // requires: tracepoint, btf
    // exports: @syscalls counter by comm unit count: system calls entered by this process name
    // exports: @syscalls_total counter unit count: system calls entered by all processes

Keys:
  name         required; ``[a-z][a-z0-9_]{0,39}`` (becomes part of metric names).
  description  required; one line for the admin.
  requires     optional; comma-separated features (tracepoint, kprobe, uprobe,
               btf, or a kernel module such as lustre).  Informational: the
               runner learns what really works from bpftrace itself.
  exports      repeatable; ``@var KIND [by KEY[,KEY...]] [unit UNIT]: help``
               KIND is counter (only grows), delta (a count() or sum() map
               that the script clear()s after each print, so that it never
               fills up: the agent adds the prints up and publishes the
               totals as a counter), instant (a level), histogram (bucket
               counts, which only grow) or string.  KEY names what a map key
               is (comm, device, address); a histogram's buckets are always an
               extra, last dimension.  UNIT is one of UNITS (for a histogram,
               the unit of the bucket bounds).
Other comment lines (blank ``//`` lines, prose) are ignored; unknown keys are
an error so that a typo does not silently lose an export.

bpftrace keeps at most 4,096 keys in a map (BPFTRACE_MAP_KEYS_MAX) and silently
drops events with new keys once it is full.  A map keyed by something without a
small bound (process names, addresses) must therefore be cleared after each print
and declared delta; a counter or histogram must never be cleared, or its values
would go backwards (see misdeclared_exports).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
VARIABLE_RE = re.compile(r"^@[A-Za-z_][A-Za-z0-9_]{0,63}$")
KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
KINDS = ("counter", "delta", "instant", "histogram", "string")
UNITS = ("none", "count", "bytes", "ns", "us", "ms", "s")
KEYS = ("name", "description", "requires", "exports")
PROBE_KIND_RE = re.compile(
    r"(?m)^\s*(kprobe|kretprobe|kfunc|kretfunc|fentry|fexit|uprobe|uretprobe|usdt|"
    r"tracepoint|rawtracepoint|software|hardware|profile|interval|watchpoint)(?=:)")
_LINE_RE = re.compile(r"^//\s*([A-Za-z_]+)\s*:\s*(.*?)\s*$")
_EXPORT_RE = re.compile(
    r"^(?P<var>@\S+)\s+(?P<kind>\S+)"
    r"(?:\s+by\s+(?P<keys>[^\s:]+))?"
    r"(?:\s+unit\s+(?P<unit>[^\s:]+))?"
    r"\s*:\s*(?P<help>.+)$")


class HeaderError(ValueError):
    """The header is malformed; the message is one sentence naming the line."""


@dataclass(frozen=True)
class Export:
    """One variable the script prints and the agent publishes."""

    variable: str                  # "@syscalls"
    kind: str                      # one of KINDS
    keys: tuple[str, ...] = ()     # what each map key is; () for a scalar/unkeyed hist
    unit: str = "none"
    help: str = ""

    @property
    def name(self) -> str:
        """The variable without its '@' (for metric names)."""
        return self.variable[1:]

    @property
    def metric_kind(self) -> str:
        """The data metric its values go to: a delta's running totals are a counter."""
        return "counter" if self.kind == "delta" else self.kind


@dataclass(frozen=True)
class Header:
    name: str
    description: str
    requires: tuple[str, ...] = ()
    exports: tuple[Export, ...] = ()
    probe_kinds: tuple[str, ...] = field(default=())   # probe types the body uses

    @property
    def deltas(self) -> frozenset[str]:
        """The variables declared delta (cleared after each print; the agent sums the prints)."""
        return frozenset(e.variable for e in self.exports if e.kind == "delta")

    def export(self, variable: str) -> Export | None:
        for e in self.exports:
            if e.variable == variable:
                return e
        return None


def valid_name(name: str) -> bool:
    """True for a script name that is safe as a file name and a metric name part."""
    return bool(NAME_RE.match(name or ""))


def probe_kinds(text: str) -> tuple[str, ...]:
    """The probe types a script's body attaches to (kprobe, tracepoint, ...), sorted."""
    body = re.sub(r"//[^\n]*", "", text)
    return tuple(sorted(set(PROBE_KIND_RE.findall(body))))


def _parse_export(value: str, lineno: int) -> Export:
    m = _EXPORT_RE.match(value)
    if not m:
        raise HeaderError(f"line {lineno}: exports must read '@var KIND [by KEY,...] "
                          f"[unit UNIT]: help', got {value!r}")
    var, kind, keys, unit = m["var"], m["kind"], m["keys"], m["unit"] or "none"
    if not VARIABLE_RE.match(var):
        raise HeaderError(f"line {lineno}: {var!r} is not a bpftrace map variable name")
    if kind not in KINDS:
        raise HeaderError(f"line {lineno}: kind {kind!r} of {var} is not one of "
                          f"{', '.join(KINDS)}")
    if unit not in UNITS:
        raise HeaderError(f"line {lineno}: unit {unit!r} of {var} is not one of "
                          f"{', '.join(UNITS)}")
    key_names = tuple(keys.split(",")) if keys else ()
    for key in key_names:
        if not KEY_RE.match(key):
            raise HeaderError(f"line {lineno}: key name {key!r} of {var} must be a lower-case word")
    return Export(var, kind, key_names, unit, m["help"].strip())


def parse_header(text: str) -> Header:
    """Parse the header of a script's text; raise HeaderError with one sentence if broken."""
    fields: dict[str, str] = {}
    requires: list[str] = []
    exports: list[Export] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue       # blank lines may separate header paragraphs
        if not line.startswith("//"):
            break          # the header ends at the first line of code
        m = _LINE_RE.match(line)
        if not m:
            continue       # prose comment
        key, value = m[1].lower(), m[2]
        if key not in KEYS:
            raise HeaderError(f"line {lineno}: unknown header key {key!r} "
                              f"(known: {', '.join(KEYS)})")
        if key == "exports":
            exports.append(_parse_export(value, lineno))
        elif key == "requires":
            requires.extend(r.strip() for r in value.split(",") if r.strip())
        elif key in fields:
            raise HeaderError(f"line {lineno}: header key {key!r} is given twice")
        else:
            fields[key] = value
    name = fields.get("name", "")
    if not name:
        raise HeaderError("the header has no '// name:' line")
    if not valid_name(name):
        raise HeaderError(f"script name {name!r} must be a lower-case word of letters, "
                          f"digits and '_', at most 40 characters")
    if not fields.get("description"):
        raise HeaderError(f"script {name}: the header has no '// description:' line")
    seen: set[str] = set()
    for e in exports:
        if e.variable in seen:
            raise HeaderError(f"script {name}: {e.variable} is exported twice")
        seen.add(e.variable)
    return Header(name, fields["description"], tuple(requires), tuple(exports),
                  probe_kinds(text))


def _body(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))


def unused_exports(header: Header, text: str) -> list[str]:
    """Exported variables that the script body never mentions (likely typos)."""
    body = _body(text)
    return [e.variable for e in header.exports
            if not re.search(re.escape(e.variable) + r"(?![A-Za-z0-9_])", body)]


_EMPTIED_RE = re.compile(r"\b(clear|zero)\(\s*(@[A-Za-z_][A-Za-z0-9_]*)\s*\)")


def misdeclared_exports(header: Header, text: str) -> list[str]:
    """Exports whose kind the body contradicts, one sentence each.

    A delta must be clear()ed (after its print), or each print would be added again; zero()
    keeps the keys, so the map still fills up.  A counter or histogram must not be cleared
    or zeroed: its values would go backwards, which a PCP counter never does.
    """
    emptied: dict[str, set[str]] = {}
    for how, variable in _EMPTIED_RE.findall(_body(text)):
        emptied.setdefault(variable, set()).add(how)
    problems = []
    for e in header.exports:
        how = emptied.get(e.variable, set())
        if e.kind == "delta" and "clear" not in how:
            problems.append(f"{e.variable} is declared delta but never clear()ed after its print, "
                            f"so every print would be counted again")
        elif e.kind in ("counter", "histogram") and how:
            fix = "delta (the agent adds the prints up)" if e.kind == "counter" else "instant"
            verbs = " and ".join(f"{verb}s" for verb in sorted(how))
            problems.append(f"{e.variable} is declared {e.kind} but the script {verbs} it, "
                            f"so its values would go backwards; declare it {fix}")
    return problems
