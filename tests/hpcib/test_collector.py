"""The agent through the shared Refresher, on each fixture tree.

Expected numbers are read from the fixture files themselves, so the tests check
the agent's arithmetic and choices (which file, which unit), not copied values.
"""
from __future__ import annotations

import os

import pytest

from pmdas.common.health import health_metrics
from pmdas.common.table import BYTES, COUNTER, U64
from pmdas.hpcib.collector import InfinibandAgent
from pmdas.hpcib.counters import COUNTERS, TOTALS

from .helpers import TREES, class_dir, metric, port_file, read_int, refresh, tree


def hw_files(root: str, ca: str, port: int) -> set[str]:
    return set(os.listdir(port_file(root, ca, port, "hw_counters")))


# -- mlx5: IB and RoCE ------------------------------------------------------

def test_mlx5_instances_and_labels():
    published = refresh(tree("mlx5"))
    ports = published.instances["port"]
    assert set(ports) == {"mlx5_0:1", "mlx5_1:1"}
    assert ports["mlx5_0:1"][1] == {"ca": "mlx5_0", "port": "1", "link_layer": "InfiniBand"}
    assert ports["mlx5_1:1"][1]["link_layer"] == "Ethernet"
    ca_labels = published.instances["ca"]["mlx5_0"][1]
    assert ca_labels["hca_type"] == "MT4123" and ca_labels["node_guid"] == "b8ce:f603:00a1:2b3c"
    assert metric(published, "agent.up") == 1
    assert metric(published, "agent.source.up") == {"devices": 1, "mlx5_0": 1, "mlx5_1": 1}


def test_mlx5_bytes_are_four_times_the_word_counters():
    root = tree("mlx5")
    published = refresh(root)
    for key in ("mlx5_0:1", "mlx5_1:1"):
        ca, port = key.split(":")
        assert metric(published, "port.xmit.bytes")[key] == 4 * read_int(root, ca, port,
                                                                         "counters/port_xmit_data")
        assert metric(published, "port.rcv.bytes")[key] == 4 * read_int(root, ca, port,
                                                                        "counters/port_rcv_data")
        assert metric(published, "port.xmit.unicast_packets")[key] == read_int(
            root, ca, port, "counters/unicast_xmit_packets")
    # totals over both ports
    assert metric(published, "total.xmit.bytes") == sum(metric(published, "port.xmit.bytes").values())
    errors = sum(read_int(root, c, 1, f"counters/{n}") for c in ("mlx5_0", "mlx5_1")
                 for n in TOTALS["errors"] if os.path.exists(port_file(root, c, 1, f"counters/{n}")))
    assert errors > 0 and metric(published, "total.errors") == errors


def test_mlx5_state_rate_and_lids():
    published = refresh(tree("mlx5"))
    assert metric(published, "port.state") == {"mlx5_0:1": 4, "mlx5_1:1": 4}
    assert metric(published, "port.phys_state_text")["mlx5_0:1"] == "LinkUp"
    assert metric(published, "port.rate") == {"mlx5_0:1": 200 * 10**9, "mlx5_1:1": 25 * 10**9}
    assert metric(published, "port.speed") == {"mlx5_0:1": "HDR", "mlx5_1:1": "EDR"}
    assert metric(published, "port.width")["mlx5_1:1"] == "1X"
    assert metric(published, "port.lid") == {"mlx5_0:1": 0x1A7, "mlx5_1:1": 0}
    assert metric(published, "total.ports_active") == 2


def test_mlx5_hw_counters_are_one_instance_each_without_lifespan():
    root = tree("mlx5")
    published = refresh(root)
    expected = {f"mlx5_0:1:{n}" for n in hw_files(root, "mlx5_0", 1) - {"lifespan"}}
    got = {k for k in published.instances["hw_counter"] if k.startswith("mlx5_0:1:")}
    assert got == expected and "mlx5_0:1:lifespan" not in got
    labels = published.instances["hw_counter"]["mlx5_1:1:np_cnp_sent"][1]
    assert labels == {"ca": "mlx5_1", "port": "1", "counter": "np_cnp_sent"}
    assert metric(published, "port.hw_counter")["mlx5_1:1:np_cnp_sent"] == read_int(
        root, "mlx5_1", 1, "hw_counters/np_cnp_sent")


def test_mlx5_wide_counters_are_not_flagged():
    published = refresh(tree("mlx5"))
    widths = metric(published, "port.counter.width")
    assert widths["mlx5_0:1:port_xmit_data"] == 64      # value above 2**32: kernel read the 64-bit one
    assert widths["mlx5_0:1:symbol_error"] == 16
    assert metric(published, "port.saturated") == {"mlx5_0:1": 0, "mlx5_1:1": 0}
    assert set(metric(published, "port.counter.saturated").values()) == {0}


# -- mlx4: counters_ext and saturated legacy counters ----------------------------

def test_mlx4_prefers_counters_ext():
    root = tree("mlx4")
    published = refresh(root)
    assert metric(published, "port.xmit.bytes")["mlx4_0:1"] == 4 * read_int(
        root, "mlx4_0", 1, "counters_ext/port_xmit_data_64")
    assert metric(published, "port.rcv.packets")["mlx4_0:1"] == read_int(
        root, "mlx4_0", 1, "counters_ext/port_rcv_packets_64")
    assert metric(published, "port.xmit.unicast_packets")["mlx4_0:1"] == read_int(
        root, "mlx4_0", 1, "counters_ext/port_unicast_xmit_packets")
    assert metric(published, "port.counter.width")["mlx4_0:1:port_xmit_data"] == 64


