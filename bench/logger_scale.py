"""Benchmark: the logger at 1,000 nodes — archives, series store memory, ingest and dashboard queries.

A cluster of ``--hosts`` hosts is modelled (bench/logger_scale_parts/archives.py: roles head, dtn,
Lustre servers, compute; jobs spread over the nodes; every metric shaped like the agents' real
recording) and archives are written with PCP's LOGIMPORT API for ``--hours``, each metric at its
pmlogconf group's interval (``--groups``; the farm's 10 s where a group names none).  Writing
and loading every host does not fit 2 shared cores, so every host of the small roles (head,
dtn) is written, and a sample of the large ones (``--servers`` Lustre servers, ``--compute``
compute nodes); per-host figures are measured per role and scaled by the role's host count.
Figures scaled that way are labelled "extrapolated" and never mixed with measured ones.

The archives are loaded, archive by archive alternately, into one Redis and into a 3-shard Redis
cluster with ``pmseries --load``: first the metadata alone (``--fast``), then the values, with
INFO used_memory read after each role, so that memory splits into series metadata (fixed per
host) and values (growing with time; scaled to a day: stream.maxlen keeps a day at 10 s).
Metadata is scaled as fixed, though job churn adds instances through the day (job_stats
entries, cgroups): the per-day figure is low by that growth for servers and the head.
Ingest rate = samples loaded / wall seconds of the value loads (metadata already known, as for
a logger that has seen its hosts before), against the rate the modelled cluster produces.

Then every target of the summary (hpc-cluster) and job (hpc-job) dashboards runs through a
pmproxy in front of each store, as grafana-pcp runs it (tests/logger/panels.py): /series/query,
then /series/values of every series over the window grafana-pcp asks for that panel (its
relative time override, else the board's range, with the plugin's margins); ``--rounds``
times, alternating the stores.  Latency is measured at the loaded hosts; the figure at
``--hosts`` is scaled by the series the metric has at full size and by the panel's range over
the simulated time (linear: extrapolated).

PCP's published anchors (scaling guide, pmlogger farm at 10 s): 10 hosts → key server
2.6 GB/day; 50 hosts → 12 GB/day (240 MB/host/day), 522 MB of archives/day.

    .venv/bin/python bench/logger_scale.py [--hosts 1000] [--hours 1] [--compute 20] [--servers 2]
                                           [--rounds 20] [--quick] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from bench.logger_scale_parts import archives  # noqa: E402
from bench.logger_scale_parts.stores import Store, series_values  # noqa: E402
from hpc_pcp import dashboards  # noqa: E402

RESULTS = os.path.join(HERE, "results", "logger_scale.json")
ROLES = ("head", "dtn", "server", "compute")
BOARDS = {"summary": "hpc-cluster.json", "job": "hpc-job.json"}

DAY = 86400
PCP = {"key_server_mb_per_host_day": 12e3 / 50, "key_server_mb_per_host_day_10_hosts": 2.6e3 / 10,
       "archive_mb_per_host_day": 522 / 50}
SUMMARY_P99_TARGET = 1.0


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hosts", type=int, default=1000, help="hosts in the modelled cluster")
    p.add_argument("--hours", type=float, default=1.0, help="simulated time written per host")
    p.add_argument("--compute", type=int, default=20, help="compute nodes written and loaded")
    p.add_argument("--servers", type=int, default=2, help="Lustre servers written and loaded")
    p.add_argument("--rounds", type=int, default=20, help="runs of each dashboard query per store")
    p.add_argument("--query-budget", type=float, default=30.0,
                   help="seconds per query (both stores) after which no further rounds start (min 3)")
    p.add_argument("--groups", default=archives.GROUPS,
                   help="pmlogconf groups deciding what is logged and how often (<agent>/<group files>)")
    p.add_argument("--quick", action="store_true", help="smoke test: 3 hosts, 5 minutes, 3 rounds")
    p.add_argument("--out", default=RESULTS, help="JSON results file")
    args = p.parse_args(argv)
    if args.quick:
        args.hosts, args.hours, args.rounds = 3, 5 / 60, 3
    return args


def generate(directory: str, cluster: archives.Cluster, args: argparse.Namespace) -> list[dict]:
    shape = archives.fixture_shape()
    groups = archives.logged_groups(args.groups)
    keep = {"head": None, "dtn": None, "server": args.servers, "compute": args.compute}
    written = []
    for role in ROLES:
        metrics = archives.for_role(shape, role, groups)
        for host in cluster.roles[role][:keep[role]]:
            started = time.perf_counter()
            record = archives.write_host(directory, host, role, metrics, cluster)
            record["write_seconds"] = time.perf_counter() - started
            written.append(record)
    return written


def load(stores: list[Store], written: list[dict]) -> dict[str, dict]:
    """Metadata then values of every archive, alternating the stores; memory after each role."""
    found = {s.name: {"baseline": s.used_memory(), "meta": {}, "values": {}, "load_seconds": {}}
             for s in stores}
    for phase in ("meta", "values"):
        for role in ROLES:
            for record in (r for r in written if r["role"] == role):
                for store in stores:
                    seconds = store.load(record["path"], metadata_only=phase == "meta")
                    if phase == "values":
                        spent = found[store.name]["load_seconds"]
                        spent[role] = spent.get(role, 0.0) + seconds
            for store in stores:
                found[store.name][phase][role] = store.used_memory()
    for store in stores:
        found[store.name]["keys_per_shard"] = store.keys()
    return found


def per_role_memory(loaded: dict, roles: list[str]) -> dict[str, tuple[int, int]]:
    """role → (metadata bytes, value bytes) from the memory read after each role's loads."""
    split, before = {}, loaded["baseline"]
    for role in roles:
        split[role] = [loaded["meta"][role] - before]
        before = loaded["meta"][role]
    for role in roles:
        split[role].append(loaded["values"][role] - before)
        before = loaded["values"][role]
    return {r: (m, v) for r, (m, v) in split.items()}


