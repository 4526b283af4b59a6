"""The cluster on one machine (hpc-demo cluster): two compute nodes, two Lustre servers, a head
and a logger node, started once for this file (~40 s) and taken down by its last test, which
checks that no namespace, process, mount, link, bridge or job cgroup is left.

The admin workflow runs on it, timed: a fault on node02 → pmie on the logger node fires an
alarm naming node02 (and nothing on node01) → the fault is removed → the alarm clears.
"""
from __future__ import annotations

import json
import os
import re
import sys
import time
import urllib.parse

import pytest

from hpc_demo.cluster import cluster, slurm
from hpc_demo.cluster.layout import BASE, BRIDGE, LOGGER, REDIS_PORTS
from hpc_demo.localslurm import job_cgroups
from hpc_demo.namespace import members, namespace_id
from hpc_pcp import dashboards, logger
from tests.harness.pcp import wait_for
from tests.logger.panels import panel_data, target_fields, transform

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

COMPUTE = ("node01", "node02")
SERVERS = ("oss01", "oss02")   # OSTs of each filesystem on both, the MDTs on oss01
AGENTS = {"hpcib", "hpcjob", "hpclustre"}
# A job's task on each of its nodes: some CPU, 16 MiB held, then a wait (srun: one per node).


def _logged_every(metric: str, farm: float = 10.0) -> float:
    """Seconds between samples of ``metric`` in the shipped pmlogconf groups (the delta of the
    group that names it; else the farm's interval)."""
    for text in logger.pmlogconf_groups().values():
        if re.search(rf"(?m)^\s+{re.escape(metric)}$", text):
            found = re.search(r"(?m)^delta\s+(\d+)\s*(\w+)", text)
            if found:
                return int(found.group(1)) * (60 if found.group(2).startswith("min") else 1)
    return farm


JOB_LOG = _logged_every("hpc.lustre.job")   # the servers' job_stats (the farm's 10 s by default)
TASK = "python3 -c 'import time; b = bytearray(16 << 20); sum(range(1_000_000)); time.sleep({seconds})'"
FIRING = os.path.join(BASE, LOGGER, "pcp", "lib", "config", "hpc", "alarms", "firing")
TIMES: dict[str, float] = {}


@pytest.fixture(scope="module")
def up():
    if os.geteuid() != 0:
        pytest.fail("the cluster needs root (namespaces, a bridge)")
    TIMES.update(cluster.up(len(COMPUTE), print, lustre_servers=len(SERVERS)))
    print("start times (s):", TIMES)
    yield cluster.load()[1]
    cluster.down(print)


def test_every_node_is_healthy(up):
    rows = {r["node"]: r for r in cluster.status()}
    assert set(rows) == {"head", LOGGER, *COMPUTE, *SERVERS}
    for name, row in rows.items():
        assert row["up"] and row["pmcd"] == name, row      # its own pmcd, its own hostname
    for name in COMPUTE:
        assert set(rows[name]["agents"]) == AGENTS, rows[name]
        assert rows[name]["slurm"] in ("idle", "mixed", "allocated"), rows[name]
    for name in SERVERS:
        assert rows[name]["agents"] == ["hpclustre"], rows[name]
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


def _pmproxy(up):
    """pmproxy's REST API on the logger node, as tests/logger/panels.py calls it: over HTTP/1.1
    (tests/logger/http11.py; pmproxy 6.0.3 streams big replies chunked, which urllib misread)."""
    def get(path: str, **params) -> object:
        code = ("import sys; sys.path.insert(0, sys.argv[1]); from tests.logger import http11; "
                "sys.stdout.write(http11.get(44322, sys.argv[2], dict(zip(sys.argv[3::2], "
                "sys.argv[4::2])))[1].decode())")
        args = [a for kv in params.items() for a in map(str, kv)]
        return json.loads(up[LOGGER].run(sys.executable, "-c", code, REPO, path, *args).stdout)
    return get


def _window() -> tuple[int, int]:
    now = int(time.time())
    return now - 300, now + 10


