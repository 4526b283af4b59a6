"""Instance names from hostile sources made safe for PCP, in one place for every agent.

Node users choose many instance names: job names, DTN run names, Lustre job ids, process
names, PBS comments.  Two things must hold before a name reaches pmcd:

* printable ASCII only.  A newline in an instance name ends a line wherever the name is
  pasted: pmie substitutes ``%i`` verbatim into its actions, log lines, shell here-documents.
  A lone surrogate (a JSON ``"\\ud800"``) cannot even be encoded, so the whole refresh would
  fail to publish.  And any byte above 0x7f breaks PCP 6.0.3's clients: pmproxy's /series
  replies write it as ``\\xc3`` (no JSON parser accepts that, so every Grafana panel reading
  the metric fails), its /pmapi replies as one U+FFFD per byte, Debian 12's Python binding
  drops it.  Every other character is written as a Python escape (``\\n``, ``\\x1b``,
  ``\\u00e9``, ``\\U0001f600``): a job called "résumé" is served as ``r\\xe9sum\\xe9``; a name
  longer than MAX_NAME characters is cut and ends in ``~`` and a digest of the whole.
* PCP's rule that the part of an instance name before its first space is unique (pmie,
  pmval -i and archives match instances by it).  Names that share a first word ("Not
  Running: ..." for every held PBS job) get a short digest of the whole name appended to
  the first word, the same on every refresh, so each keeps one instance id.

A changed name keeps its original text in the instance label ``raw_name`` (with any
unencodable character escaped), so nothing the source said is lost.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection, Mapping
from itertools import repeat
from operator import contains
from typing import Any

RAW_LABEL = "raw_name"
# ASCII control characters as escapes; the rest of what is not ASCII, by backslashreplace.
_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7f)} | {
    ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"}


MAX_NAME = 200     # characters of a served name; a longer one ends in "~" and a digest


def clean_text(text: str) -> str:
    """``text`` in printable ASCII, every other character as a Python escape, and at most
    MAX_NAME characters (escapes make a name up to ten times longer than its source's cap)."""
    if not (text.isascii() and text.isprintable()):
        text = text.translate(_CONTROLS).encode("ascii", "backslashreplace").decode("ascii")
    if len(text) <= MAX_NAME:
        return text
    head = text[:MAX_NAME - 9]
    cut = head.rfind("\\", len(head) - 9)        # never end in half an escape
    return f"{head[:cut] if cut >= 0 else head}~{_digest(text)}"


def _digest(text: str) -> str:
    return hashlib.blake2s(text.encode("utf-8", "surrogatepass"), digest_size=4).hexdigest()


def printable_raw(text: str) -> str:
    """The original text for a label: JSON escapes control characters; lone surrogates,
    which no UTF-8 encoder accepts, are written as \\udXXX."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _first_word(name: str) -> str:
    return name.split(" ", 1)[0]


def renamed(names: Collection[str]) -> dict[str, str]:
    """{raw name: safe name} for the names that must change; empty in the usual case
    (checked by C loops for a cluster's 50,000 jobs)."""
    if all(map(str.isprintable, names)) and not any(map(contains, names, repeat(" "))) \
            and "".join(names).isascii() and max(map(len, names), default=0) <= MAX_NAME:
        return {}
    groups: dict[str, list[tuple[str, str]]] = {}
    for raw in names:
        name = clean_text(raw)
        groups.setdefault(_first_word(name), []).append((raw, name))
    final: dict[str, str] = {}
    for first, members in groups.items():
        for raw, name in members:
            final[raw] = name if len(members) == 1 else f"{first}#{_digest(raw)}{name[len(first):]}"
    # A name crafted to equal another's digested form: digest again until first words differ.
    owners: set[str] = set()
    for raw in sorted(final, key=lambda r: (final[r] != clean_text(r), r)):
        name = final[raw]
        while _first_word(name) in owners:
            first = _first_word(name)
            name = f"{first}#{_digest(name)}{name[len(first):]}"
        owners.add(_first_word(name))
        final[raw] = name
    return {raw: name for raw, name in final.items() if name != raw}


_SURROGATE_ESCAPE = re.compile(r"\\ud[89a-f]", re.IGNORECASE)


def label_json(labels: Mapping[str, Any]) -> str:
    """Labels as PCP's JSON.  A lone surrogate in a value (a hostile run name read from
    JSON) would be written as an escape no JSON parser accepts: such values are escaped
    as text instead."""
    text = json.dumps(dict(labels))
    if _SURROGATE_ESCAPE.search(text) is None:
        return text
    return json.dumps({k: printable_raw(v) if isinstance(v, str) else v for k, v in labels.items()})
