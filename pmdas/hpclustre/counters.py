"""Keep exported counters monotonic when Lustre's own counters go backwards.

A target restart, a failover or ``lctl set_param *.stats=clear`` zeroes Lustre's
counters.  Passing such a drop through would make PCP clients compute negative
rates (or a huge wrap).  Instead each counter is exported as the running sum
of its increases: after a drop the new raw value counts as the increase since
the restart.  Every drop is counted and the latest one described, so the admin
can see that it happened.
"""
from __future__ import annotations

from collections.abc import Callable, Hashable


class CounterGuard:
    """Per-key reset detection; keys not seen in a refresh are forgotten by ``sweep``."""

    def __init__(self) -> None:
        self._last: dict[Hashable, int] = {}
        self._total: dict[Hashable, int] = {}
        self._seen: set[Hashable] = set()
        self.resets = 0
        self.last_reset = ""

    def delta(self, key: Hashable, raw: int) -> int:
        """The increase since the previous refresh (all of ``raw`` for a new or reset counter)."""
        previous = self._last.get(key)
        self._last[key] = raw
        self._seen.add(key)
        if previous is None:
            return raw
        if raw < previous:
            self.resets += 1
            where = " ".join(str(k) for k in key) if isinstance(key, tuple) else str(key)
            self.last_reset = (f"{where} went back from {previous} to {raw} (target restarted "
                               f"or statistics cleared); counting on from the new value")
            return raw
        return raw - previous

    def monotonic(self, key: Hashable, raw: int) -> int:
        """The exported value: the sum of all increases ever seen for ``key``."""
        total = self._total.get(key, 0) + self.delta(key, raw)
        self._total[key] = total
        return total

    def sweep(self, keep: Callable[[Hashable], bool] = lambda key: False) -> None:
        """Forget keys not seen since the last sweep (unmounted, expired), unless ``keep(key)``."""
        for key in [k for k in self._last if k not in self._seen and not keep(k)]:
            del self._last[key]
            self._total.pop(key, None)
        self._seen = set()