def span_seconds(text: str) -> int:
    """A Grafana relative time ('5m', '3h', 'now-3h') → seconds."""
    text = text.removeprefix("now-")
    return int(text[:-1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[text[-1]]


def queries(job: str) -> list[tuple[str, str, str, int, int]]:
    """(board, panel title, expression, seconds of range the panel reads, its min interval in
    seconds) of every history target of the summary and job boards: the panel's relative time
    if it has one, else the board's default range."""
    found = []
    for board, filename in BOARDS.items():
        shipped = dashboards.generate()[filename]
        board_range = span_seconds(shipped["time"]["from"])
        for panel in shipped["panels"]:
            span = span_seconds(panel["timeFrom"]) if panel.get("timeFrom") else board_range
            step = span_seconds(panel["interval"]) if panel.get("interval") else 0
            for target in panel.get("targets", []):
                if target["datasource"]["type"] != "performancecopilot-valkey-datasource":
                    continue
                found.append((board, panel["title"], target["expr"].replace("$job", job), span, step))
    return found


def grafana_window(end: int, span: int, step: int = 0) -> tuple[tuple[int, int], int]:
    """The /series/values window and interval grafana-pcp asks for a panel reading the ``span``
    seconds up to ``end`` (pkg/datasources/valkey/query.go): from - 2*max(interval, 60) to
    end + max(interval, 60), interval = range / data points (about 1,000 on a wide panel) or
    the panel's min interval ``step``, never below the sampling interval here.  pmproxy
    returns one sample per interval."""
    interval = max(archives.INTERVAL, span // 1000, step)
    margin = max(interval, 60)
    return (end - span - 2 * margin, end + margin), interval


def run_queries(stores: list[Store], end: int, rounds: int, job: str,
                budget: float) -> list[dict]:
    runs = []
    for board, title, expr, span, step in queries(job):
        window, interval = grafana_window(end, span, step)
        entry = {"board": board, "panel": title, "expr": expr, "range_s": span, "interval_s": interval,
                 "stores": {}}
        for store in stores:
            entry["stores"][store.name] = {"seconds": [], "series": 0, "points": 0}
        began = time.perf_counter()
        for done in range(rounds):
            if done >= 3 and time.perf_counter() - began > budget:
                break
            for store in stores:
                started = time.perf_counter()
                series = store.get("/series/query", expr=expr)
                if not isinstance(series, list):
                    raise RuntimeError(f"{store.name} refused {expr}: {series}")
                points = series_values(store, series, window, interval)
                sample = entry["stores"][store.name]
                sample["seconds"].append(time.perf_counter() - started)
                sample["series"], sample["points"] = len(series), points
        runs.append(entry)
    return runs


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def metric_scale(expr: str, cluster: archives.Cluster, loaded_roles: dict[str, int],
                 role_metrics: dict[str, set[str]], job: archives.Job | None = None,
                 loaded_hosts: set[str] = frozenset()) -> float:
    """How many times more hosts carry this metric at full size than were loaded.  A query of
    one job's cgroups selects the series of that job's nodes only: those do not grow with the
    cluster, so its scale is the job's nodes over those of them loaded."""
    if job is not None and expr.startswith(archives.CGROUP) and 'instance.name == "' in expr:
        have = len(set(job.nodes) & loaded_hosts)
        return len(job.nodes) / have if have else 1.0
    shape_roles = [r for r in ROLES if expr.split("{", 1)[0] in role_metrics[r]]
    full = sum(len(cluster.roles[r]) for r in shape_roles)
    have = sum(loaded_roles.get(r, 0) for r in shape_roles)
    return full / have if have else 1.0


def figures(args, cluster, written, loaded, runs, stores, job: archives.Job | None = None) -> dict:
    seconds = cluster.seconds
    counts = {r: len(cluster.roles[r]) for r in ROLES}
    by_role = {r: [w for w in written if w["role"] == r] for r in ROLES}
    roles = [r for r in ROLES if by_role[r]]
    per_tick = {r: sum(w["samples"] for w in by_role[r]) / len(by_role[r]) / (seconds / archives.INTERVAL)
                for r in roles}
    needed = sum(counts[r] * per_tick[r] for r in roles) / archives.INTERVAL
    archive_day = {r: sum(w["bytes"] for w in by_role[r]) / len(by_role[r]) * DAY / seconds for r in roles}
    total_samples = sum(w["samples"] for w in written)
    out = {"groups": {g.name: g.delta for g in archives.logged_groups(args.groups)},
           "modelled": {"hosts": args.hosts, "roles": counts, "jobs": len(cluster.jobs),
                        "jobs_running_at_start": len(cluster.running(0)), "hours": seconds / 3600},
           "loaded": {r: len(by_role[r]) for r in ROLES},
           "samples_per_tick_per_host": per_tick,
           "needed_samples_per_s": needed,
           "archive_mb_per_host_day": {r: v / 1e6 for r, v in archive_day.items()},
           "archive_mb_per_host_day_cluster_mean_extrapolated":
               sum(counts[r] * archive_day[r] for r in roles) / args.hosts / 1e6,
           "write_samples_per_s": total_samples / sum(w["write_seconds"] for w in written),
           "stores": {}}
    loaded_roles = out["loaded"]
    shape = archives.fixture_shape()
    groups = archives.logged_groups(args.groups)
    role_metrics = {r: {m.name for m in archives.for_role(shape, r, groups)} for r in ROLES}
    for store in stores:
        got = loaded[store.name]
        split = per_role_memory(got, roles)
        per_host_day = {r: (m + v * DAY / seconds) / len(by_role[r]) / 1e6 for r, (m, v) in split.items()}
        load_seconds = sum(got["load_seconds"].values())
        latencies = []
        for entry in runs:
            s = entry["stores"][store.name]
            # hosts at full size / hosts loaded, times the panel's range / the simulated time
            # (a 3-hour panel over 1 simulated hour reads a third of what it will)
            scale = metric_scale(entry["expr"], cluster, loaded_roles, role_metrics, job,
                                 {w["host"] for w in written}) * \
                max(1.0, entry["range_s"] / seconds)
            latencies.append({"board": entry["board"], "panel": entry["panel"], "expr": entry["expr"],
                              "range_s": entry["range_s"], "interval_s": entry["interval_s"],
                              "series": s["series"], "points": s["points"],
                              "median_s": statistics.median(s["seconds"]),
                              "p99_s": percentile(s["seconds"], 0.99), "n": len(s["seconds"]),
                              "full_size_scale": scale,
                              "p99_s_extrapolated": percentile(s["seconds"], 0.99) * scale})
        out["stores"][store.name] = {
            "shards": store.shards, "keys_per_shard": got["keys_per_shard"],
            "memory_split_bytes": {r: {"metadata": m, "values": v} for r, (m, v) in split.items()},
            "key_server_mb_per_host_day": per_host_day,
            "key_server_mb_per_host_day_cluster_mean_extrapolated":
                sum(counts[r] * per_host_day[r] for r in roles) / args.hosts,
            "ingest_samples_per_s": total_samples / load_seconds,
            "value_bytes_per_sample": {r: v / sum(w["samples"] for w in by_role[r])
                                       for r, (_, v) in split.items()},
            "key_server_gb_per_day_all_hosts_extrapolated":
                sum(counts[r] * per_host_day[r] for r in roles) / 1e3,
            "load_seconds": got["load_seconds"],
            "queries": latencies,
            "summary_p99_max_s": max(q["p99_s"] for q in latencies if q["board"] == "summary"),
            "summary_p99_max_s_extrapolated": max(q["p99_s_extrapolated"] for q in latencies
                                                  if q["board"] == "summary"),
            "job_p99_max_s": max((q["p99_s"] for q in latencies if q["board"] == "job"), default=0.0),
            "job_p99_max_s_extrapolated": max((q["p99_s_extrapolated"] for q in latencies
                                               if q["board"] == "job"), default=0.0),
            "empty_queries": [q["expr"] for q in latencies if not q["series"]],
        }
    return out


def table(out: dict) -> list[tuple[str, str, str, str]]:
    """(figure, ours, PCP's published, ratio ours/PCP) rows."""
    rows = []
    arch = out["archive_mb_per_host_day"]
    for role, mb in arch.items():
        rows.append((f"archive MB/host/day, {role} (measured)", f"{mb:.1f}",
                     f"{PCP['archive_mb_per_host_day']:.1f}", f"{mb / PCP['archive_mb_per_host_day']:.1f}"))
    mean = out["archive_mb_per_host_day_cluster_mean_extrapolated"]
    rows.append(("archive MB/host/day, cluster mean (extrapolated)", f"{mean:.1f}",
                 f"{PCP['archive_mb_per_host_day']:.1f}", f"{mean / PCP['archive_mb_per_host_day']:.1f}"))
    needed = out["needed_samples_per_s"]
    for name, s in out["stores"].items():
        rows.append((f"[{name}] ingest samples/s vs needed at {out['modelled']['hosts']} hosts",
                     f"{s['ingest_samples_per_s']:,.0f}", f"{needed:,.0f} needed",
                     f"{s['ingest_samples_per_s'] / needed:.2f}"))
        anchor = PCP["key_server_mb_per_host_day"]
        for role, mb in s["key_server_mb_per_host_day"].items():
            rows.append((f"[{name}] key server MB/host/day, {role} (measured, day scaled)",
                         f"{mb:.1f}", f"{anchor:.0f}", f"{mb / anchor:.2f}"))
        mean = s["key_server_mb_per_host_day_cluster_mean_extrapolated"]
        rows.append((f"[{name}] key server MB/host/day, cluster mean (extrapolated)",
                     f"{mean:.1f}", f"{anchor:.0f}", f"{mean / anchor:.2f}"))
        hosts = out["modelled"]["hosts"]
        total = s["key_server_gb_per_day_all_hosts_extrapolated"]
        rows.append((f"[{name}] key server GB/day, {hosts} hosts (extrapolated)", f"{total:,.0f}",
                     f"{anchor * hosts / 1e3:,.0f}", f"{total / (anchor * hosts / 1e3):.2f}"))
        for q in s["queries"]:
            rows.append((f"[{name}] {q['board']}: {q['expr'][:48]} ({q['series']} series) p50/p99 s",
                         f"{q['median_s']:.3f}/{q['p99_s']:.3f}", f"{SUMMARY_P99_TARGET:.0f} (target)",
                         f"{q['p99_s'] / SUMMARY_P99_TARGET:.2f}"))
        rows.append((f"[{name}] worst summary p99 s at the loaded hosts (measured)",
                     f"{s['summary_p99_max_s']:.2f}", f"{SUMMARY_P99_TARGET:.0f} (target)",
                     f"{s['summary_p99_max_s'] / SUMMARY_P99_TARGET:.2f}"))
        rows.append((f"[{name}] worst summary p99 s at {out['modelled']['hosts']} hosts (extrapolated)",
                     f"{s['summary_p99_max_s_extrapolated']:.2f}", f"{SUMMARY_P99_TARGET:.0f} (target)",
                     f"{s['summary_p99_max_s_extrapolated'] / SUMMARY_P99_TARGET:.2f}"))
        rows.append((f"[{name}] worst job-board p99 s at {out['modelled']['hosts']} hosts (extrapolated)",
                     f"{s['job_p99_max_s_extrapolated']:.2f}", f"{SUMMARY_P99_TARGET:.0f} (summary's)",
                     f"{s['job_p99_max_s_extrapolated'] / SUMMARY_P99_TARGET:.2f}"))
    return rows


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    # a terminated run still stops its redis-server and pmproxy processes (the finally below)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.perf_counter()
    cluster = archives.Cluster(args.hosts, max(archives.INTERVAL, int(args.hours * 3600)))
    work = tempfile.mkdtemp(prefix="logger_scale.")
    stores = [Store("redis", os.path.join(work, "redis"), 1),
              Store("cluster", os.path.join(work, "cluster"), 3)]
    try:
        os.makedirs(os.path.join(work, "archives"))
        written = generate(os.path.join(work, "archives"), cluster, args)
        for store in stores:
            store.start()
        loaded = load(stores, written)
        generated = {w["host"] for w in written}
        jobs = [j for j in cluster.running(0) if set(j.nodes) & generated] or cluster.running(0)
        queried = max(jobs, key=lambda j: len(set(j.nodes) & generated))
        job = str(queried.id)
        runs = run_queries(stores, archives.START + cluster.seconds, args.rounds, job, args.query_budget)
        out = figures(args, cluster, written, loaded, runs, stores, queried)
    finally:
        for store in stores:
            store.stop()
        shutil.rmtree(work, ignore_errors=True)
    out.update({"benchmark": "logger_scale", "job_queried": job,
                "job_nodes": {"all": len(queried.nodes), "loaded": len(set(queried.nodes) & generated)},
                "wall_seconds": time.perf_counter() - started,
                "pcp_published": PCP, "host": platform.node(), "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "args": vars(args)})
    rows = table(out)
    out["table"] = [dict(zip(("figure", "ours", "pcp_published", "ratio"), r, strict=True)) for r in rows]
    width = max(len(r[0]) for r in rows) + 2
    print(f"\n== logger_scale ==  ({args.hosts} hosts modelled, loaded {out['loaded']}, "
          f"{cluster.seconds / 3600:.2f} h at 10 s; wall {out['wall_seconds']:.0f} s)")
    print(f"{'figure':<{width}}{'ours':>16}{'PCP published':>18}{'ratio':>8}")
    for figure, ours, pcp, ratio in rows:
        print(f"{figure:<{width}}{ours:>16}{pcp:>18}{ratio:>8}")
    for name, s in out["stores"].items():
        if s["empty_queries"]:
            print(f"[{name}] queries with no series: {', '.join(s['empty_queries'])}")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=2)
    return out


if __name__ == "__main__":
    main()
