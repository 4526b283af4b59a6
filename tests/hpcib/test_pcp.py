"""Tier 2: hpcib under the real pmcd, reading the mlx5 fixture tree through its root setting."""
from __future__ import annotations

import pytest

from tests.harness.pcp import installed_agent, reader, run_pcp, wait_refreshed

from .helpers import read_int, tree

pytestmark = [pytest.mark.pcp, pytest.mark.usefixtures("pmcd")]


def test_hpcib_through_pmcd():
    root = tree("mlx5")
    with installed_agent("hpcib", {"root": root, "interval": 1}):
        wait_refreshed("hpc.ib")
        got = reader().fetch(["hpc.ib.port.xmit.bytes", "hpc.ib.port.link_layer", "hpc.ib.agent.up",
                              "hpc.ib.total.ports", "hpc.ib.port.hw_counter"])
        assert got["hpc.ib.agent.up"] == 1 and got["hpc.ib.total.ports"] == 2
        assert got["hpc.ib.port.xmit.bytes"]["mlx5_0:1"] == 4 * read_int(
            root, "mlx5_0", 1, "counters/port_xmit_data")
        assert got["hpc.ib.port.link_layer"] == {"mlx5_0:1": "InfiniBand", "mlx5_1:1": "Ethernet"}
        assert got["hpc.ib.port.hw_counter"]["mlx5_1:1:np_cnp_sent"] == read_int(
            root, "mlx5_1", 1, "hw_counters/np_cnp_sent")
        labels = run_pcp("pminfo", "-l", "hpc.ib.port.xmit.bytes").stdout
        assert '"link_layer":"Ethernet"' in labels and '"agent":"hpcib"' in labels
        names = run_pcp("pminfo", "hpc.ib").stdout.split()
        assert "hpc.ib.port.errors.symbol" in names
        for name in ("hpc.ib.port.xmit.bytes", "hpc.ib.port.saturated", "hpc.ib.total.errors"):
            out = run_pcp("pminfo", "-tT", name).stdout
            assert "Help:" in out and "Error" not in out, out
        desc = run_pcp("pminfo", "-d", "hpc.ib.port.xmit.bytes").stdout
        assert "counter" in desc and "byte" in desc, desc