def _lustre_written(ns, job: str) -> float | None:
    """The job's hpc.lustre.job.write.bytes on a Lustre server's own pmcd, over its filesystems
    (hpclustre folds the job_stats ids <job>:0:node01 and <job>:0:node02 into <filesystem>/<job>),
    None while it has none."""
    out = ns.run("pminfo", "-f", "hpc.lustre.job.write.bytes").stdout
    values = [float(line.rsplit("value", 1)[1]) for line in out.splitlines() if f'/{job}"]' in line]
    return sum(values) if values else None


def _lustre_known_to_pmproxy(get) -> bool:
    """pmproxy has recorded hpc.lustre.job.write.bytes of every Lustre server: a job that starts
    now starts after pmproxy first saw the metric (else its instances come with the metric)."""
    return all(get("/series/query", expr=f'hpc.lustre.job.write.bytes{{hostname == "{node}"}}')
               for node in SERVERS)


def _why_no_lustre_series(up) -> str:
    """What a failed wait for the servers' job series saw: per server, the Lustre job metrics
    pmproxy finds and the job instances its pmcd has; the logger's pmproxy and index logs."""
    get = _pmproxy(up)
    lines = []
    for node in SERVERS:
        found = {m: bool(get("/series/query", expr=f'hpc.lustre.job.{m}{{hostname == "{node}"}}'))
                 for m in ("write.bytes", "read.bytes", "io_rate", "mdt.ops_rate")}
        pmcd = up[node].run("pminfo", "-f", "hpc.lustre.job.write.bytes", check=False).stdout
        lines.append(f"{node}: pmproxy finds {found}; its pmcd has {pmcd.count('inst [')} job instances")
        # the chain on the logger: pmlogconf's choice for the node, its archive, its pmlogger
        chosen = up[LOGGER].run("grep", "-h", "^#+ hpc/", f"/var/lib/pcp/config/pmlogger/config.hpc-{node}",
                                check=False).stdout.split()
        chosen = [word for word in chosen if word.startswith("hpc/")]
        archive = up[LOGGER].run("pminfo", "-a", f"/var/log/pcp/pmlogger/{node}", "-f",
                                 "hpc.lustre.job.write.bytes", check=False)
        lines.append(f"{node}: pmlogconf groups {chosen}; its archive has "
                     f"{archive.stdout.count('inst [')} job values ({archive.stderr.strip()[-200:]})")
        lines.append(up[LOGGER].run("tail", "-4", f"/var/log/pcp/pmlogger/{node}/pmlogger.log",
                                    check=False).stdout)
    for log in ("/var/log/pcp/pmproxy/hpc-series-index.log", "/var/log/pcp/pmproxy/pmproxy.log",
                "/var/log/pcp/pmlogger/pmlogger_check.log"):
        lines.append(f"{log}:\n" + up[LOGGER].run("tail", "-12", log, check=False).stdout)
    ticker = os.path.join(BASE, "head", "ticker.log")   # the jobs whose I/O the servers count
    lines.append(f"{ticker}:\n" + up["head"].run("tail", "-5", ticker, check=False).stdout)
    lines.append("squeue: " + slurm.run(up["head"], "squeue", "-h", "-o", "%i %t %N", check=False))
    return "\n".join(lines)


def _two_node_job(up, name: str, seconds: int) -> str:
    try:
        wait_for(lambda: _lustre_known_to_pmproxy(_pmproxy(up)), timeout=60 + JOB_LOG, interval=2,
                 what="pmproxy to have the Lustre servers' job series")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{_why_no_lustre_series(up)}") from None
    job = slurm.run(up["head"], "sbatch", "--parsable", "-N", "2", "-n", "2", "-J", name,
                    "-o", "/dev/null", "--wrap", "srun " + TASK.format(seconds=seconds)).strip()
    for node in [n for n in SERVERS if n in up]:   # each server's pmcd has the job, by its id
        wait_for(lambda node=node: _lustre_written(up[node], job), timeout=40, interval=1,
                 what=f"{node}: job {job} in Lustre job_stats as <filesystem>/{job}")
    return job


