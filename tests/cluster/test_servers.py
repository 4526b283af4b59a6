"""The cluster's Lustre servers (issue #18): two server nodes, oss01 (OSTs and the MDTs) and
oss02 (OSTs), beside two compute nodes that are Lustre clients only.  The servers' job_stats
follow the Slurm jobs actually running, under the host-suffixed ids compute nodes stamp
(``jobid_name=%j:%u:%H``), and a job's bytes on a server are the sum of what its clients sent
that server's targets, as each client's ledger says, within a period.  Every figure is read
through the servers' own pmcd (hpclustre parsing the job_stats files and folding a job's
ids into ``<filesystem>/<job>``).  No logger node: nothing here goes through pmproxy.
"""
from __future__ import annotations

import os
import re
import time

import pytest

from hpc_demo.cluster import cluster, lustre, slurm, sources
from hpc_demo.cluster.layout import servers
from hpc_demo.cluster.slurm import FIRST_JOB_ID
from hpc_demo.cluster.ticker import JOBS_PER_NODE
from tests.harness.pcp import wait_for

COMPUTE = ("node01", "node02")
SERVERS = ("oss01", "oss02")
PERIOD = 5   # the ticker's


@pytest.fixture(scope="module")
def up():
    if os.geteuid() != 0:
        pytest.fail("the cluster needs root (namespaces, a bridge)")
    print("start times (s):", cluster.up(len(COMPUTE), print, logger=False, lustre_servers=len(SERVERS)))
    nodes, namespaces = cluster.load()
    yield {n.name: n for n in nodes}, namespaces
    assert cluster.down(print) == []


def _values(ns, metric: str) -> dict[str, float]:
    """Instance → value of a metric on the node's own pmcd."""
    out = ns.run("pminfo", "-f", metric, check=False, timeout=20).stdout
    return {m.group(1): float(m.group(2)) for m in re.finditer(r'inst \[\d+ or "([^"]*)"\] value (\S+)', out)}


def _jobs(head, states: str = "R") -> dict[str, list[str]]:
    """Slurm job id → its nodes, for jobs in ``states``."""
    from ClusterShell.NodeSet import NodeSet

    found = {}
    for line in slurm.run(head, "squeue", "-h", "-t", states, "-o", "%i %N").splitlines():
        job, *nodes = line.split()
        found[job] = list(NodeSet(nodes[0])) if nodes else []
    return found


def test_servers_serve_and_compute_nodes_are_clients(up):
    nodes, namespaces = up
    rows = {r["node"]: r for r in cluster.status()}
    assert set(rows) == {"head", *COMPUTE, *SERVERS}
    for name in SERVERS:
        assert rows[name]["up"] and rows[name]["pmcd"] == name and rows[name]["agents"] == ["hpclustre"]
    assert rows["oss01"]["targets"] == lustre.served(1, 2) and rows["oss02"]["targets"] == lustre.served(2, 2)
    targets = {lustre.ost_name(fs, i) for fs in lustre.FILESYSTEMS for i in range(lustre.OSTS)} | {
        lustre.mdt_name(fs) for fs in lustre.FILESYSTEMS}
    for name in COMPUTE:   # client statistics, no server target, no job_stats
        ns = namespaces[name]
        # RPC wait times move from the start (pings); bytes once a job has written there
        wait_for(lambda ns=ns: set(_values(ns, "hpc.lustre.client.target.waittime.count")) == targets,
                 timeout=30, interval=1, what=f"{name}: its OSC and MDC statistics")
        wait_for(lambda ns=ns: _values(ns, "hpc.lustre.client.write.bytes"), timeout=60, interval=1,
                 what=f"{name}: its client's written bytes")
        assert _values(ns, "hpc.lustre.server.target.write.bytes") == {}
        assert _values(ns, "hpc.lustre.job.write.bytes") == {}
    for name in SERVERS:
        ns = namespaces[name]
        assert _values(ns, "hpc.lustre.client.write.bytes") == {}
        osts = {t for t in rows[name]["targets"] if "-OST" in t}
        served = set(wait_for(lambda ns=ns: _values(ns, "hpc.lustre.server.target.write.bytes"), timeout=30,
                              interval=1, what=f"{name}'s OSTs"))
        assert osts <= served <= set(rows[name]["targets"]), (name, served)


