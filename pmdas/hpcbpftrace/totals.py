"""Running totals of the maps a script clears after each print (exports declared delta).

bpftrace keeps at most BPFTRACE_MAP_KEYS_MAX keys (4,096 by default) in a map and, once
it is full, drops events with new keys without a word.  A map keyed by process name or
address fills up in the life of a script, so such maps are printed and cleared, and each
print holds the counts since the previous one.  Here the prints are added up, so that the
agent still publishes counters that only grow, even across restarts of the script.  The
totals are bounded as well: keys beyond ``max_keys`` are added to one ``[other]`` key.

Pure: no I/O, no threads; the script's reader calls it under its lock.
"""
from __future__ import annotations

import os
from collections.abc import Mapping

from .output import Variable

OTHER = "[other]"                  # the key that sums the keys beyond max_keys
DEFAULT_MAP_KEYS_MAX = 4096        # bpftrace's default for BPFTRACE_MAP_KEYS_MAX


def map_keys_max(env: Mapping[str, str] | None = None) -> int:
    """The number of keys bpftrace allows in a map, as the child's environment sets it."""
    raw = (os.environ if env is None else env).get("BPFTRACE_MAP_KEYS_MAX", "")
    try:
        limit = int(raw)
    except ValueError:
        return DEFAULT_MAP_KEYS_MAX
    return limit if limit > 0 else DEFAULT_MAP_KEYS_MAX


def is_full(variable: Variable, limit: int) -> bool:
    """True for a print of a keyed count/sum map that holds as many keys as bpftrace allows:
    while it was full, events with new keys were lost in the kernel."""
    return variable.keyed and variable.kind != "hist" and len(variable.value) >= limit


def _count(value: object) -> bool:
    return type(value) is int


class Totals:
    """The sums of every print of each delta variable, by variable name ('@x')."""

    def __init__(self, max_keys: int):
        self.max_keys = max_keys
        self._sums: dict[str, dict[str, int] | int] = {}

    def keep_only(self, variables: frozenset[str]) -> None:
        """Forget the sums of variables no longer declared delta (the script changed)."""
        self._sums = {v: s for v, s in self._sums.items() if v in variables}

    def add(self, printed: Variable) -> Variable | None:
        """Add one print; return the variable's totals, or None for a print that is not a
        count/sum map (the sums are left as they were)."""
        if printed.kind != "map":
            return None
        name, value = printed.name, printed.value
        if not printed.keyed:
            if not _count(value):
                return None
            earlier = self._sums.get(name)
            total = (earlier if isinstance(earlier, int) else 0) + value
            self._sums[name] = total
            return Variable(name, "map", total, False)
        if not all(map(_count, value.values())):
            return None
        sums = self._sums.get(name)
        if not isinstance(sums, dict):
            sums = self._sums[name] = {}
        room = self.max_keys - (len(sums) - (OTHER in sums))
        folded = 0
        for key, count in value.items():
            if key in sums:
                sums[key] += count
            elif room > 0:
                sums[key] = count
                room -= 1
            else:
                folded += count
        if folded:
            sums[OTHER] = sums.get(OTHER, 0) + folded
        return Variable(name, "map", dict(sums), True)
