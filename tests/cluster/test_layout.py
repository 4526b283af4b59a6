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
