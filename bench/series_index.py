"""Benchmark: one series-index pass (hpc_pcp/seriesindex.py) at N hosts, against the bare reads.

A private redis-server is filled in pmproxy 6.0.3's schema (the keys a real pmproxy wrote in
tests/logger/test_new_instances.py): per host one archive context, INDOMS instance domains of
METRICS metric series each, INSTS instances per domain.  Side by side in one run:

  scard sweep   one pipelined SCARD of every watched series (the anchor: what a pass must read)
  idle pass     a whole pass when nothing changed (context check + the sweep + bookkeeping),
                through redis-py as the index runs it (hiredis's reply parser when
                python3-hiredis is installed)
  idle pass, Python parser
                the same pass, the same state, through redis-py's pure-Python reply parser
                (what a logger node without python3-hiredis runs)
  new jobs      a pass after a job appeared on 1 % of the hosts, in one metric of a domain
                (as pmproxy 6.0.3 indexes it): the repair of those groups included

Also: the first pass (reads every group once) and Redis's CPU per pass.  ``--shards 3``: the
same on a cluster of 3 masters (no Python-parser variant there).  ``main(clients=...)`` adds
other clients' idle passes to the same run (name → a Store-like factory of the seeds).

    .venv/bin/python bench/series_index.py [--hosts 1000] [--indoms 6] [--metrics 25] [--insts 10]
                                           [--shards 1]
"""
from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from bench.harness import interleaved, report  # noqa: E402
from bench.logger_scale_parts.stores import free_cluster_port, free_port, redis_cli  # noqa: E402
from hpc_pcp.seriesindex import Indexer, Store  # noqa: E402


def sha(text: str) -> bytes:
    return hashlib.sha1(text.encode()).digest()


def fill(store: Store, hosts: int, indoms: int, metrics: int, insts: int) -> list[bytes]:
    """pmproxy's keys for ``hosts`` hosts; returns the watched series ids."""
    watched = []
    for h in range(hosts):
        host, source = f"node{h:04d}", sha(f"node{h:04d}/source")
        context = sha(f"{host}/archive")
        commands: list[tuple] = [("HSET", "pcp:map:context.name", context, f"/var/log/pcp/pmlogger/{host}/a")]
        series_all = []
        for i in range(indoms):
            instances = [sha(f"{host}/{i}/{k}") for k in range(insts)]
            commands += [("HSET", f"pcp:inst:series:{inst.hex()}", "inst", k, "name", sha(f"job{k}"),
                          "source", source) for k, inst in enumerate(instances)]
            for m in range(metrics):
                series = sha(f"{host}/{i}.{m}")
                series_all.append(series)
                commands.append(("HSET", f"pcp:desc:series:{series.hex()}", "indom", f"411.{i}",
                                 "source", source, "pmid", f"411.{i}.{m}"))
                commands.append(("SADD", f"pcp:instances:series:{series.hex()}", *instances))
        commands.append(("SADD", f"pcp:series:context.name:{context.hex()}", *series_all))
        store.run(commands)
        watched += series_all
    return watched


def new_job(store: Store, hosts: int, metrics: int, serial: int) -> int:
    """A job on every 100th host, indexed for one metric of domain 0 (as pmproxy 6.0.3 does)."""
    commands: list[tuple] = []
    for h in range(0, hosts, 100):
        host = f"node{h:04d}"
        inst = sha(f"{host}/new/{serial}")
        commands.append(("HSET", f"pcp:inst:series:{inst.hex()}", "inst", 100000 + serial,
                         "name", sha(f"job{100000 + serial}"), "source", sha(f"{host}/source")))
        commands.append(("SADD", f"pcp:instances:series:{sha(f'{host}/0.{metrics - 1}').hex()}", inst))
    store.run(commands)
    return len(commands) // 2


def redis_cpu(ports: list[int]) -> float:
    """used_cpu_user + used_cpu_sys summed over the servers."""
    total = 0.0
    for port in ports:
        lines = redis_cli(port, "info", "cpu").splitlines()
        fields = dict(line.split(":", 1) for line in lines if ":" in line)
        total += float(fields["used_cpu_user"]) + float(fields["used_cpu_sys"])
    return total


