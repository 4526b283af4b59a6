"""Tier 1 (no root, nothing started): the cluster's layout, hosts, slurm.conf and pmcd.conf."""
from __future__ import annotations

import pytest
from ClusterShell.NodeSet import NodeSet

from hpc_demo.cluster import layout, pcpdirs, slurm, sources


@pytest.mark.parametrize(("count", "servers"), [(1, 1), (2, 2), (3, 1), (12, 4)])
def test_plan_names_and_addresses(count, servers):
    nodes = layout.plan(count, servers)
    assert [n.role for n in nodes] == ["head"] + ["compute"] * count + ["lustre"] * servers + ["logger"]
    assert [n.name for n in layout.servers(nodes)] == [f"oss{i:02d}" for i in range(1, servers + 1)]
    addresses = [n.address for n in nodes]
    assert len(set(addresses)) == len(nodes)
    assert all(a.startswith(layout.NETWORK + ".") for a in addresses)
    assert len({n.veth for n in nodes}) == len(nodes) and all(len(n.veth) <= 15 for n in nodes)
    # The node set the logger setup and slurm.conf get expands to exactly the compute nodes.
    assert list(NodeSet(layout.node_set(nodes))) == [n.name for n in layout.computes(nodes)]
    # The logger records the compute nodes and every Lustre server (their job_stats).
    monitored = {n.name for n in nodes if n.role in ("compute", "lustre")}
    assert set(NodeSet(layout.monitored_set(nodes))) == monitored
    hosts = layout.hosts_file(nodes)
    assert all(f"{n.address} {n.name}\n" in hosts for n in nodes)


@pytest.mark.parametrize(("count", "servers"), [(0, 1), (100, 1), (2, 0), (2, layout.MAX_SERVERS + 1)])
def test_plan_refuses_sizes_it_cannot_address(count, servers):
    with pytest.raises(ValueError):
        layout.plan(count, servers)


def test_node_pmcd_conf_keeps_base_agents_and_access():
    host = ("# comment\nroot\t1\tpipe\tbinary\t/x/pmdaroot\nlinux\t60\tpipe\tbinary\t/x/pmdalinux\n"
            "hpcib\t412\tpipe\tbinary\t/x/hpcib\ntrivial\t250\tpipe\tbinary\tpython3 t\n\n"
            "[access]\ndisallow \".*\" : store;\nallow \"local:*\" : all;\n")
    conf = pcpdirs.base_pmcd_conf(host)
    assert "root\t1" in conf and "linux\t60" in conf and "# comment" in conf
    assert "hpcib" not in conf and "trivial" not in conf
    assert conf.endswith("[access]\ndisallow \".*\" : store;\nallow \"local:*\" : all;\n")


@pytest.mark.parametrize("cgroups", [True, False])
def test_slurm_conf_names_every_compute_node(tmp_path, monkeypatch, cgroups):
    """And tracks jobs as the demo node's Slurm does: in cgroups where the host has v1."""
    from hpc_demo.localslurm import CGROUP_CONF

    monkeypatch.setattr(slurm, "CONF", str(tmp_path / "slurm.conf"))
    monkeypatch.setattr(slurm, "SLURM_DIR", str(tmp_path))
    nodes = [layout.Node(n.name, n.role, n.address) for n in layout.plan(3)]
    monkeypatch.setattr(layout, "BASE", str(tmp_path))
    slurm.write_conf(nodes, cgroups=cgroups)
    conf = dict(line.split("=", 1) for line in (tmp_path / "slurm.conf").read_text().splitlines()
                if "=" in line and not line.startswith(("NodeName", "PartitionName")))
    assert conf["SlurmctldHost"] == "head" and conf["AuthInfo"] == f"socket={slurm.MUNGE_SOCKET}"
    assert "NodeName=node[01-03] " in (tmp_path / "slurm.conf").read_text()
    assert (tmp_path / "munge.key").stat().st_mode & 0o777 == 0o400
    assert int(conf["FirstJobId"]) > 50_000   # apart from the ids of the demo's and tests' Slurm
    if cgroups:
        assert conf["ProctrackType"] == "proctrack/cgroup"
        assert conf["JobAcctGatherType"] == "jobacct_gather/cgroup"
        assert (tmp_path / "cgroup.conf").read_text() == CGROUP_CONF
    else:
        assert conf["ProctrackType"] == "proctrack/linuxproc" and not (tmp_path / "cgroup.conf").exists()