def test_job_started_after_the_logger_is_in_the_job_board_on_both_nodes(up):
    """Cluster-wide truth: a job on two nodes, started while the logger records, is in the job
    dashboard's per-server Lustre panel from both hosts, and only that job.  (The board selects
    by instance name: pmlogger 6.0.3 logs no labels for instances that appear after its start;
    pmproxy 6.0.3 names such an instance in one metric of its domain only, and the logger's
    series index adds the rest: tests/cluster/test_new_jobs.py.)"""
    job = _two_node_job(up, "truth", 90 + int(JOB_LOG))
    get = _pmproxy(up)
    try:
        by_label = get("/series/query", expr=f'hpc.lustre.job.write.bytes{{job == "{job}"}}')
        print(f"job {job} by its job label through pmproxy: {len(by_label)} series (PCP 6.0.3: none)")
        shown = wait_for(lambda: (fields := panel_data(get, "hpc-job.json", "Bytes", {"job": job},
                                                       _window()))
                         and {f.labels["hostname"] for f in fields} >= set(SERVERS) and fields,
                         timeout=60 + JOB_LOG, interval=2,
                         what=f"job {job} from both servers in the job board")
        assert {f.name for f in shown} == {job}, [f.name for f in shown]
    finally:
        slurm.run(up["head"], "scancel", job)


def _panel(board: str, title: str) -> dict:
    return next(p for p in dashboards.generate()[board]["panels"] if p.get("title") == title)


