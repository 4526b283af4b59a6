"""Counter widths from the source, the link rate in bytes/s, help texts in the kernel's words.

Issue #17, finding 12: the width of port_xmit_data & co. in counters/ read 32 (and a
value at 2^32-1 read as saturated) until the value passed 2^32, though the kernel puts
the 64-bit PortCountersExtended counters there when the device reports extended width
(drivers/infiniband/core/sysfs.c, pma_group_ext: the unicast/multicast files show it);
port.rate was bits/s with count/s units.  Finding 14: xmit_wait help said "link down".
"""
from __future__ import annotations

import os

import pytest

from pmdas.hpcib.collector import InfinibandAgent
from pmdas.hpcib.parsers import parse_rate

from .helpers import TREES, copy_tree, metric, port_file, refresh, refresher, tree, write

DATA = ("port_xmit_data", "port_rcv_data", "port_xmit_packets", "port_rcv_packets")
# What only the kernel's extended table (pma_group_ext) adds to counters/.
IETF = ("counters/unicast_xmit_packets", "counters/unicast_rcv_packets",
        "counters/multicast_xmit_packets", "counters/multicast_rcv_packets")


def test_extended_counters_are_64_bit_below_2_32(tmp_path):
    root = copy_tree("mlx5", str(tmp_path))
    for name in DATA:                                   # freshly cleared counters
        write(port_file(root, "mlx5_0", 1, f"counters/{name}"), "1234\n")
    write(port_file(root, "mlx5_0", 1, "counters/port_xmit_data"), f"{2**32 - 1}\n")
    published = refresher(root).refresh_once()
    for name in DATA:
        assert metric(published, "port.counter.width")[f"mlx5_0:1:{name}"] == 64, name
    assert metric(published, "port.saturated")["mlx5_0:1"] == 0
    assert metric(published, "port.counter.saturated")["mlx5_0:1:port_xmit_data"] == 0
    assert metric(published, "port.counter.width")["mlx5_0:1:symbol_error"] == 16
    assert metric(published, "port.counter.width")["mlx5_0:1:port_xmit_wait"] == 32


def test_legacy_counters_stay_32_bit_and_saturate():
    published = refresh(tree("mlx4"))                  # counters/ without unicast: PortCounters
    assert metric(published, "port.counter.saturated")["mlx4_0:1:port_xmit_wait"] == 1
    widths = metric(published, "port.counter.width")
    assert widths["mlx4_0:1:port_xmit_data"] == 64     # read from counters_ext
    assert metric(published, "port.counter.width")["mlx4_0:2:symbol_error"] == 16


def test_without_the_unicast_files_a_wide_value_proves_64_bits_for_good(tmp_path):
    root = copy_tree("mlx5", str(tmp_path))            # the extended set without IETF counters
    for relative in IETF:
        os.unlink(port_file(root, "mlx5_0", 1, relative))
    path = port_file(root, "mlx5_0", 1, "counters/port_rcv_data")
    write(path, "1000\n")
    r = refresher(root)
    assert metric(r.refresh_once(), "port.counter.width")["mlx5_0:1:port_rcv_data"] == 32
    write(path, f"{2**32 + 5}\n")
    assert metric(r.refresh_once(), "port.counter.width")["mlx5_0:1:port_rcv_data"] == 64
    write(path, "10\n")                                 # cleared: still the 64-bit counter
    after = r.refresh_once()
    assert metric(after, "port.counter.width")["mlx5_0:1:port_rcv_data"] == 64
    write(path, f"{2**32 - 1}\n")
    assert metric(r.refresh_once(), "port.counter.saturated")["mlx5_0:1:port_rcv_data"] == 0


@pytest.mark.parametrize("name", TREES)
def test_rate_bytes_is_the_rate_file_over_eight(name):
    root = tree(name)
    published = refresh(root)
    rates = metric(published, "port.rate_bytes")
    assert rates, "every tree has a port with a rate"
    for key, value in rates.items():
        ca, port = key.split(":")
        with open(port_file(root, ca, port, "rate"), encoding="utf-8") as f:
            assert value * 8 == parse_rate(f.read()).bits_per_second
        assert metric(published, "port.rate")[key] == value * 8


def test_rate_bytes_of_sdr_and_hdr():
    assert parse_rate("2.5 Gb/sec (1X SDR)\n").bits_per_second // 8 == 312_500_000
    published = refresh(tree("mlx5"))
    assert metric(published, "port.rate_bytes")["mlx5_0:1"] == 25 * 10**9   # 200 Gb/sec (4X HDR)


def help_of(name: str) -> tuple[str, str]:
    m = next(m for m in InfinibandAgent.metrics if m.name == name)
    return m.help, m.long_help


def test_help_texts_say_what_the_kernel_says():
    short, long = help_of("port.xmit.wait")
    assert "insufficient credits" in long and "lack of arbitration" in long
    assert "link down" not in (short + long).lower()
    short, long = help_of("port.rate")
    assert "deprecated" in short.lower() and "port.rate_bytes" in long
    assert "hw_gauge" in help_of("port.hw_counter")[1]
    assert "flit" in help_of("port.xmit.bytes")[1] and "hfi1" in help_of("port.rcv.bytes")[1]
    assert "first read later" in help_of("total.xmit.bytes")[1]


def test_the_test_knows_the_agents_extended_table():
    from pmdas.hpcib.counters import EXTENDED_TABLE_FILES
    assert set(EXTENDED_TABLE_FILES) == set(IETF)