def test_unknown_fault_refused():
    with pytest.raises(ValueError, match="unknown fault"):
        sources.set_fault(layout.plan(1)[1], "melted")


def _counter(port: str, name: str) -> int:
    with open(f"{port}/counters/{name}", encoding="utf-8") as f:
        return int(f.read())


def test_faults_change_only_their_node_sources(tmp_path, monkeypatch):
    """ib-errors climbs, port-down downs the port, ost-slow makes RPCs wait seconds; clearing
    stops them; the other node's sources stay healthy."""
    import json
    import os

    monkeypatch.setattr(layout, "BASE", str(tmp_path))
    sick, well = layout.computes(layout.plan(2))
    for index, node in enumerate((sick, well), 1):
        config = sources.prepare(node, index)
        assert os.path.isdir(config["hpcib"]["root"]) and config["hpcjob"]["node_name"] == node.name
    ports = {n.name: sources._port(n) for n in (sick, well)}
    before = {n: _counter(p, "symbol_error") for n, p in ports.items()}
    sources.set_fault(sick, "ib-errors")
    for _ in range(2):
        sources.advance(sick, ["7"])
        sources.advance(well, ["7"])
    assert _counter(ports[sick.name], "symbol_error") >= before[sick.name] + 100
    assert _counter(ports[well.name], "symbol_error") == before[well.name]
    sources.set_fault(sick, "port-down")
    assert open(f"{ports[sick.name]}/state").read() == "1: DOWN\n"
    tree = os.path.join(sick.directory, "demo", "hpclustre", "tree", ".hpclustre-demo.json")

    def waittime() -> tuple[int, int]:
        oscs = {t: o for fs in json.load(open(tree))["fs"].values() for t, o in fs["osc"].items()}
        count, _, usecs = oscs[sources.SLOW_OST]["stats"]["req_waittime"]
        return count, usecs

    sources.set_fault(sick, "ost-slow")
    count0, usecs0 = waittime()
    sources.advance(sick, [])
    count1, usecs1 = waittime()
    # what the alarm rule sees: the period's wait time over the period's RPCs (rates of both)
    assert (usecs1 - usecs0) / (count1 - count0) > 1_000_000
    sources.set_fault(sick, None)
    assert open(f"{ports[sick.name]}/state").read() == "4: ACTIVE\n" and sources.current_fault(sick) is None
    after = _counter(ports[sick.name], "symbol_error")
    sources.advance(sick, [])
    assert _counter(ports[sick.name], "symbol_error") == after


def test_only_our_links_are_ours():
    from hpc_demo.cluster.network import OUR_LINK

    assert all(OUR_LINK.match(n.veth) for n in layout.plan(99, layout.MAX_SERVERS))
    assert not any(OUR_LINK.match(name) for name in ("hv-other", "eth0", "dtndemo-h", "hv-node1x"))


def test_each_node_keeps_its_own_bpftrace_scripts_and_runs_none_at_start(tmp_path, monkeypatch):
    monkeypatch.setattr(layout, "BASE", str(tmp_path))
    first, second = layout.computes(layout.plan(2))
    configs = [sources.prepare(node, i)[sources.BPFTRACE] for i, node in enumerate((first, second), 1)]
    assert configs[0]["script_dir"] != configs[1]["script_dir"]
    assert all(c["script_dir"].startswith(str(tmp_path)) and c["enabled"] == [] for c in configs)
    assert sources.BPFTRACE not in sources.AGENTS   # only with up(bpftrace=True)


def test_demo_rules_are_the_shipped_ones_faster_with_the_d_state_alarm_once(tmp_path, monkeypatch):
    """The demo's rules are the shipped catalogue at a 10 s delta, the d-state fault's alarm
    among them exactly once (pmie refuses a rule defined twice), actions by path."""
    import re

    from hpc_demo.cluster import store

    monkeypatch.setattr(layout, "BASE", str(tmp_path))
    logger = layout.plan(1)[-1]
    (tmp_path / logger.name).mkdir()
    text = open(store.quick_rules(logger), encoding="utf-8").read()
    assert len(re.findall(r"(?m)^node_d_state =", text)) == 1
    assert "proc.runq.blocked" in text and "alarm fire node.d_state" in text
    assert re.findall(r"(?m)^delta = .*;$", text) == ["delta = 10 sec;"]
    assert not re.search(r"-> shell \"[^\"]*hpc-pcp alarm", text)   # actions call hpc-pcp by path
    assert "d-state" in sources.FAULTS