def _server_job_ids(node) -> dict[str, set[str]]:
    """Raw job ids in the server tree's job_stats files, by target."""
    found: dict[str, set[str]] = {}
    root = sources._lustre_root(node)
    for kind in ("obdfilter", "mdt"):
        base = os.path.join(root, "proc", "fs", "lustre", kind)
        for target in os.listdir(base) if os.path.isdir(base) else []:
            with open(os.path.join(base, target, "job_stats"), encoding="utf-8") as f:
                found[target] = set(re.findall(r'job_id:\s+"?([^"\n]+)"?', f.read()))
    return found


def test_job_stats_follow_the_running_jobs(up):
    """Every job running for two periods is on the servers, under one id per node it runs on;
    every id there is a Slurm job's on a node it ran on; a job's folded instance is on the
    servers' pmcd.  (The ticker keeps JOBS_PER_NODE jobs per node running or pending.)"""
    nodes, namespaces = up
    head = namespaces["head"]
    wait_for(lambda: len(_jobs(head)) >= 2, timeout=60, interval=1, what="the job mix running")
    seen = {j: time.monotonic() for j in _jobs(head)}
    time.sleep(2 * PERIOD + 1)
    running = {j: n for j, n in _jobs(head).items() if j in seen}   # for two periods at least
    assert running
    everywhere = set().union(*(ids for s in SERVERS for ids in _server_job_ids(nodes[s]).values()))
    for job, on in running.items():
        assert {f"{job}:0:{node}" for node in on} <= everywhere, (job, on, sorted(everywhere))
    known = _jobs(head, "all")   # finished jobs stay listed MinJobAge (600 s), past the expiry (300 s)
    for raw in everywhere:
        job, uid, host = raw.split(":")
        assert int(job) >= FIRST_JOB_ID and job in known and host in known[job] and uid == "0", raw
    folded = set()
    for name in SERVERS:
        folded |= {i.split("/", 1)[1] for i in _values(namespaces[name], "hpc.lustre.job.write.bytes")}
    assert set(running) <= folded <= set(known), (running, folded)
    print(f"{len(running)} running jobs (mix of {JOBS_PER_NODE} per node), {len(everywhere)} job ids "
          f"on the servers, {len(folded)} jobs in their pmcd")


def _written_on(ns, job: str) -> dict[str, float]:
    """The job's hpc.lustre.job.write.bytes on a server's pmcd, by filesystem."""
    return {i.split("/")[0]: v for i, v in _values(ns, "hpc.lustre.job.write.bytes").items()
            if i.endswith(f"/{job}")}


def test_a_jobs_bytes_on_each_server_are_the_sum_of_its_clients(up):
    nodes, namespaces = up
    head = namespaces["head"]
    job = slurm.run(head, "sbatch", "--parsable", "-N", "2", "-n", "2", "-J", "io-sum", "-o", "/dev/null",
                    "--wrap", "srun sleep 90").strip()
    try:
        wait_for(lambda: _jobs(head).get(job) == list(COMPUTE), timeout=40, interval=0.5,
                 what=f"job {job} running on both nodes")
        for name in SERVERS:
            wait_for(lambda name=name: len(_written_on(namespaces[name], job)) > 0, timeout=40, interval=1,
                     what=f"job {job} in {name}'s job_stats")
        time.sleep(PERIOD)
        for name in SERVERS:
            index = SERVERS.index(name) + 1

            def matched(name=name, index=index):
                """The server's figure, and the period at which the clients' ledgers add up
                to exactly it (None while no logged period does)."""
                on_server = _written_on(namespaces[name], job)
                logs = {c: dict((when, ledger) for when, ledger in sources.lustre_state(nodes[c])["log"])
                        for c in COMPUTE}
                last = max(max(log) for log in logs.values())
                for when in sorted(set.intersection(*(set(log) for log in logs.values())), reverse=True):
                    clients: dict[str, int] = {}
                    for c in COMPUTE:
                        for target, (_, written) in logs[c][when].get(f"{job}:0:{c}", {}).items():
                            if target in lustre.served(index, len(SERVERS)):
                                fs = target.rsplit("-", 1)[0]
                                clients[fs] = clients.get(fs, 0) + written
                    if clients and clients == on_server:
                        return on_server, when, last
                return None
            on_server, when, last = wait_for(matched, timeout=30, interval=1,
                                             what=f"{name}'s bytes of job {job} = its clients' sum")
            assert last - when <= 2 * PERIOD + 1, (name, last - when)   # a recent period, not the first
            assert all(v > 0 for v in on_server.values())
            print(f"{name}: job {job} wrote {on_server} = node01 + node02 at a period {last - when:.0f} s "
                  "before the clients' last")
        assert {n.name for n in servers(list(nodes.values()))} == set(SERVERS)
    finally:
        slurm.run(head, "scancel", job, check=False)
