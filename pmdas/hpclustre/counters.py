"""Keep exported counters monotonic when Lustre's own counters go backwards.

A target restart, a failover or ``lctl set_param *.stats=clear`` zeroes Lustre's
counters.  Passing such a drop through would make PCP clients compute negative
rates (or a huge wrap).  Instead each counter is exported as the running sum
of its increases: after a drop the new raw value counts as the increase since
the restart.  Every drop is counted and the latest one described, so the admin
can see that it happened.

Counters are kept in groups (one stats file, one histogram section, one job's
entry on one target), because a client with thousands of OSCs has hundreds of
thousands of them: a group whose counter names are those of the last refresh and
whose values did not go down (nearly always) is handled by a few C-level passes
over its values, with no Python work per counter.  The running sum is kept as
the raw value plus an offset (the values lost at earlier drops), so a group that
never went back exports its raw values unchanged.
"""
from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from operator import add, ge, sub
from typing import Any

# One group's state: counter names, their last raw values, their offsets (None: all zero).
_Group = tuple[tuple, tuple, "tuple | None"]


class CounterGuard:
    """Per-counter reset detection; groups not seen in a refresh are forgotten by ``sweep``.

    Each group may be updated once per refresh (between two sweeps).
    """

    def __init__(self) -> None:
        self._groups: dict[Hashable, _Group] = {}
        self._seen: set[Hashable] = set()
        self.resets = 0
        self.last_reset = ""

    def _update(self, group: tuple, names: tuple, raw: tuple) -> tuple[tuple, tuple | None, _Group | None]:
        """Store the group's new raw values; return (raw, new offsets, the old state)."""
        old = self._groups.get(group)
        self._seen.add(group)
        if old is not None and old[0] == names and all(map(ge, raw, old[1])):
            offsets = old[2]                         # the usual case: nothing went back
        else:
            offsets = self._slow_offsets(group, names, raw, old)
        self._groups[group] = (names, raw, offsets)
        return raw, offsets, old

    def _slow_offsets(self, group: tuple, names: tuple, raw: tuple, old: _Group | None) -> tuple | None:
        """Offsets, counter by counter: new counters start at their raw value, drops are noted."""
        before = {} if old is None else dict(zip(old[0], zip(old[1], old[2] or (0,) * len(old[0]),
                                                               strict=True), strict=True))
        offsets = []
        for name, value in zip(names, raw, strict=True):
            previous, offset = before.get(name, (None, 0))
            if previous is not None and value < previous:
                offset += previous
                self._note_reset(group, name, previous, value)
            offsets.append(offset)
        return tuple(offsets) if any(offsets) else None

    def _note_reset(self, group: tuple, name: Any, previous: int, value: int) -> None:
        self.resets += 1
        where = " ".join(str(k) for k in (*group, *(name if isinstance(name, tuple) else (name,))))
        self.last_reset = (f"{where} went back from {previous} to {value} (target restarted "
                           f"or statistics cleared); counting on from the new value")

    def monotonic_many(self, group: tuple, names: Sequence, raw: Sequence[int]) -> Sequence[int]:
        """The exported values of a group's counters (aligned with ``names``): the sum of all
        increases ever seen for each.  When every one equals its raw value (no counter of
        the group ever went back) the answer is ``raw`` itself, if ``raw`` is a tuple."""
        values, offsets, _old = self._update(group, tuple(names), tuple(raw))
        return values if offsets is None else tuple(map(add, values, offsets))

    def deltas(self, group: tuple, names: Sequence, raw: Sequence[int]) -> Sequence[int]:
        """Each counter's increase since the previous refresh (all of its raw value when it is
        new or went back), aligned with ``names``."""
        names, raw = tuple(names), tuple(raw)
        values, offsets, old = self._update(group, names, raw)
        if old is not None and old[0] == names and offsets == old[2]:
            return tuple(map(sub, values, old[1]))
        # Some counter is new or went back: its whole raw value is its increase.
        before = {} if old is None else dict(zip(old[0], old[1], strict=True))
        out = []
        for name, value in zip(names, values, strict=True):
            previous = before.get(name)
            out.append(value if previous is None or value < previous else value - previous)
        return tuple(out)

    def sweep(self, keep: Callable[[Hashable], bool] = lambda key: False) -> None:
        """Forget groups not seen since the last sweep (unmounted, expired), unless ``keep(group)``."""
        if len(self._seen) != len(self._groups):
            for group in self._groups.keys() - self._seen:
                if not keep(group):
                    del self._groups[group]
        self._seen = set()
