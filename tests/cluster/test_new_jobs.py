"""A job that starts after the logger, on the cluster on one machine: found by its instance name
in every per-job metric of both its nodes (hpc.job.job.*) and of both Lustre servers
(hpc.lustre.job.*), through the logger's pmproxy on a 3-shard Redis.

PCP 6.0.3's pmproxy alone indexes such a job for one metric of each instance domain (see
hpc_pcp/seriesindex.py); ``hpc-pcp logger setup --start`` runs the series index beside it, and
nothing here restarts pmproxy.  The control: with the index stopped, a new job is found in
one Lustre metric only; started again, the index makes it found everywhere, with the values
pmproxy stored before.  Own cluster (2 compute nodes, 2 Lustre servers), taken down by the
last test.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time

import pytest

from hpc_demo.cluster import cluster, slurm
from hpc_demo.cluster.cluster import PYTHON_ENV
from hpc_demo.cluster.layout import LOGGER
from hpc_pcp import dashboards, logger
from tests.cluster.test_cluster import COMPUTE, JOB_LOG, REPO, SERVERS, _pmproxy, _two_node_job, _window
from tests.harness.pcp import wait_for
from tests.logger.panels import substitute

PER_JOB = ("hpc.lustre.job", "hpc.job.job")
NEEDED = logger.series_index_needed()
UNIT = "/etc/pcp/hpc/hpc-pcp-series-index.service"
INDEX_LOG = "/var/log/pcp/pmproxy/hpc-series-index.log"


@pytest.fixture(scope="module")
def up():
    if os.geteuid() != 0:
        pytest.fail("the cluster needs root (namespaces, a bridge)")
    cluster.up(len(COMPUTE), print, lustre_servers=len(SERVERS))
    yield cluster.load()[1]
    cluster.down(print)


def _found(up, exprs: list[str]) -> list[bool]:
    """Does pmproxy find a series for each query?  One process in the logger node for all."""
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); from tests.logger import http11; "
            "print(json.dumps([bool(json.loads(http11.get(44322, '/series/query', {'expr': e})[1].decode())) "
            "for e in json.loads(sys.argv[2])]))")
    return json.loads(up[LOGGER].run(sys.executable, "-c", code, REPO, json.dumps(exprs), timeout=120).stdout)


def _job_values(ns, job: str) -> dict[str, set[str]]:
    """Per-job metric → the job's instance names that the node's own pmcd has a value for
    (``<filesystem>/<job>`` in hpc.lustre.job.*, ``<job>`` in hpc.job.job.*)."""
    # a Lustre server runs no hpcjob: each subtree alone, its absence is no error
    out = "\n".join(ns.run("pminfo", "-f", prefix, check=False).stdout for prefix in PER_JOB)
    found: dict[str, set[str]] = {}
    metric = None
    for line in out.splitlines():
        if line and not line[0].isspace():
            metric = line.strip()
        elif metric and "inst [" in line and " value " in line:
            name = line.split('"', 2)[1] if '"' in line else ""
            if name == job or name.endswith(f"/{job}"):
                found.setdefault(metric, set()).add(name)
    return found


def _missing(up, wanted: dict[str, dict[str, set[str]]]) -> list[str]:
    """(node, metric, instance) the node's pmcd has but pmproxy cannot find by instance name,
    among the metrics pmproxy has for the node (logged, and sampled at least once)."""
    metrics = [(node, m) for node, per in wanted.items() for m in sorted(per)]
    logged = _found(up, [f'{m}{{hostname == "{node}"}}' for node, m in metrics])
    pairs = [(node, m, name) for (node, m), ok in zip(metrics, logged, strict=True) if ok
             for name in sorted(wanted[node][m])]
    hits = _found(up, [f'{m}{{hostname == "{node}", instance.name == "{name}"}}' for node, m, name in pairs])
    return [f"{node}:{m}[{name}]" for (node, m, name), ok in zip(pairs, hits, strict=True) if not ok]


def _board_hosts(get, job: str) -> set[str]:
    """Hosts whose values of ``job`` the job board's "Bytes" panel queries return.  Each
    instance's labels are asked alone: pmproxy 6.0.3 answers /series/labels for several ids
    with a label set split over several entries of one id (tests/logger/panels.py keeps the
    last: a field without its hostname)."""
    panel = next(p for p in dashboards.generate()["hpc-job.json"]["panels"] if p.get("title") == "Bytes")
    hosts: set[str] = set()
    for target in panel["targets"]:
        series = get("/series/query", expr=substitute(target["expr"], {"job": job}))
        if not series:
            continue
        mine = {i["instance"] for i in get("/series/instances", series=",".join(series))
                if i["name"].endswith(f"/{job}")}
        points = get("/series/values", series=",".join(series), start=_window()[0], finish=_window()[1])
        for inst in {p.get("instance") for p in points} & mine:
            for entry in get("/series/labels", series=inst):
                hosts.add(entry.get("labels", {}).get("hostname", ""))
    return hosts - {""}


def _index_pid(ns) -> int | None:
    for pid in ns.processes():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"series-index" in f.read():
                    return pid
        except OSError:
            continue
    return None


def _index_log(up) -> str:
    return up[LOGGER].run("tail", "-5", INDEX_LOG, check=False).stdout


def test_setup_runs_the_series_index_on_this_pcp(up):
    assert NEEDED == (_index_pid(up[LOGGER]) is not None), _index_log(up)


@pytest.mark.skipif(not NEEDED, reason="PCP >= 6.3.4: pmproxy indexes later instances itself")
def test_without_the_index_a_later_job_is_found_in_one_lustre_metric_then_everywhere_with_it(up):
    """The control.  Index stopped: a new job, recorded by pmlogger and loaded by pmproxy (found
    by name in some Lustre job metric of each server), is not found in write.bytes.  Index started
    again: it is, with the values pmproxy stored before."""
    code = ("import sys; from hpc_pcp import logger; "
            "sys.exit(0 if logger.start_series_index(sys.argv[1], print) else 1)")
    pid = _index_pid(up[LOGGER])
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: _index_pid(up[LOGGER]) is None, timeout=10, interval=0.2, what="the index to stop")
    job = None
    try:   # whatever fails, the index runs again for the next test
        job = _two_node_job(up, "noindex", 150 + 2 * int(JOB_LOG))
        metrics = sorted({m for node in SERVERS for m in _job_values(up[node], job)})

        def by_name() -> dict[str, bool] | None:
            hits = dict(zip(metrics, _found(up, [f'{m}{{instance.name ~~ "*/{job}"}}' for m in metrics]),
                            strict=True))
            return hits if any(hits.values()) else None
        wait_for(by_name, timeout=60 + JOB_LOG, interval=3, what=f"pmproxy to load job {job}")
        time.sleep(JOB_LOG + 5)   # another sample of the job's metrics: pmproxy saw the job again
        loaded = by_name() or {}
        per_server = {node: _found(up, [f'hpc.lustre.job.write.bytes{{hostname == "{node}", '
                                        f'instance.name ~~ "*/{job}"}}'])[0] for node in SERVERS}
        print(f"job {job}, no series index: found by name per Lustre metric {loaded}, "
              f"write.bytes per server {per_server}")
        assert not any(per_server.values()), per_server
        assert 0 < sum(loaded.values()) < len(loaded), loaded

        restarted = time.time()
        up[LOGGER].run(sys.executable, "-c", code, UNIT, env=PYTHON_ENV)
        get = _pmproxy(up)
        expr = f'hpc.lustre.job.write.bytes{{hostname == "{SERVERS[0]}", instance.name ~~ "*/{job}"}}'
        series = wait_for(lambda: get("/series/query", expr=expr), timeout=40 + JOB_LOG, interval=2,
                          what=f"job {job} in write.bytes once indexed")
        names = {i["instance"]: i["name"] for i in get("/series/instances", series=series[0])}
        stamps = [p["timestamp"] / 1000 for p in get("/series/values", series=series[0], start=_window()[0],
                                                     finish=_window()[1])
                  if names.get(p["instance"], "").endswith(f"/{job}")]
        print(f"job {job} indexed {time.time() - restarted:.0f} s after the index started; its "
              f"write.bytes samples from before then: {sum(t < restarted for t in stamps)} of {len(stamps)}")
        assert any(t < restarted - 10 for t in stamps), (stamps, restarted)
    finally:
        if job:
            slurm.run(up["head"], "scancel", job)
        if _index_pid(up[LOGGER]) is None:
            done = up[LOGGER].run(sys.executable, "-c", code, UNIT, env=PYTHON_ENV, check=False)
            print(f"series index restarted (exit {done.returncode}): {done.stdout}{done.stderr}")


def test_job_started_after_the_logger_is_found_in_every_per_job_metric_on_both_nodes(up):
    assert _index_pid(up[LOGGER]) is not None or not NEEDED, f"no series index; its log:\n{_index_log(up)}"
    get = _pmproxy(up)
    try:   # a job that starts now starts after pmproxy cached the nodes' per-job metrics
        wait_for(lambda: all(_found(up, [f'hpc.job.job.state{{hostname == "{n}"}}' for n in COMPUTE])),
                 timeout=120, interval=2, what="pmproxy to have the compute nodes' job series")
    except AssertionError:
        def per_node(metric: str) -> dict[str, bool]:
            hits = _found(up, [f'{metric}{{hostname == "{n}"}}' for n in COMPUTE])
            return dict(zip(COMPUTE, hits, strict=True))
        log = up[LOGGER].run("tail", "-5", "/var/log/pcp/pmproxy/pmproxy.log", check=False).stdout
        raise AssertionError(f"pmproxy has no hpc.job.job.state of some compute node after 120 s: "
                             f"{per_node('hpc.job.job.state')}; any series of the node (IB): "
                             f"{per_node('hpc.ib.port.xmit.bytes')}; pmproxy.log:\n{log}") from None
    job = _two_node_job(up, "newjob", 150 + 2 * int(JOB_LOG))    # after pmproxy has the Lustre job series
    started = time.monotonic()
    try:
        for node in COMPUTE:    # hpcjob refreshes on its own interval: wait for the job there too
            wait_for(lambda node=node: any(m.startswith("hpc.job.job.") for m in _job_values(up[node], job)),
                     timeout=40, interval=1, what=f"{node}: job {job} in hpc.job.job.*")
        wanted = {node: _job_values(up[node], job) for node in (*COMPUTE, *SERVERS)}
        for node in COMPUTE:
            assert any(m.startswith("hpc.job.job.") for m in wanted[node]), (node, wanted[node])
        for node in SERVERS:
            assert any(m.startswith("hpc.lustre.job.") for m in wanted[node]), (node, wanted[node])
        last: list[str] = []

        def all_found() -> bool:
            last[:] = _missing(up, wanted)
            return not last
        try:
            wait_for(all_found, timeout=90 + JOB_LOG, interval=2, what=f"job {job} in every per-job metric")
        except AssertionError:
            raise AssertionError(f"job {job}: not found by name through pmproxy: {last}\n"
                                 f"series index log:\n{_index_log(up)}") from None
        checked = {n: sum(len(v) for v in m.values()) for n, m in wanted.items()}
        print(f"job {job}: found by name in every per-job metric, (metric, instance) pairs per node "
              f"{checked}, {time.monotonic() - started:.0f} s after its values were on the pmcds")
        # and the job board's "Bytes" queries return the job's values from both servers
        hosts = wait_for(lambda: (found := _board_hosts(get, job)) >= set(SERVERS) and found,
                         timeout=40 + JOB_LOG, interval=2,
                         what=f"job {job} from both servers in the board's queries")
        print(f"job {job}: the job board's Bytes queries have its values from {sorted(hosts)}")
    finally:
        slurm.run(up["head"], "scancel", job)


def test_down_leaves_nothing_behind(up):
    pid = _index_pid(up[LOGGER])
    assert not cluster.down(print)
    assert pid is None or not os.path.exists(f"/proc/{pid}")