def test_two_node_job_is_summed_in_the_job_board_and_ranked_by_its_sum(up):
    """A job on two nodes, through pmproxy as the boards query it: the job board's "Lustre bytes
    written" is the sum of the job's last recorded total on the two Lustre servers (each sums
    the job's ids from node01 and node02), its "CPU time" and "Memory" are the sums of the job's
    last recorded cgroup figures on node01 and node02, and the summary's top-N ranks it by the
    sum of its last rates on the servers.  Each host's figure is read apart (its own hostname,
    no instance selection, no transformations) and checked against its own pmcd."""
    job = _two_node_job(up, "summed", 120 + 2 * int(JOB_LOG))
    get = _pmproxy(up)
    top = _panel("hpc-cluster.json", "Top jobs by Lustre writes")
    assert top["transformations"][-1]["id"] == "limit"
    try:
        time.sleep(JOB_LOG + 2)   # pmlogger records the job, pmproxy loads it
        named = {m: bool(get("/series/query", expr=f'hpc.lustre.job.{m}{{instance.name ~~ "*/{job}"}}'))
                 for m in ("write.bytes", "read.bytes", "io_rate", "mdt.ops_rate")}
        print(f"job {job} found by name 12 s after its start, per metric: {named}")

        def per_host(metric: str, hosts: tuple[str, ...], rate: bool = False) -> dict[str, float]:
            """Host → the job's last recorded value there (Lustre: over its filesystems)."""
            found = {}
            for node in hosts:
                target = {"expr": f'{metric}{{hostname == "{node}"}}', "refId": "A",
                          "legendFormat": "$instance", "options": {"rateConversion": rate}}
                mine = [f.values[-1][1] for f in target_fields(get, target, {}, _window())
                        if (f.name.endswith(f"/{job}") or f.name == job) and f.values]
                if mine:
                    found[node] = sum(mine)
            return found

        def consistent(read, panels) -> tuple | None:
            """What the panels show and the per-host figures, when no new sample landed while
            they were read (else None); Lustre and cgroups apart, each read within a sample."""
            before = read()
            shown = panels()
            after = read()
            seen[read.__name__] = (before, after)
            if before is None or after != before:
                return None
            return shown, before
        seen: dict[str, tuple] = {}   # the last reads, for a failure's message

        def lustre_read() -> tuple | None:
            totals = per_host("hpc.lustre.job.write.bytes", SERVERS)
            rates = per_host("hpc.lustre.job.write.bytes", SERVERS, rate=True)
            ok = {*totals, *rates} == set(SERVERS) and all(rates.values())
            return (totals, rates) if ok else None

        def lustre_panels() -> tuple:
            fields = [f for t in top["targets"] for f in target_fields(get, t, {}, _window())]
            return (panel_data(get, "hpc-job.json", "Lustre bytes written", {"job": job}, _window()),
                    transform(fields, top["transformations"][:-1], {}))

        def cgroup_read() -> tuple | None:
            cpu = per_host("hpc.job.job.cgroup.cpu_time", COMPUTE)
            memory = per_host("hpc.job.job.cgroup.memory.current", COMPUTE)
            return (cpu, memory) if {*cpu, *memory} == set(COMPUTE) else None

        def cgroup_panels() -> list:
            return [panel_data(get, "hpc-job.json", title, {"job": job}, _window())
                    for title in ("CPU time", "Memory")]

        try:
            (lustre, ranked), (totals, rates) = wait_for(lambda: consistent(lustre_read, lustre_panels),
                                                         timeout=90 + 2 * JOB_LOG, interval=3,
                                                         what=f"job {job} recorded on both servers")
            now = {node: _lustre_written(up[node], job) for node in SERVERS}
            (cpu_time, memory_now), (cpu, memory) = wait_for(
                lambda: consistent(cgroup_read, cgroup_panels), timeout=90, interval=3,
                what=f"job {job}'s cgroups recorded on both nodes")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last reads (before, after the panels): {seen}") from None
        cpu_now = {node: float(up[node].run("pminfo", "-f", "hpc.job.job.cgroup.cpu_time").stdout
                               .split(f'"{job}"] value ')[1].split()[0]) for node in COMPUTE}
    finally:
        slurm.run(up["head"], "scancel", job)
    assert lustre == [{"Field": job, "Last * (sum)": sum(totals.values())}], (lustre, totals)
    for node, recorded in totals.items():   # a counter: recorded then, its pmcd has at least that now
        assert 0 < recorded <= now[node], (node, recorded, now)
    # The job's cgroups on both nodes: CPU time and memory summed over its nodes.
    assert cpu_time == [{"Field": job, "Last * (sum)": sum(cpu.values())}], (cpu_time, cpu)
    assert memory_now == [{"Field": job, "Last * (sum)": sum(memory.values())}], (memory_now, memory)
    for node in COMPUTE:
        assert 0 < cpu[node] <= cpu_now[node] and memory[node] >= 16 << 20, (node, cpu, cpu_now, memory)
    row = next(r for r in ranked if r["Field"] == job)
    assert row["Last * (sum)"] == pytest.approx(sum(rates.values()))
    assert row["Last * (sum)"] > max(rates.values())
    sums = [r["Last * (sum)"] for r in ranked]
    assert sums == sorted(sums, reverse=True)
    shown = transform(ranked, top["transformations"][-1:], {})
    assert shown == ranked[:10] and (row in shown) == (ranked.index(row) < 10)
    print(f"job {job}: recorded written bytes per server {totals} → job board "
          f"{lustre[0]['Last * (sum)']:.0f}; CPU ns per node {cpu} → {cpu_time[0]['Last * (sum)']:.0f}; "
          f"memory per node {memory} → {memory_now[0]['Last * (sum)']:.0f}; rates per server {rates} → top-N "
          f"{row['Last * (sum)']:.0f} B/s, rank {ranked.index(row) + 1} of {len(ranked)}")


def _firing() -> set[str]:
    return set(os.listdir(FIRING)) if os.path.isdir(FIRING) else set()


VALKEY = "performancecopilot-valkey-datasource"


def _hosts_shown(get, panel: dict, values: dict[str, str], window: tuple[int, int]) -> set[str]:
    """The hosts whose series the panel's history targets return values for.  A field's host
    is its hostname label; pmproxy 6.0.3 names no labels for a metric series and may not have
    written a new instance's labels yet, and then the host is the one whose series of that
    metric the field's is ("?" if none)."""
    hosts = set()
    for t in panel["targets"]:
        if t["datasource"]["type"] != VALKEY:
            continue
        for f in target_fields(get, t, values, window):
            if f.values:
                hosts.add(f.labels.get("hostname") or _host_of(get, t["expr"], f.series))
    return hosts