def start_servers(workdir: str, shards: int) -> tuple[list[int], list[subprocess.Popen]]:
    """One redis-server, or ``shards`` masters in one cluster; their ports and processes."""
    ports, servers = [], []
    for shard in range(shards):
        port = free_cluster_port() if shards > 1 else free_port()
        work = os.path.join(workdir, f"redis{shard}")
        os.makedirs(work)
        argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", work]
        if shards > 1:
            argv += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
        servers.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL))
        ports.append(port)
        for _ in range(100):
            if redis_cli(port, "ping").strip() == "PONG":
                break
            time.sleep(0.1)
    if shards > 1:
        subprocess.run(["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports),
                        "--cluster-replicas", "0", "--cluster-yes"],
                       capture_output=True, check=True, timeout=60)
        for _ in range(200):
            if all("cluster_state:ok" in redis_cli(p, "cluster", "info") for p in ports):
                break
            time.sleep(0.1)
    return ports, servers


def python_parser_store(seeds: list[str]) -> Store:
    """A Store whose redis-py connections parse replies in Python, not with hiredis (one server)."""
    import redis
    from redis.connection import PythonParser

    store = Store(seeds)
    host, port = seeds[0].rsplit(":", 1)
    store.client.close()
    store.client = redis.Redis(connection_pool=redis.ConnectionPool(
        host=host, port=int(port), socket_timeout=10.0, parser_class=PythonParser))
    return store


def main(argv: list[str] | None = None,
         clients: dict[str, Callable[[list[str]], object]] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--indoms", type=int, default=6)
    parser.add_argument("--metrics", type=int, default=25)
    parser.add_argument("--insts", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--shards", type=int, default=1, help="1: one server; more: a cluster of masters")
    args = parser.parse_args(argv)
    workdir = tempfile.mkdtemp(prefix="bench-seriesindex-")
    ports, servers = start_servers(workdir, args.shards)
    seeds = [f"127.0.0.1:{p}" for p in ports]
    try:
        store = Store(seeds)
        watched = fill(store, args.hosts, args.indoms, args.metrics, args.insts)
        indexer = Indexer(Store(seeds), None)
        started, cpu0, rcpu0 = time.perf_counter(), time.process_time(), redis_cpu(ports)
        first = indexer.run_once()
        first_figures = {"seconds": time.perf_counter() - started,
                         "indexer_cpu_s": time.process_time() - cpu0,
                         "redis_cpu_s": redis_cpu(ports) - rcpu0, "series": first.series}
        keys = [b"pcp:instances:series:" + s.hex().encode() for s in watched]
        serial = [0]
        added: list[int] = []

        def sweep() -> None:
            for start in range(0, len(keys), 10000):
                store.run([("SCARD", k) for k in keys[start:start + 10000]])

        def with_new_jobs() -> None:
            serial[0] += 1
            jobs = new_job(store, args.hosts, args.metrics, serial[0])
            done = indexer.run_once()
            assert done.added == jobs * (args.metrics - 1), (done, jobs)
            added.append(done.added)

        cpu0, rcpu0 = time.process_time(), redis_cpu(ports)
        # the other clients' indexers share the indexer's state: each of their passes is idle too
        factories = {"Python parser": python_parser_store} if args.shards == 1 else {}
        others = {f"idle pass, {name}": replace(indexer, store=factory(seeds)).run_once
                  for name, factory in {**factories, **(clients or {})}.items()}
        variants = {"scard sweep": sweep, "idle pass": indexer.run_once, **others, "new jobs": with_new_jobs}
        samples = interleaved(variants, rounds=args.rounds, warmup=1)
        passes = (args.rounds + 1) * len(variants)
        report("series_index", samples, anchor="scard sweep", unit="s",
               notes=f"{args.shards} shard(s), {args.hosts} hosts x {args.indoms * args.metrics} "
                     f"watched series "
                     f"({len(watched)}), {args.insts} instances per domain; first pass "
                     f"{first_figures['seconds']:.2f} s; per pass on average: this process "
                     f"{(time.process_time() - cpu0) / passes:.3f} CPU-s, redis-server "
                     f"{(redis_cpu(ports) - rcpu0) / passes:.3f} CPU-s",
               extra={"hosts": args.hosts, "shards": args.shards, "watched_series": len(watched),
                      "first_pass": first_figures,
                      "added_per_new_job_pass": added[:1]})
    finally:
        for server in servers:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
