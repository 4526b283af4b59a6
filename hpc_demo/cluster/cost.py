"""What the logger node's services cost: CPU seconds, memory and open files per service,
read from /proc for the processes of the logger's namespace, and what the series store and
the archives hold.  ``snapshot`` is instant (CPU since each process started); two snapshots
minutes apart give rates (bench/cluster_logger_live.py).
"""
from __future__ import annotations

import os
import re
import subprocess

from hpc_demo.namespace import Namespace

from .layout import REDIS_PORTS, Node

TICKS = os.sysconf("SC_CLK_TCK")
# comm → service; python processes are told apart by their command line (hpcalarm's agent).
SERVICES = {"pmlogger": "pmlogger", "pmproxy": "pmproxy", "pmie": "pmie", "pmcd": "pmcd",
            "redis-server": "key server", "valkey-server": "key server"}


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def service(pid: int) -> str:
    comm = _read(f"/proc/{pid}/comm").strip()
    if comm in SERVICES:
        return SERVICES[comm]
    if "hpcalarm" in _read(f"/proc/{pid}/cmdline"):
        return "hpcalarm"
    return "other"


def process(pid: int) -> dict[str, float] | None:
    """CPU seconds (user + system, since start), RSS and PSS in KiB, open files; None if gone."""
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    rollup = _read(f"/proc/{pid}/smaps_rollup")
    kib = {m.group(1): int(m.group(2)) for m in re.finditer(r"(?m)^(Rss|Pss):\s+(\d+) kB", rollup)}
    try:
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        fds = 0
    return {"cpu_s": (int(fields[11]) + int(fields[12])) / TICKS, "rss_kib": kib.get("Rss", 0),
            "pss_kib": kib.get("Pss", 0), "fds": fds}


def services(ns: Namespace) -> dict[str, dict[str, float]]:
    """Service → its processes' totals (processes, cpu_s, rss_kib, pss_kib, fds)."""
    totals: dict[str, dict[str, float]] = {}
    for pid in ns.processes():
        figures = process(pid)
        if figures is None:
            continue
        total = totals.setdefault(service(pid), {"processes": 0, "cpu_s": 0.0, "rss_kib": 0,
                                                 "pss_kib": 0, "fds": 0})
        total["processes"] += 1
        for key, value in figures.items():
            total[key] += value
    return totals


def store_bytes(logger: Node, ns: Namespace) -> dict[str, int]:
    """The key server's memory (used_memory summed over the shards) and keys."""
    memory = keys = 0
    for port in REDIS_PORTS:
        done = ns.run("redis-cli", "-h", logger.address, "-p", str(port), "info", "memory",
                      check=False, timeout=10).stdout
        found = re.search(r"(?m)^used_memory:(\d+)", done)
        memory += int(found.group(1)) if found else 0
        size = ns.run("redis-cli", "-h", logger.address, "-p", str(port), "dbsize", check=False,
                      timeout=10).stdout.strip()
        keys += int(size) if size.isdigit() else 0
    return {"used_memory": memory, "keys": keys}


def archive_bytes(logger: Node) -> int:
    """Bytes of every archive the logger node wrote (its /var/log/pcp/pmlogger)."""
    directory = os.path.join(logger.directory, "pcp", "log", "pmlogger")
    done = subprocess.run(["du", "-sb", directory], capture_output=True, text=True, timeout=30)
    return int(done.stdout.split()[0]) if done.returncode == 0 else 0


def snapshot(logger: Node, ns: Namespace, monitored: int) -> dict[str, object]:
    figures = services(ns)
    for total in figures.values():
        total["cpu_s"] = round(total["cpu_s"], 2)
    return {"monitored_nodes": monitored, "services": figures, "store": store_bytes(logger, ns),
            "archive_bytes": archive_bytes(logger)}
