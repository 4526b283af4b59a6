"""A delay line between the two clusters: frames held RTT/2 each way, with optional random loss.

Why a userspace forwarder.  This kernel has no netem, so the WAN's round-trip time has to
be made somewhere else.  The WAN namespace gets two bridges, one per cluster, joined only
through two TAP devices; this process reads every frame that one bridge sends into its
TAP, keeps it for ``delay`` seconds and writes it into the other TAP (and the reverse),
dropping each frame with probability ``loss``.  Per-stream throughput then comes from TCP
itself (windows, slow start, loss recovery) instead of a per-flow rate cap.

One thread per direction: the delay is the same for every frame, so arrival order is
release order and a FIFO is the whole timer wheel.  Each thread waits in ``select`` on
its input until the head frame is due, reads what has arrived (stamping it), then writes
what is due.  Python costs a few microseconds per frame, so the links use a jumbo MTU
(9000 by default) and the forwarder moves hundreds of MB/s, far above the node caps; the
queue holds at most ``limit`` bytes per direction (tail drop beyond, counted), which is a
bandwidth-delay product far above anything the testbed's node caps can put in flight.

Run as ``python -m dtn_lab.testbed.delayline A B --delay-ms D [--loss P]`` inside the WAN
namespace; the TAP devices must exist (``ip tuntap add``).  SIGTERM ends it; counters go to
stdout as one JSON line every ``--report`` seconds and at exit.
"""
from __future__ import annotations

import argparse
import collections
import fcntl
import json
import os
import random
import select
import signal
import struct
import sys
import threading
import time

TUNSETIFF = 0x400454CA
IFF_TAP, IFF_NO_PI = 0x0002, 0x1000
FRAME_MAX = 65536 + 64


def open_tap(name: str) -> int:
    """Attach to an existing TAP device (no packet-info header) and return its fd, non-blocking."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
    except OSError:
        os.close(fd)
        raise
    return fd


class Direction:
    """Frames from ``src`` to ``dst`` after ``delay`` seconds; each dropped with probability ``loss``."""

    def __init__(self, name: str, src: int, dst: int, delay: float, loss: float, limit: int, seed: int):
        self.name, self.src, self.dst = name, src, dst
        self.delay, self.loss, self.limit = delay, loss, limit
        self.rng = random.Random(seed)
        self.queue: collections.deque[tuple[float, bytes]] = collections.deque()
        self.queued_bytes = 0
        self.counters = {"frames": 0, "bytes": 0, "lost": 0, "overflow": 0, "late_max_ms": 0.0}
        self.stopping = threading.Event()

    def run(self) -> None:
        src, queue, counters = self.src, self.queue, self.counters
        clock = time.monotonic
        while not self.stopping.is_set():
            timeout = 0.2
            if queue:
                timeout = max(0.0, queue[0][0] - clock())
            readable, _, _ = select.select([src], [], [], timeout)
            if readable:
                while True:
                    try:
                        frame = os.read(src, FRAME_MAX)
                    except BlockingIOError:
                        break
                    except OSError:
                        if self.stopping.is_set():
                            return
                        raise
                    if self.loss and self.rng.random() < self.loss:
                        counters["lost"] += 1
                        continue
                    if self.queued_bytes + len(frame) > self.limit:
                        counters["overflow"] += 1
                        continue
                    queue.append((clock() + self.delay, frame))
                    self.queued_bytes += len(frame)
            now = clock()
            while queue and queue[0][0] <= now:
                due, frame = queue.popleft()
                self.queued_bytes -= len(frame)
                late = (now - due) * 1000
                if late > counters["late_max_ms"]:
                    counters["late_max_ms"] = round(late, 3)
                try:
                    os.write(self.dst, frame)
                except OSError:
                    counters["overflow"] += 1
                    continue
                counters["frames"] += 1
                counters["bytes"] += len(frame)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Hold frames between two TAP devices (a WAN delay line).")
    parser.add_argument("tap_a")
    parser.add_argument("tap_b")
    parser.add_argument("--delay-ms", type=float, required=True, help="one-way delay (RTT/2)")
    parser.add_argument("--loss", type=float, default=0.0, help="drop probability per frame (0..1)")
    parser.add_argument("--limit", type=int, default=64 << 20, help="bytes held per direction at most")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--label", default="", help="the testbed's WAN namespace (names the process)")
    parser.add_argument("--report", type=float, default=0.0,
                        help="seconds between counter lines (0: at exit)")
    args = parser.parse_args(argv)
    if not 0 <= args.loss < 1 or args.delay_ms < 0:
        parser.error("--loss must be in [0, 1) and --delay-ms >= 0")
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "big")
    fd_a, fd_b = open_tap(args.tap_a), open_tap(args.tap_b)
    delay = args.delay_ms / 1000
    directions = [Direction(f"{args.tap_a}>{args.tap_b}", fd_a, fd_b, delay, args.loss, args.limit, seed),
                  Direction(f"{args.tap_b}>{args.tap_a}", fd_b, fd_a, delay, args.loss, args.limit, seed + 1)]
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    threads = [threading.Thread(target=d.run, name=d.name, daemon=True) for d in directions]
    for t in threads:
        t.start()

    def report() -> None:
        print(json.dumps({d.name: d.counters for d in directions}), flush=True)

    print(json.dumps({"ready": True, "delay_ms": args.delay_ms, "loss": args.loss, "seed": seed}), flush=True)
    last = time.monotonic()
    while not done.wait(1.0):
        if not all(t.is_alive() for t in threads):
            break
        if args.report and time.monotonic() - last >= args.report:
            report()
            last = time.monotonic()
    for d in directions:
        d.stopping.set()
    for t in threads:
        t.join(1.0)
    report()
    return 0 if all(not t.is_alive() for t in threads) or done.is_set() else 1


if __name__ == "__main__":
    sys.exit(main())
