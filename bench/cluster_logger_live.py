"""Benchmark: what the live logger node costs per monitored node (hpc-demo cluster, issue #18).

For each ``--nodes`` size the cluster is brought up (head, N compute nodes, logger node:
pmlogger farm at 10 s, pmie per node, pmproxy on a 3-shard key server), left to settle for
``--settle`` seconds, then measured over ``--window`` seconds: CPU seconds of each service on
the logger node (pmlogger, pmproxy, pmie, key server, pmcd, hpcalarm) from /proc, memory (RSS
and PSS, at the end), open files, key-server used_memory and archive bytes.  Rates are per
monitored node; growth per day is the window's growth scaled to 24 h (extrapolated: the key
server's streams stop growing at stream.maxlen, archives roll daily), and labelled so.

PCP's published figures to compare with (PCP's pmproxy and scaling documents): pmproxy keeps
4 file descriptors per monitored pmlogger archive, each pmlogger ~20; a pmlogger farm of 10
hosts at 10 s: pmproxy 1.4 GB of memory after a day, key server 2.6 GB.

The cluster uses the bridge hpcbr0: run it alone, e.g.
    flock /tmp/hpc-cluster.lock .venv/bin/python bench/cluster_logger_live.py [--nodes 3 6]
        [--settle 60] [--window 180] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from hpc_demo.cluster import cluster, cost  # noqa: E402
from hpc_demo.cluster.layout import LOGGER  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "cluster_logger_live.json")
PCP = {"pmproxy_fds_per_pmlogger": 4, "pmlogger_fds": 20, "hosts": 10,
       "pmproxy_bytes_per_day": 1.4e9, "key_server_bytes_per_day": 2.6e9}
DAY = 86400.0


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[3, 6])
    parser.add_argument("--settle", type=float, default=60.0)
    parser.add_argument("--window", type=float, default=180.0)
    parser.add_argument("--out", default=RESULTS)
    return parser.parse_args(argv)


def measure(count: int, settle: float, window: float) -> dict:
    started = cluster.up(count, lambda _: None)
    try:
        nodes, namespaces = cluster.load()
        logger, ns = next(n for n in nodes if n.name == LOGGER), namespaces[LOGGER]
        time.sleep(settle)
        first, t0 = cost.snapshot(logger, ns, count), time.monotonic()
        time.sleep(window)
        last, seconds = cost.snapshot(logger, ns, count), time.monotonic() - t0
    finally:
        cluster.down(lambda _: None)
    return rates(count, first, last, seconds, started)


def rates(count: int, first: dict, last: dict, seconds: float, started: dict) -> dict:
    per_service = {}
    for name, end in last["services"].items():
        begin = first["services"].get(name, {"cpu_s": 0.0, "rss_kib": 0})
        cpu = end["cpu_s"] - begin["cpu_s"]
        per_service[name] = {
            "processes": end["processes"], "fds": end["fds"],
            "cpu_percent": round(100 * cpu / seconds, 2),
            "cpu_s_per_node_per_hour": round(cpu / seconds * 3600 / count, 1),
            "rss_mib": round(end["rss_kib"] / 1024, 1), "pss_mib": round(end["pss_kib"] / 1024, 1),
            "pss_mib_per_node": round(end["pss_kib"] / 1024 / count, 2),
            "rss_growth_mib_per_day_extrapolated": round((end["rss_kib"] - begin["rss_kib"]) / 1024
                                                         * DAY / seconds, 1)}
    per_node_day = DAY / seconds / count / 1e6    # bytes in the window → MB per node per day
    store_growth = last["store"]["used_memory"] - first["store"]["used_memory"]
    archive_growth = last["archive_bytes"] - first["archive_bytes"]
    return {"nodes": count, "window_s": round(seconds, 1), "start_s": started.get("total"),
            "services": per_service,
            "key_server": {"used_memory_mib": round(last["store"]["used_memory"] / 2**20, 1),
                           "keys": last["store"]["keys"],
                           "mb_per_node_per_day_extrapolated": round(store_growth * per_node_day, 1)},
            "archives_mb_per_node_per_day_extrapolated": round(archive_growth * per_node_day, 1)}


def table(runs: list[dict]) -> list[tuple[str, ...]]:
    """figure, ours at each size, PCP published."""
    rows = []
    for run in runs:
        n, services = run["nodes"], run["services"]
        proxy, logger = services.get("pmproxy", {}), services.get("pmlogger", {})
        fds_per_logger = logger.get("fds", 0) / max(1, logger.get("processes", 1))
        store_day = run["key_server"]["mb_per_node_per_day_extrapolated"]
        rows += [
            (f"{n} nodes: pmproxy fds per monitored node", f"{proxy.get('fds', 0) / n:.1f}",
             f"{PCP['pmproxy_fds_per_pmlogger']}"),
            (f"{n} nodes: pmlogger fds per process", f"{fds_per_logger:.1f}", f"~{PCP['pmlogger_fds']}"),
            (f"{n} nodes: key server MB/node/day (extrapolated)", f"{store_day}",
             f"{PCP['key_server_bytes_per_day'] / PCP['hosts'] / 1e6:.0f}"),
            (f"{n} nodes: pmproxy RSS MiB (now) / growth MiB/day (extrapolated)",
             f"{proxy.get('rss_mib', 0)} / {proxy.get('rss_growth_mib_per_day_extrapolated', 0)}",
             f"{PCP['pmproxy_bytes_per_day'] / 2**20:.0f} MiB/day at {PCP['hosts']} hosts"),
        ]
        for name in ("pmlogger", "pmproxy", "pmie", "key server"):
            s = services.get(name)
            if s:
                figures = f"{s['cpu_percent']} / {s['cpu_s_per_node_per_hour']} / {s['pss_mib_per_node']}"
                rows.append((f"{n} nodes: {name} CPU % / CPU s per node per hour / PSS MiB per node",
                             figures, "-"))
    return rows


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    if os.geteuid() != 0:
        sys.exit("the cluster needs root")
    runs = [measure(n, args.settle, args.window) for n in args.nodes]
    out = {"benchmark": "cluster_logger_live", "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "pcp_published": PCP, "runs": runs, "args": vars(args)}
    rows = table(runs)
    out["table"] = [dict(zip(("figure", "ours", "pcp_published"), r, strict=True)) for r in rows]
    width = max(len(r[0]) for r in rows)
    for row in rows:
        print(f"{row[0]:<{width}}  {row[1]:>22}  {row[2]}")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1)
    return out


if __name__ == "__main__":
    main()
