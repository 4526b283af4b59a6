"""Tier 1 (no root, nothing started): the cluster's layout, hosts, slurm.conf and pmcd.conf."""
from __future__ import annotations

import pytest
from ClusterShell.NodeSet import NodeSet

from hpc_demo.cluster import layout, pcpdirs, slurm, sources


@pytest.mark.parametrize("count", [1, 2, 3, 12])
def test_plan_names_and_addresses(count):
    nodes = layout.plan(count)
    assert [n.role for n in nodes] == ["head"] + ["compute"] * count + ["logger"]
    addresses = [n.address for n in nodes]
    assert len(set(addresses)) == len(nodes)
    assert all(a.startswith(layout.NETWORK + ".") for a in addresses)
    assert len({n.veth for n in nodes}) == len(nodes) and all(len(n.veth) <= 15 for n in nodes)
    # The node set the logger setup and slurm.conf get expands to exactly the compute nodes.
    assert list(NodeSet(layout.node_set(nodes))) == [n.name for n in layout.computes(nodes)]
    hosts = layout.hosts_file(nodes)
    assert all(f"{n.address} {n.name}\n" in hosts for n in nodes)


@pytest.mark.parametrize("count", [0, 100])
def test_plan_refuses_sizes_it_cannot_address(count):
    with pytest.raises(ValueError):
        layout.plan(count)


def test_node_pmcd_conf_keeps_base_agents_and_access():
    host = ("# comment\nroot\t1\tpipe\tbinary\t/x/pmdaroot\nlinux\t60\tpipe\tbinary\t/x/pmdalinux\n"
            "hpcib\t412\tpipe\tbinary\t/x/hpcib\ntrivial\t250\tpipe\tbinary\tpython3 t\n\n"
            "[access]\ndisallow \".*\" : store;\nallow \"local:*\" : all;\n")
    conf = pcpdirs.base_pmcd_conf(host)
    assert "root\t1" in conf and "linux\t60" in conf and "# comment" in conf
    assert "hpcib" not in conf and "trivial" not in conf
    assert conf.endswith("[access]\ndisallow \".*\" : store;\nallow \"local:*\" : all;\n")


def test_slurm_conf_names_every_compute_node(tmp_path, monkeypatch):
    monkeypatch.setattr(slurm, "CONF", str(tmp_path / "slurm.conf"))
    monkeypatch.setattr(slurm, "SLURM_DIR", str(tmp_path))
    nodes = [layout.Node(n.name, n.role, n.address) for n in layout.plan(3)]
    monkeypatch.setattr(layout, "BASE", str(tmp_path))
    slurm.write_conf(nodes)
    conf = dict(line.split("=", 1) for line in (tmp_path / "slurm.conf").read_text().splitlines()
                if "=" in line and not line.startswith(("NodeName", "PartitionName")))
    assert conf["SlurmctldHost"] == "head" and conf["AuthInfo"] == f"socket={slurm.MUNGE_SOCKET}"
    assert "NodeName=node[01-03] " in (tmp_path / "slurm.conf").read_text()
    assert (tmp_path / "munge.key").stat().st_mode & 0o777 == 0o400


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

    assert all(OUR_LINK.match(n.veth) for n in layout.plan(99))
    assert not any(OUR_LINK.match(name) for name in ("hv-other", "eth0", "dtndemo-h", "hv-node1x"))


def test_each_node_keeps_its_own_bpftrace_scripts_and_runs_none_at_start(tmp_path, monkeypatch):
    monkeypatch.setattr(layout, "BASE", str(tmp_path))
    first, second = layout.computes(layout.plan(2))
    configs = [sources.prepare(node, i)[sources.BPFTRACE] for i, node in enumerate((first, second), 1)]
    assert configs[0]["script_dir"] != configs[1]["script_dir"]
    assert all(c["script_dir"].startswith(str(tmp_path)) and c["enabled"] == [] for c in configs)
    assert sources.BPFTRACE not in sources.AGENTS   # only with up(bpftrace=True)


def test_demo_rules_alarm_on_d_state_and_pmie_accepts_them(tmp_path, monkeypatch):
    """The d-state fault's rule rides along the shipped rules; pmie parses it (the shipped
    rules refer to metrics this host lacks, so the rule is checked on its own)."""
    import re
    import shutil
    import subprocess

    from hpc_demo.cluster import store

    monkeypatch.setattr(layout, "BASE", str(tmp_path))
    logger = layout.plan(1)[-1]
    (tmp_path / logger.name).mkdir()
    text = open(store.quick_rules(logger), encoding="utf-8").read()
    assert "some_inst (proc.runq.blocked > 0)" in text and "alarm fire node.d_state" in text
    assert not re.search(r"-> shell \"[^\"]*hpc-pcp alarm", text)   # actions call hpc-pcp by path
    assert "d-state" in sources.FAULTS
    if shutil.which("pmie") is None:
        pytest.fail("pmie is not installed")
    rule = tmp_path / "d_state.pmie"
    rule.write_text("delta = 10 sec;\n" + store.D_STATE_RULE)
    checked = subprocess.run(["pmie", "-C", str(rule)], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr


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
