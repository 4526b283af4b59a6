"""What a driver puts in the shared files: Omni-Path flits and constants, bnxt_re gauges.

Issue #17, finding 3: hfi1 fills port_xmit_data/port_rcv_data from flit counters
(8 octets of data per flit), not 4-octet words, and hard-codes unicast packets (and
symbol_error, VL15_dropped, never port_xmit_wait) to 0: bytes came out half, the
constants were exported as counts.  Finding 8: bnxt_re hw_counters active_* and
watermark_* are levels, exported as counters whose every fall read as a reset.
Expected values are read from the fixture files.
"""
from __future__ import annotations

import os

import pytest

from .helpers import class_dir, copy_tree, metric, port_file, read_int, refresh, refresher, tree, write

HFI1 = "hfi1_0:1"
BNXT = "bnxt_re0:1"
HFI1_CONSTANTS = {  # metric → the sysfs file hfi1 fills with 0
    "port.xmit.unicast_packets": "unicast_xmit_packets",
    "port.rcv.unicast_packets": "unicast_rcv_packets",
    "port.errors.symbol": "symbol_error",
    "port.errors.vl15_dropped": "VL15_dropped",
    "port.xmit.wait": "port_xmit_wait",
}


def test_hfi1_data_counters_are_flits_of_eight_octets():
    root = tree("hfi1")
    published = refresh(root)
    for direction in ("xmit", "rcv"):
        flits = read_int(root, "hfi1_0", 1, f"counters/port_{direction}_data")
        assert metric(published, f"port.{direction}.bytes")[HFI1] == 8 * flits
    assert metric(published, "total.xmit.bytes") == 8 * read_int(root, "hfi1_0", 1,
                                                                 "counters/port_xmit_data")
    assert metric(published, "ca.driver") == {"hfi1_0": "hfi1"}


def test_hfi1_constant_counters_are_absent_the_real_ones_present():
    root = tree("hfi1")
    published = refresh(root)
    for name, sysfs in HFI1_CONSTANTS.items():
        assert read_int(root, "hfi1_0", 1, f"counters/{sysfs}") == 0   # the file is there
        assert HFI1 not in metric(published, name), name
        assert f"{HFI1}:{sysfs}" not in published.instances["port_counter"]
    assert metric(published, "port.xmit.multicast_packets")[HFI1] == read_int(
        root, "hfi1_0", 1, "counters/multicast_xmit_packets")
    assert metric(published, "port.xmit.packets")[HFI1] == read_int(
        root, "hfi1_0", 1, "counters/port_xmit_packets")
    assert metric(published, "port.errors.link_error_recovery")[HFI1] == read_int(
        root, "hfi1_0", 1, "counters/link_error_recovery")
    assert metric(published, "port.error_text")[HFI1] == ""


def test_hfi1_is_known_by_its_driver_link_under_any_name(tmp_path):
    root = copy_tree("hfi1", str(tmp_path))
    os.rename(os.path.join(class_dir(root), "hfi1_0"), os.path.join(class_dir(root), "opap129s0"))
    published = refresh(root)
    assert metric(published, "ca.driver") == {"opap129s0": "hfi1"}
    flits = read_int(root, "opap129s0", 1, "counters/port_rcv_data")
    assert metric(published, "port.rcv.bytes")["opap129s0:1"] == 8 * flits


def test_without_a_driver_link_only_the_kernel_name_tells():
    from pmdas.hpcib.drivers import driver_of, quirks_of

    assert driver_of("hfi1_0", None) == "hfi1"
    assert driver_of("hfi1_1", "../../../../bus/pci/drivers/hfi1") == "hfi1"
    assert driver_of("opap129s0", None) is None
    assert driver_of("mlx5_0", None) is None
    assert quirks_of(driver_of("mlx5_0", None)).scale == {}
    published = refresh(tree("mlx5"))            # no device links in this tree: no driver,
    assert metric(published, "ca.driver") == {}  # and 4-octet words (test_collector)


# -- bnxt_re: levels in hw_counters -------------------------------------------------

def hw_names(root: str) -> set[str]:
    return set(os.listdir(port_file(root, "bnxt_re0", 1, "hw_counters"))) - {"lifespan"}


def test_bnxt_re_levels_are_gauges_and_counters_stay_counters():
    from pmdas.hpcib.drivers import HW_GAUGES

    root = tree("bnxt_re")
    published = refresh(root)
    names = hw_names(root)
    levels = {n for n in names if n.startswith(("active_", "watermark_"))} | {"db_fifo_register"}
    assert len(levels) == 19 and levels <= HW_GAUGES
    gauges = metric(published, "port.hw_gauge")
    counters = metric(published, "port.hw_counter")
    assert set(gauges) == {f"{BNXT}:{n}" for n in levels}
    assert set(counters) == {f"{BNXT}:{n}" for n in names - levels}
    assert gauges[f"{BNXT}:active_qps"] == read_int(root, "bnxt_re0", 1, "hw_counters/active_qps")
    assert counters[f"{BNXT}:rx_roce_discards"] == read_int(root, "bnxt_re0", 1,
                                                            "hw_counters/rx_roce_discards")
    assert set(published.instances["hw_counter"]) == {f"{BNXT}:{n}" for n in names}
    assert metric(published, "ca.driver") == {"bnxt_re0": "bnxt_re"}


def test_a_falling_level_is_no_reset(tmp_path):
    root = copy_tree("bnxt_re", str(tmp_path))
    r = refresher(root)
    r.refresh_once()
    write(port_file(root, "bnxt_re0", 1, "hw_counters/active_qps"), "3\n")    # jobs ended
    write(port_file(root, "bnxt_re0", 1, "hw_counters/active_mrs"), "0\n")
    published = r.refresh_once()
    assert metric(published, "port.hw_gauge")[f"{BNXT}:active_qps"] == 3
    assert metric(published, "port.hw_gauge")[f"{BNXT}:active_mrs"] == 0
    assert metric(published, "port.counter_resets")[BNXT] == 0
    assert "went backwards" not in metric(published, "port.error_text")[BNXT]
    write(port_file(root, "bnxt_re0", 1, "hw_counters/tx_pkts"), "5\n")        # a real reset
    reset = r.refresh_once()
    assert f"{BNXT}:tx_pkts" not in metric(reset, "port.hw_counter")
    assert metric(reset, "port.counter_resets")[BNXT] == 1


@pytest.mark.parametrize("name", ["active_qps", "tx_pkts"])
def test_an_unreadable_hw_file_is_unavailable_in_its_own_metric(tmp_path, name):
    root = copy_tree("bnxt_re", str(tmp_path))
    write(port_file(root, "bnxt_re0", 1, f"hw_counters/{name}"), "garbage\n")
    published = refresher(root).refresh_once()
    assert f"{BNXT}:{name}" not in metric(published, "port.hw_gauge")
    assert f"{BNXT}:{name}" not in metric(published, "port.hw_counter")
    assert f"hw_counters/{name}" in metric(published, "port.error_text")[BNXT]
    assert f"{BNXT}:{name}" in published.instances["hw_counter"]
