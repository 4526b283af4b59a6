"""Throughput as the testbed's links see it: bytes delivered to the destination nodes.

The WAN namespace's bridge ports count every byte sent towards a node (``tx`` of the
port is what the node receives), read with one ``ip -s -j link show``.  That is the
ground truth of a run's network throughput, independent of what globus-url-copy
reports (its progress lines arrive in bursts through a pipe) and of how files grow on
disk (MODE E writes blocks out of order, so a file's size runs ahead of its data).
Headers are counted too: with the default 9000-byte MTU they are ~0.6% of the bytes.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field

from .layout import DEST, Layout
from .netns import IP, run


def port_counters(layout: Layout) -> dict[str, tuple[int, int]]:
    """{bridge port: (tx_bytes, rx_bytes)} in the WAN namespace (tx = towards the node)."""
    out = run([IP, "-n", layout.wan, "-s", "-j", "link", "show"])
    counters = {}
    for link in json.loads(out):
        stats = link.get("stats64") or link.get("stats") or {}
        counters[link["ifname"]] = (int(stats.get("tx", {}).get("bytes", 0)),
                                    int(stats.get("rx", {}).get("bytes", 0)))
    return counters


@dataclass
class Trace:
    """(seconds since start, bytes delivered to the measured nodes) samples."""

    samples: list[tuple[float, int]] = field(default_factory=list)

    def rate_between(self, start: float, end: float) -> float:
        """Average bytes/s between the samples nearest ``start`` and ``end``."""
        inside = [s for s in self.samples if start - 1e-9 <= s[0] <= end + 1e-9]
        if len(inside) < 2:
            return 0.0
        (t0, b0), (t1, b1) = inside[0], inside[-1]
        return (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0

    def rates(self, step: float = 1.0) -> list[tuple[float, float]]:
        """(t, bytes/s over the preceding ``step`` seconds), for throughput-over-time plots."""
        out, last = [], None
        for t, b in self.samples:
            if last is None:
                last = (t, b)
                continue
            if t - last[0] >= step - 1e-6:
                out.append((round(t, 2), (b - last[1]) / (t - last[0])))
                last = (t, b)
        return out

    def to_json(self) -> list[list[float]]:
        return [[round(t, 3), b] for t, b in self.samples]


class LinkMeter:
    """Samples bytes delivered to a set of nodes every ``interval`` seconds in a thread."""

    def __init__(self, layout: Layout, ports: list[str] | None = None, interval: float = 0.25):
        self.layout = layout
        self.ports = ports or [n.wan_port for n in layout.cluster(DEST)]
        self.interval = interval
        self.trace = Trace()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._base = 0
        self._t0 = 0.0

    def delivered(self) -> int:
        counters = port_counters(self.layout)
        return sum(counters.get(p, (0, 0))[0] for p in self.ports)

    def start(self) -> LinkMeter:
        self._t0, self._base = time.monotonic(), self.delivered()
        self.trace.samples.append((0.0, 0))

        def loop() -> None:
            while not self._stop.wait(self.interval):
                self.sample()
        self._thread = threading.Thread(target=loop, name="link-meter", daemon=True)
        self._thread.start()
        return self

    def sample(self) -> tuple[float, int]:
        with self._lock:       # the sampling thread and callers append in time order
            point = (time.monotonic() - self._t0, self.delivered() - self._base)
            self.trace.samples.append(point)
        return point

    def now(self) -> float:
        return time.monotonic() - self._t0

    def stop(self) -> Trace:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
        self.sample()
        return self.trace
