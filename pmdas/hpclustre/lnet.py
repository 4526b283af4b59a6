"""LNet's message counters are 32 bits wide: count their wraps instead of seeing restarts.

LNet keeps ``errors``, ``send_count``, ``recv_count``, ``route_count`` and
``drop_count`` as ``__u32`` (summed over CPU partitions in 32 bits, so the total
wraps at 2**32), and the four ``*_length`` byte counters as ``__u64``
(lnet_counters / lnet_counters_common, 2.10-2.16).  A busy router passes 2**32
messages in days, and a wrap read as a restart loses its whole increase.

Telling a wrap from a restart: a restart (module reload, or a write to the stats
file, which calls lnet_counters_reset) zeroes every counter at once, the 64-bit
byte counters included, which never wrap in practice.  So a 32-bit counter that
went down is taken for a wrap when no byte counter went down in the same refresh,
it was in the upper half of its range before (>= 2**31) and is in the lower half
now; anything else is left to the reset handling (counted and flagged).  Two wraps
within one refresh (2**32 messages in one interval) cannot be seen.
"""
from __future__ import annotations

COUNTS_32 = ("errors", "send_count", "recv_count", "route_count", "drop_count")
LENGTHS_64 = ("send_length", "recv_length", "route_length", "drop_length")
_HALF = 1 << 31
_RANGE = 1 << 32


class LnetWraps:
    """Widens LNet's 32-bit counters to 64 bits by counting their wraps."""

    def __init__(self) -> None:
        self._last: dict[str, int] | None = None
        self._wraps: dict[str, int] = {}
        self.wraps = 0          # wraps seen since the agent started

    def widen(self, raw: dict[str, int]) -> dict[str, int]:
        """The counters with 2**32 added per wrap seen so far (levels and lengths unchanged)."""
        last, self._last = self._last, raw
        if last is not None:
            if any(raw.get(k, 0) < last.get(k, 0) for k in LENGTHS_64):
                self._wraps = {}            # LNet restarted or its stats were cleared
            else:
                for k in COUNTS_32:
                    if k in raw and k in last and last[k] >= _HALF > raw[k]:
                        self._wraps[k] = self._wraps.get(k, 0) + 1
                        self.wraps += 1
        if not self._wraps:
            return raw
        return {**raw, **{k: raw[k] + n * _RANGE for k, n in self._wraps.items() if k in raw}}