def test_logger_cost_reads_a_process_and_scales_per_node():
    """/proc figures of a live process, and the bench's per-node rates from two snapshots."""
    import os

    from bench.cluster_logger_live import rates
    from hpc_demo.cluster import cost

    mine = cost.process(os.getpid())
    assert mine["rss_kib"] > 1000 and mine["pss_kib"] > 0 and mine["fds"] >= 3 and mine["cpu_s"] > 0
    assert cost.process(2**22 + 1) is None
    first = {"services": {"pmproxy": {"processes": 1, "cpu_s": 10.0, "rss_kib": 10240, "pss_kib": 9000,
                                      "fds": 16}},
             "store": {"used_memory": 1_000_000, "keys": 10}, "archive_bytes": 0}
    last = {"services": {"pmproxy": {"processes": 1, "cpu_s": 13.6, "rss_kib": 11264, "pss_kib": 9216,
                                     "fds": 16}},
            "store": {"used_memory": 1_360_000, "keys": 20}, "archive_bytes": 36_000}
    out = rates(4, first, last, 360.0, {"total": 30.0})
    proxy = out["services"]["pmproxy"]
    assert proxy["cpu_percent"] == 1.0 and proxy["cpu_s_per_node_per_hour"] == 9.0
    assert proxy["pss_mib_per_node"] == 2.25 and proxy["rss_growth_mib_per_day_extrapolated"] == 240.0
    assert out["key_server"]["mb_per_node_per_day_extrapolated"] == 21.6
    assert out["archives_mb_per_node_per_day_extrapolated"] == 2.2


def _tree_files(root: str) -> set[str]:
    import os

    return {os.path.relpath(os.path.join(d, f), root) for d, _, files in os.walk(root) for f in files}


def test_servers_count_what_the_clients_send(tmp_path, monkeypatch):
    """Compute nodes are clients only; each server's OST totals are the sum of its clients'
    OSC totals, its job_stats hold the running jobs by host-suffixed id with exactly what
    each client's ledger says it sent, and the agent folds a two-node job into one instance
    per filesystem whose sum over the servers is the sum over the clients."""
    from hpc_demo.cluster import lustre
    from pmdas.common.config import COMMON_OPTIONS, Config, validate
    from pmdas.common.refresh import Refresher
    from pmdas.hpclustre.collector import LustreAgent

    def agent_values(root: str) -> dict:
        options = validate({"root": root}, {**COMMON_OPTIONS, **LustreAgent.options}, "test")
        return Refresher(LustreAgent(Config(options, None))).refresh_once().values

    monkeypatch.setattr(layout, "BASE", str(tmp_path))
    nodes = layout.plan(2, 2)
    clients, servers = layout.computes(nodes), layout.servers(nodes)
    for i, node in enumerate(clients, 1):
        sources.prepare(node, i)
    for i, node in enumerate(servers, 1):
        assert set(sources.prepare_server(node, i, 2)) == {"hpclustre"}
    assert sorted(t for i in (1, 2) for t in lustre.served(i, 2)) == sorted(
        [lustre.ost_name(fs, i) for fs in lustre.FILESYSTEMS for i in range(lustre.OSTS)]
        + [lustre.mdt_name(fs) for fs in lustre.FILESYSTEMS])
    running = [{"100001": 0, "100002": 1000}, {"100001": 0}]
    now = 1_800_000_000.0
    for period in range(4):
        if period == 3:
            running = [{"100002": 1000}, {}]        # job 100001 ended
        when = now + 5 * period
        sent = [sources.advance(node, jobs, when) for node, jobs in zip(clients, running, strict=True)]
        for server in servers:
            sources.advance_server(server, sent, when)
    client_files = _tree_files(sources._lustre_root(clients[0]))
    assert not any("obdfilter" in f or "/mdt/" in f or "job_stats" in f for f in client_files)
    assert any("/mdc/" in f for f in client_files) and any("/osc/" in f for f in client_files)
    server_files = _tree_files(sources._lustre_root(servers[1]))
    assert not any("/llite/" in f or "/osc/" in f for f in server_files)
    assert not any("/mdt/" in f for f in server_files)             # the MDTs are on oss01

    states = {n.name: sources.lustre_state(n) for n in clients + servers}
    for name in ("oss01", "oss02"):
        assert lustre.job_ids(states[name]) == {"100001:0:node01", "100002:1000:node01", "100001:0:node02"}
        for fs in states[name]["fs"].values():
            for target, ost in fs["ost"].items():
                client_total = sum(states[c.name]["fs"][target.rsplit("-", 1)[0]]["osc"][target]["stats"]
                                   ["write_bytes"][2] for c in clients)
                assert ost["stats"]["write_bytes"][2] == client_total > 0, target
                for job_id, entry in ost["jobs"].items():   # a running job: what its client sent so far
                    ledger = states[job_id.rsplit(":", 1)[1]]["ledger"]
                    if job_id in ledger:
                        assert entry["write_bytes"][1] == ledger[job_id][target][1], (target, job_id)
    # An ended job's entries stop growing; the agent folds the two nodes' ids into one job.
    values = {n.name: agent_values(sources._lustre_root(n)) for n in servers}
    clients_sum = {}
    for c in clients:
        for when, ledger in states[c.name]["log"]:
            if when == now + 10:                   # the last period job 100001 ran
                for target, (_, written) in ledger.get(f"100001:0:{c.name}", {}).items():
                    fs = target.rsplit("-", 1)[0]
                    clients_sum[fs] = clients_sum.get(fs, 0) + written
    servers_sum = {}
    for v in values.values():
        for instance, written in v["hpc.lustre.job.write.bytes"].items():
            fs, job = instance.split("/")
            if job == "100001":
                servers_sum[fs] = servers_sum.get(fs, 0) + written
    assert servers_sum == clients_sum and all(clients_sum.values())
    assert values["oss01"]["hpc.lustre.job.mdt.ops"] and not values["oss02"]["hpc.lustre.job.mdt.ops"]