def test_mlx4_saturation_flags_follow_the_files():
    root = tree("mlx4")
    published = refresh(root)
    expected = {}
    for port in (1, 2):
        stuck = []
        for spec in COUNTERS:
            for file in spec.files:
                if os.path.exists(port_file(root, "mlx4_0", port, file.path)):
                    if read_int(root, "mlx4_0", port, file.path) == 2**file.width - 1:
                        stuck.append(spec.sysfs)
                    break
        expected[f"mlx4_0:{port}"] = stuck
    assert all(expected.values())     # the fixture does carry saturated counters on both ports
    assert "port_xmit_data" not in expected["mlx4_0:1"]   # legacy is saturated, ext is used
    for key, stuck in expected.items():
        assert metric(published, "port.saturated")[key] == 1
        assert metric(published, "port.saturated_counters")[key].split(",") == stuck
        for name in stuck:
            assert metric(published, "port.counter.saturated")[f"{key}:{name}"] == 1
    assert metric(published, "total.saturated_ports") == 2
    assert metric(published, "port.state_text")["mlx4_0:2"] == "DOWN"
    assert metric(published, "total.ports_active") == 1


# -- hfi1: Omni-Path --------------------------------------------------------------

def test_hfi1_without_hca_type():
    root = tree("hfi1")
    published = refresh(root)
    assert "hfi1_0" not in metric(published, "ca.type")
    with open(os.path.join(class_dir(root), "hfi1_0", "board_id"), encoding="utf-8") as f:
        assert metric(published, "ca.board_id")["hfi1_0"] == f.read().rstrip("\n")
    assert "hca_type" not in published.instances["ca"]["hfi1_0"][1]
    assert metric(published, "ca.error_text")["hfi1_0"] == ""
    assert metric(published, "port.hw_counter")["hfi1_0:1:TxWait"] == read_int(
        root, "hfi1_0", 1, "hw_counters/TxWait")
    assert metric(published, "port.link_layer")["hfi1_0:1"] == "InfiniBand"


# -- quirks: no PMA, garbage, missing counters directory ---------------------------

def test_quirks_mark_only_affected_values():
    root = tree("quirks")
    published = refresh(root)
    assert metric(published, "agent.up") == 1          # partial damage is not a source failure
    # iWARP: no counter, but state and hw_counters still answer
    assert "irdma0:1" not in metric(published, "port.xmit.bytes")
    assert metric(published, "port.state")["irdma0:1"] == 4
    assert metric(published, "port.hw_counter")["irdma0:1:tcpRetransSegs"] == read_int(
        root, "irdma0", 1, "hw_counters/tcpRetransSegs")
    assert "performance management agent" in metric(published, "port.error_text")["irdma0:1"]
    # damaged mlx5_2 port 1: two counters and one hw counter unavailable, the rest fine
    text = metric(published, "port.error_text")["mlx5_2:1"]
    assert "counters/port_rcv_errors" in text and "counters/VL15_dropped: the file is empty" in text
    assert "hw_counters/out_of_buffer" in text
    assert "mlx5_2:1" not in metric(published, "port.errors.rcv")
    assert "mlx5_2:1" not in metric(published, "port.errors.vl15_dropped")
    assert metric(published, "port.errors.symbol")["mlx5_2:1"] == 0
    assert metric(published, "port.unavailable")["mlx5_2:1"] == 3
    assert "mlx5_2:1:out_of_buffer" not in metric(published, "port.hw_counter")
    assert metric(published, "port.hw_counter")["mlx5_2:1:np_cnp_sent"] == 5
    # port 2: no counters directory, explained
    assert "counters: does not exist" in metric(published, "port.error_text")["mlx5_2:2"]
    assert metric(published, "port.lid")["mlx5_2:2"] == 0xFFFF
    assert metric(published, "total.unavailable") == sum(metric(published, "port.unavailable").values())


# -- every tree ---------------------------------------------------------------------

@pytest.mark.parametrize("name", TREES)
def test_every_tree_refreshes_without_extractor_errors(name):
    published = refresh(tree(name))
    assert metric(published, "agent.extractor_errors") == 0
    assert published.instances["port"], "every tree has ports"
    for key in published.instances["port"]:
        assert key in metric(published, "port.state")


def test_every_metric_answers_on_some_tree():
    answered = set()
    for name in TREES:
        for full, value in refresh(tree(name)).values.items():
            if value not in (None, {}):
                answered.add(full)
    own = {f"hpc.ib.{m.name}" for m in InfinibandAgent.metrics}
    assert own - answered == set()


def test_metric_table_semantics():
    health = {m.name for m in health_metrics()}
    for m in InfinibandAgent.metrics:
        assert m.name not in health
        if m.semantics == COUNTER:
            assert m.type == U64, m.name
        if m.name.endswith(".bytes"):
            assert m.units == BYTES and m.semantics == COUNTER, m.name
        assert len(m.help) < 80 and len(m.long_help) > len(m.help), m.name


def test_options_hw_counters_off_and_ignored_devices():
    published = refresh(tree("mlx5"), hw_counters=False, ignore_devices=["mlx5_1"])
    assert published.instances["hw_counter"] == {}
    assert set(published.instances["port"]) == {"mlx5_0:1"}
    assert set(metric(published, "agent.source.up")) == {"devices", "mlx5_0"}
