"""The cluster on one machine (hpc-demo cluster): two compute nodes, a head and a logger node,
started once for this file (~25 s) and taken down by its last test, which checks that no
namespace, process, mount, link or bridge is left.

The admin workflow runs on it, timed: a fault on node02 → pmie on the logger node fires an
alarm naming node02 (and nothing on node01) → the fault is removed → the alarm clears.
"""
from __future__ import annotations

import json
import os
import sys
import time
import urllib.parse

import pytest

from hpc_demo.cluster import cluster, slurm
from hpc_demo.cluster.layout import BASE, BRIDGE, LOGGER, REDIS_PORTS
from hpc_demo.namespace import members, namespace_id
from tests.harness.pcp import wait_for

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COMPUTE = ("node01", "node02")
AGENTS = {"hpcib", "hpcjob", "hpclustre"}
FIRING = os.path.join(BASE, LOGGER, "pcp", "lib", "config", "hpc", "alarms", "firing")
TIMES: dict[str, float] = {}


@pytest.fixture(scope="module")
def up():
    if os.geteuid() != 0:
        pytest.fail("the cluster needs root (namespaces, a bridge)")
    TIMES.update(cluster.up(len(COMPUTE), print))
    print("start times (s):", TIMES)
    yield cluster.load()[1]
    cluster.down(print)


def test_every_node_is_healthy(up):
    rows = {r["node"]: r for r in cluster.status()}
    assert set(rows) == {"head", LOGGER, *COMPUTE}
    for name, row in rows.items():
        assert row["up"] and row["pmcd"] == name, row      # its own pmcd, its own hostname
    for name in COMPUTE:
        assert set(rows[name]["agents"]) == AGENTS, rows[name]
        assert rows[name]["slurm"] in ("idle", "mixed", "allocated"), rows[name]
    print("memory (MiB PSS) per node:", {n: r["memory_mib"] for n, r in rows.items()})


def test_nodes_reach_each_other_over_the_bridge(up):
    """The logger fetches each node's pmcd by name; each node has its own PCP directories."""
    for name in COMPUTE:
        out = up[LOGGER].run("pminfo", "-h", name, "-f", "pmcd.hostname").stdout
        assert f'"{name}"' in out
    pids = {name: members(up[name].ns_id) for name in COMPUTE}
    assert pids["node01"] and not set(pids["node01"]) & set(pids["node02"])
    for name in COMPUTE:   # /etc/pcp is the node's own: its agents' settings name the node
        assert f"node_name: {name}" in up[name].run("cat", "/etc/pcp/hpc/hpcjob.yaml").stdout
        assert "hpclustre" in up[name].run("cat", "/etc/pcp/pmcd/pmcd.conf").stdout


def test_a_job_spans_two_nodes(up):
    job = slurm.run(up["head"], "sbatch", "--parsable", "-N", "2", "-n", "2", "-J", "span-test",
                    "-o", "/dev/null", "--wrap", "sleep 60").strip()
    nodes = wait_for(lambda: (line := slurm.run(up["head"], "squeue", "-h", "-j", job, "-o", "%t %N"))
                     .startswith("R ") and line.split()[1], timeout=30, interval=0.5,
                     what=f"job {job} running")
    assert nodes == "node[01-02]"
    for name in COMPUTE:   # each node's hpcjob knows the job
        wait_for(lambda name=name: f'"{job}' in up[name].run("pminfo", "-f", "hpc.job.job.cpus").stdout,
                 timeout=20, interval=1, what=f"{name} reporting job {job}")
    slurm.run(up["head"], "scancel", job)


def _job_board_query(panel: str) -> str:
    """The first query of a panel of the job dashboard, as shipped (not restated here)."""
    board = json.load(open(os.path.join(REPO, "grafana_dashboards", "hpc-job.json"), encoding="utf-8"))
    return next(p["targets"][0]["expr"] for p in board["panels"] if p.get("title") == panel)


@pytest.mark.xfail(strict=True, reason="PCP 6.0.3 pmlogger records instance labels when it starts "
                   "only: a job that starts later has no job label in the archive, so the job "
                   "dashboard's {job == ...} queries never find it (agents do not call "
                   "set_notify_change)")
def test_job_started_after_the_logger_is_in_the_job_board_on_both_nodes(up):
    """Cluster-wide truth: a job on two nodes, started while the logger records, returns data
    from both hosts in the job dashboard's Lustre query."""
    job = slurm.run(up["head"], "sbatch", "--parsable", "-N", "2", "-n", "2", "-J", "truth",
                    "-o", "/dev/null", "--wrap", "sleep 90").strip()
    for name in COMPUTE:   # the node's own pmcd labels the job's Lustre instances
        wait_for(lambda name=name: f'"job":"{job}"' in up[name].run(
            "pminfo", "-l", "hpc.lustre.job.read.bytes").stdout, timeout=30, interval=1,
            what=f"{name}: job {job} in Lustre job_stats with its job label")
    query = _job_board_query("Bytes").replace("$job", job)
    try:
        for name in COMPUTE:
            wait_for(lambda name=name: _series(up[LOGGER], "/series/query",
                                               expr=query.replace("}", f', hostname == "{name}"}}')),
                     timeout=25, interval=2, what=f"{query} from {name} through pmproxy")
    finally:
        slurm.run(up["head"], "scancel", job)