def _host_of(get, expr: str, series: str) -> str:
    metric = expr.split("{", 1)[0].strip()
    for host in ("head", LOGGER, *COMPUTE, *SERVERS):
        if series in get("/series/query", expr=f'{metric}{{hostname == "{host}"}}'):
            return host
    return "?"


def _hosts_with(get, panel: dict, window: tuple[int, int]) -> set[str]:
    """The hosts with values of the panel's metrics in the window, whatever it selects."""
    bare = {**panel, "targets": [{**t, "expr": t["expr"].split("{", 1)[0]} for t in panel["targets"]]}
    return _hosts_shown(get, bare, {}, window)


def test_every_cluster_and_per_host_panel_shows_two_hosts(up):
    """Every history panel of every board, as grafana-pcp asks pmproxy for it: a cluster panel
    (no $host) shows series of two hosts or more — a job panel those of the job's nodes or
    servers — and a per-host panel ($host) shows, for each of two hosts, that host's series and
    no other.  Panels whose metrics no two hosts here serve (alarms: the logger only; DTN,
    bpftrace: not run here) are listed, not counted."""
    get = _pmproxy(up)
    wait_for(lambda: _hosts_shown(get, {"targets": [{"expr": "hpc.ib.port.xmit.bytes", "refId": "A",
                                                      "legendFormat": "$instance", "datasource": {
                                                          "type": VALKEY}}]}, {}, _window()) >= set(COMPUTE),
             timeout=120, interval=3, what="pmproxy to have values of every compute node")
    job = _two_node_job(up, "panels", 150 + 2 * int(JOB_LOG))
    try:
        time.sleep(2 * JOB_LOG + 5)   # recorded in two samples (rates), loaded by pmproxy
        window = _window()
        checked, exempt, wrong = [], [], []
        for filename, board in dashboards.generate().items():
            for panel in board["panels"]:
                targets = [t for t in panel.get("targets", []) if t["datasource"]["type"] == VALKEY]
                if panel["type"] == "row" or not targets:
                    continue
                where = f"{filename} / {panel['title']}"
                serving = _hosts_with(get, {**panel, "targets": targets}, window)
                if len(serving) < 2:
                    exempt.append(f"{where} ({len(serving)} host)")
                    continue
                exprs = " ".join(t["expr"] for t in targets)
                if "$host" in exprs or "${host}" in exprs:
                    hosts = sorted(serving - {"?"})[:2]
                    for host in hosts:
                        shown = _hosts_shown(get, panel, {"host": host, "job": job}, window)
                        if shown != {host}:
                            wrong.append(f"{where} for {host}: {sorted(shown)}")
                else:
                    shown = _hosts_shown(get, panel, {"job": job}, window)
                    if len(shown) < 2:
                        wrong.append(f"{where}: {sorted(shown)} of {sorted(serving)}")
                checked.append(where)
    finally:
        slurm.run(up["head"], "scancel", job)
    print(f"panels checked on two hosts: {len(checked)}; not served by two hosts here: {exempt}")
    assert not wrong, wrong
    boards = {w.split(" / ")[0] for w in checked}
    assert {"hpc-cluster.json", "hpc-node.json", "hpc-job.json"} <= boards, boards


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
    cgroups = {node: job_cgroups(node) for node in COMPUTE}
    assert all(cgroups.values()), cgroups   # each node's jobs ran in its own Slurm cgroups
    t0 = time.monotonic()
    assert cluster.down(print) == []
    print(f"down in {time.monotonic() - t0:.1f}s")
    for name, kinds in ids.items():   # no process holds any of the node's namespaces: with
        for kind, ns_id in kinds.items():   # the mount namespace, every mount made for it is gone
            assert ns_id and members(ns_id, kind) == [], (name, kind)
    assert os.system(f"ip link show dev {BRIDGE} >/dev/null 2>&1") != 0
    assert "hv-" not in os.popen("ip -o link show").read()
    assert not os.path.exists(BASE)
    assert [group for node in COMPUTE for group in job_cgroups(node)] == []
