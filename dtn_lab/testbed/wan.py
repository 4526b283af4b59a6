"""The WAN with a round-trip time: two bridges joined by the delay line, and checks of it.

``Testbed.up`` calls ``build_bridges`` before plugging nodes in and ``start_delay_line``
after; ``down`` needs nothing from here: the TAP devices and the forwarder live in the WAN
namespace, and deleting it (which kills its processes first) removes them.  ``stop`` is
for a forwarder that is still running when its namespace is already gone.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from . import netns
from .layout import DEST, SOURCE, Layout

TAPS = {SOURCE: "dls", DEST: "dld"}
# What the path adds to the delay line's hold time, per round trip (two veth hops, bridge, TAP
# reads and writes, the forwarder's wake-ups): ping read 10.5-10.6 ms at 10 ms and 130.5-130.8 ms
# at 130 ms.  The forwarder holds frames this much less, so ping reads the RTT that was set.
PATH_RTT_MS = 0.5
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def queue_bytes(layout: Layout) -> int | None:
    """The bottleneck FIFO under each node cap: 50 ms of the node rate, at least 16 frames."""
    return max(16 * layout.mtu, layout.node_rate // 20) if layout.delayed else None


def build_bridges(layout: Layout) -> None:
    """``br1`` for the destination cluster and the two TAP devices of the delay line."""
    wan = layout.wan
    netns.run([netns.IP, "-n", wan, "link", "add", "br1", "mtu", str(layout.mtu), "type", "bridge"])
    netns.run([netns.IP, "-n", wan, "link", "set", "br1", "up"])
    for role, tap in TAPS.items():
        netns.run([netns.IP, "-n", wan, "tuntap", "add", "dev", tap, "mode", "tap"])
        netns.run([netns.IP, "-n", wan, "link", "set", tap, "mtu", str(layout.mtu), "master",
                   layout.bridge(role), "up"])


def hold_ms(rtt_ms: float) -> float:
    """How long the forwarder holds a frame each way for a round-trip time of ``rtt_ms``."""
    return max(0.0, rtt_ms - PATH_RTT_MS) / 2 if rtt_ms > 0 else 0.0


def log_path(layout: Layout) -> str:
    return os.path.join(layout.root, "run", "delay-line.log")


def start_delay_line(layout: Layout, timeout: float = 10.0) -> dict:
    """Start the forwarder in the WAN namespace; return {pid, log} once it holds both TAPs."""
    os.makedirs(os.path.dirname(log_path(layout)), exist_ok=True)
    argv = netns.in_ns(layout.wan, [sys.executable, "-m", "dtn_lab.testbed.delayline", TAPS[SOURCE],
                                    TAPS[DEST], "--delay-ms", f"{hold_ms(layout.rtt_ms):g}",
                                    "--loss", f"{layout.loss:g}", "--report", "10",
                                    "--label", layout.wan])
    with open(log_path(layout), "ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=probe_env(), start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise netns.NetError(f"delay line exited ({proc.returncode}): {_tail(layout)}")
        if '"ready": true' in _tail(layout):
            return {"pid": proc.pid, "log": log_path(layout)}
        time.sleep(0.05)
    raise netns.NetError(f"delay line not ready after {timeout:g} s: {_tail(layout)}")


def _tail(layout: Layout) -> str:
    try:
        with open(log_path(layout), encoding="utf-8", errors="replace") as f:
            return f.read()[-2000:].strip()
    except OSError:
        return ""


def alive(layout: Layout) -> bool:
    pid = layout.delay_line.get("pid")
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"dtn_lab.testbed.delayline" in f.read()
    except OSError:
        return False


def stop(layout: Layout) -> bool:
    """SIGTERM the recorded forwarder if it still runs (by its pid); True if it was running."""
    if not alive(layout):
        return False
    os.kill(layout.delay_line["pid"], signal.SIGTERM)
    return True


def probe_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}


def probe_argv(*args: str) -> list[str]:
    """``dtn_lab.testbed.probe`` with these arguments (to run inside a namespace)."""
    return [sys.executable, "-m", "dtn_lab.testbed.probe", *args]


def probe(namespace: str, *args: str, timeout: float = 60.0) -> dict:
    """Run ``dtn_lab.testbed.probe`` in a namespace and return its JSON line."""
    out = subprocess.run(netns.in_ns(namespace, probe_argv(*args)), capture_output=True, text=True,
                         timeout=timeout, env=probe_env(), check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def ping(layout: Layout, count: int = 10, interval: float = 0.05, timeout: float = 2.0) -> dict:
    """ICMP round trips from the first source node to the first destination node (after
    echoes that warm the ARP caches, whose frames also cross the delay line)."""
    src, dst = layout.cluster(SOURCE)[0], layout.cluster(DEST)[0]
    probe(src.namespace, "ping", dst.address, "--count", "3", "--interval", "0")
    return probe(src.namespace, "ping", dst.address, "--count", str(count), "--interval", str(interval),
                 "--timeout", str(timeout))


def counters(layout: Layout) -> dict:
    """The forwarder's last counter line ({direction: {frames, bytes, lost, overflow, ...}})."""
    for line in reversed(_tail(layout).splitlines()):
        if line.startswith("{") and "frames" in line:
            return json.loads(line)
    return {}