def _firing() -> set[str]:
    return set(os.listdir(FIRING)) if os.path.isdir(FIRING) else set()


def test_fault_alarm_names_the_node_then_clears(up):
    """Admin workflow: fault on node02 → alarm naming node02 → fault removed → alarm clears."""
    wait_for(lambda: not {f for f in _firing() if f.startswith("ib.")}, timeout=60, interval=1,
             what="no IB alarm before the fault")
    t0 = time.monotonic()
    cluster.fault("node02", "ib-errors")
    wait_for(lambda: "ib.symbol_errors@node02" in _firing(), timeout=90, interval=0.5,
             what="pmie alarm ib.symbol_errors@node02")
    TIMES["alarm_fired"] = round(time.monotonic() - t0, 1)
    assert not any(f.endswith("@node01") for f in _firing() if f.startswith("ib.")), _firing()
    # The summary board's alarm panel metric, from hpcalarm on the logger node, names the node.
    alarms = wait_for(lambda: ":node02:" in (out := up[LOGGER].run("pminfo", "-f", "hpc.alarm.firing").stdout)
                      and out, timeout=10, interval=0.5, what="hpc.alarm.firing naming node02")
    assert '"ib.symbol_errors:node02:' in alarms and ":node01:" not in alarms
    time.sleep(12)   # more than one pmie evaluation: the alarm holds while the fault does
    assert "ib.symbol_errors@node02" in _firing()
    t1 = time.monotonic()
    cluster.fault("node02", None)
    wait_for(lambda: "ib.symbol_errors@node02" not in _firing(), timeout=90, interval=0.5,
             what="alarm ib.symbol_errors@node02 to clear")
    TIMES["alarm_cleared"] = round(time.monotonic() - t1, 1)
    print("workflow times (s):", TIMES)


def test_port_down_and_slow_ost_alarm_on_their_nodes(up):
    """Two faults at once on two nodes: each alarm names its node only, and both clear."""
    expected = {"ib.port_not_active@node02", "lustre.rpc_wait_high@node01"}
    cluster.fault("node01", "ost-slow")
    cluster.fault("node02", "port-down")
    try:
        wait_for(lambda: expected <= _firing(), timeout=60, interval=0.5, what=f"alarms {expected}")
        assert "lustre.rpc_wait_high@node02" not in _firing()
        assert "ib.port_not_active@node01" not in _firing()
    finally:
        cluster.fault("node01", None)
        cluster.fault("node02", None)
    wait_for(lambda: not expected & _firing(), timeout=60, interval=0.5, what=f"alarms {expected} to clear")


def _series(ns, path: str, **params) -> object:
    url = f"http://127.0.0.1:44322{path}?{urllib.parse.urlencode(params)}"
    out = ns.run(sys.executable, "-c", "import sys, urllib.request; "
                 f"sys.stdout.write(urllib.request.urlopen({url!r}, timeout=10).read().decode())").stdout
    return json.loads(out)


def test_logger_series_from_every_node_in_a_sharded_store(up):
    logger = up[LOGGER]
    for name in COMPUTE:
        found = wait_for(lambda name=name: _series(logger, "/series/query",
                                                   expr=f'hpc.ib.port.xmit.bytes{{hostname:"{name}"}}'),
                         timeout=60, interval=2, what=f"series of {name} in pmproxy")
        assert len(found) == 1, found
    sizes = [int(logger.run("redis-cli", "-p", str(p), "dbsize").stdout) for p in REDIS_PORTS]
    assert all(size > 100 for size in sizes), sizes   # keys spread over all three shards


def test_down_leaves_nothing_behind(up):
    ids = {name: {kind: namespace_id(ns.pid, kind) for kind in ("pid", "net", "mnt", "uts", "ipc")}
           for name, ns in up.items()}
    t0 = time.monotonic()
    assert cluster.down(print) == []
    print(f"down in {time.monotonic() - t0:.1f}s")
    for name, kinds in ids.items():   # no process holds any of the node's namespaces: with
        for kind, ns_id in kinds.items():   # the mount namespace, every mount made for it is gone
            assert ns_id and members(ns_id, kind) == [], (name, kind)
    assert os.system(f"ip link show dev {BRIDGE} >/dev/null 2>&1") != 0
    assert "hv-" not in os.popen("ip -o link show").read()
    assert not os.path.exists(BASE)