def test_server_job_stats_entries_expire_when_idle(tmp_path, monkeypatch):
    from hpc_demo.cluster import lustre

    monkeypatch.setattr(layout, "BASE", str(tmp_path))
    nodes = layout.plan(1, 1)
    (client,), (server,) = layout.computes(nodes), layout.servers(nodes)
    sources.prepare(client, 1)
    sources.prepare_server(server, 1, 1)
    now = 1_800_000_000.0
    sources.advance_server(server, [sources.advance(client, {"100003": 0}, now)], now)
    assert lustre.job_ids(sources.lustre_state(server)) == {"100003:0:node01"}
    for later, left in ((lustre.CLEANUP - 1, {"100003:0:node01"}), (lustre.CLEANUP + 1, set())):
        sources.advance_server(server, [sources.advance(client, {}, now + later)], now + later)
        assert lustre.job_ids(sources.lustre_state(server)) == left


def test_each_node_hpcjob_sees_only_its_own_job_cgroups(tmp_path, monkeypatch):
    """The view links slurm_<node> of every v1 hierarchy and nothing else of the host's."""
    import glob
    import os

    hierarchies = tmp_path / "cgroup"
    for ctrl in ("memory", "cpuacct", "freezer"):
        for top in ("slurm_node01", "slurm_node02", "slurm_vm"):
            (hierarchies / ctrl / top / "uid_0" / f"job_1{top[-1]}").mkdir(parents=True)
        (hierarchies / ctrl / "cgroup.procs").write_text("")
    (hierarchies / "unified").mkdir()            # not a v1 hierarchy with tasks: left out
    monkeypatch.setattr(layout, "BASE", str(tmp_path / "cluster"))
    node = layout.computes(layout.plan(2))[0]
    view = sources.cgroup_view(node, str(hierarchies))
    assert sources.cgroup_view(node, str(hierarchies)) == view      # again: nothing changes
    seen = sorted(os.path.relpath(p, view) for p in glob.glob(f"{view}/sys/fs/cgroup/*/slurm*/uid_*/job_*"))
    assert seen == [f"sys/fs/cgroup/{c}/slurm_node01/uid_0/job_11" for c in ("cpuacct", "freezer", "memory")]


def test_remove_job_cgroups_deepest_first(tmp_path):
    from hpc_demo.localslurm import job_cgroups, remove_job_cgroups

    for ctrl in ("memory", "cpuacct"):
        (tmp_path / ctrl / "slurm_node01" / "uid_0" / "job_5" / "step_batch").mkdir(parents=True)
        (tmp_path / ctrl / "slurm_node02" / "uid_0").mkdir(parents=True)
    assert len(job_cgroups("node01", str(tmp_path))) == 2
    assert remove_job_cgroups("node01", str(tmp_path)) == []
    assert job_cgroups("node01", str(tmp_path)) == [] and len(job_cgroups("node02", str(tmp_path))) == 2
