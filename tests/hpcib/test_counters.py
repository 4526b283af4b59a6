"""The counter records (pmdas/hpcib/counters.py): the one list everything else derives from."""
from __future__ import annotations

import dataclasses
import os

import pytest

from hpc_demo import hpcib as demo
from pmdas.common.table import BYTES, COUNT, check_table
from pmdas.hpcib import counters, metrics
from pmdas.hpcib.counters import COUNTERS, ERRORS, TRAFFIC, PortCounter, ext, legacy

from .helpers import port_file

# IBTA PortCounters widths of the legacy counters/ files (docs: sources.md, InfiniBand).
IBTA_WIDTHS = {
    "port_xmit_data": 32, "port_rcv_data": 32, "port_xmit_packets": 32, "port_rcv_packets": 32,
    "port_xmit_wait": 32, "symbol_error": 16, "link_error_recovery": 8, "link_downed": 8,
    "port_rcv_errors": 16, "port_rcv_remote_physical_errors": 16,
    "port_rcv_switch_relay_errors": 16, "port_xmit_discards": 16, "port_xmit_constraint_errors": 8,
    "port_rcv_constraint_errors": 8, "local_link_integrity_errors": 4,
    "excessive_buffer_overrun_errors": 4, "VL15_dropped": 16,
    # PortCountersExtended only: 64 bit wherever they appear
    "unicast_xmit_packets": 64, "unicast_rcv_packets": 64, "multicast_xmit_packets": 64,
    "multicast_rcv_packets": 64,
}


def by_sysfs() -> dict[str, PortCounter]:
    return {c.sysfs: c for c in COUNTERS}


def pmids(table) -> dict[str, tuple[int, int]]:
    return {m.name: (m.cluster, m.item) for m in table}


def test_legacy_files_have_the_ibta_widths():
    specs = by_sysfs()
    for name, width in IBTA_WIDTHS.items():
        assert specs[name].files[-1] == legacy(name, width)


def test_error_counters_are_legacy_only_and_summed_into_total_errors():
    errors = [c for c in COUNTERS if c.cluster == ERRORS]
    for c in errors:
        assert len(c.files) == 1 and c.files[0].directory == "counters" and c.files[0].width < 64
        assert c.total == "errors" and c.units == COUNT and c.scale == 1
    assert counters.TOTALS["errors"] == tuple(c.sysfs for c in errors)


def test_data_counters_are_words_scaled_to_bytes_and_prefer_64_bit():
    specs = by_sysfs()
    for name, total in (("port_xmit_data", "xmit_bytes"), ("port_rcv_data", "rcv_bytes")):
        assert specs[name].scale == 4 and specs[name].units == BYTES
        assert specs[name].files[0] == ext(f"{name}_64") and specs[name].total == total
    assert {c.sysfs for c in COUNTERS if c.scale != 1} == {"port_xmit_data", "port_rcv_data"}
    assert counters.TOTALS == {
        "xmit_bytes": ("port_xmit_data",), "rcv_bytes": ("port_rcv_data",),
        "xmit_packets": ("port_xmit_packets",), "rcv_packets": ("port_rcv_packets",),
        "errors": counters.TOTALS["errors"]}


def test_every_record_becomes_one_metric_with_its_own_pmid():
    table = pmids(metrics.METRICS)
    for c in COUNTERS:
        assert table[c.metric] == (c.cluster, c.item)
    assert sum(1 for m in metrics.METRICS if m.cluster in (TRAFFIC, ERRORS)) == len(COUNTERS)


NEW = PortCounter(
    sysfs="test_only_errors", cluster=ERRORS,
    item=1 + max(c.item for c in COUNTERS if c.cluster == ERRORS),   # the next free item
    metric="port.errors.test_only", files=(legacy("test_only_errors", 16),),
    units=COUNT, total="errors", help="a counter made up for the test",
    long_help="A made-up counter for the test.")


@pytest.mark.parametrize("position", [0, 5, len(COUNTERS)])
def test_a_new_counter_anywhere_in_the_list_moves_no_pmid(position):
    grown = (*COUNTERS[:position], NEW, *COUNTERS[position:])
    counters.check(grown)
    before = pmids([*metrics.counter_metrics(TRAFFIC), *metrics.counter_metrics(ERRORS)])
    after = pmids([*metrics.counter_metrics(TRAFFIC, grown),
                   *metrics.counter_metrics(ERRORS, grown)])
    assert after == {**before, NEW.metric: (ERRORS, NEW.item)}
    everything = [m for m in metrics.METRICS if m.cluster not in (TRAFFIC, ERRORS)]
    check_table([*everything, *metrics.counter_metrics(TRAFFIC, grown),
                 *metrics.counter_metrics(ERRORS, grown)], metrics.INDOMS)
    assert set(counters.totals(grown)["errors"]) == {*counters.TOTALS["errors"], NEW.sysfs}


@pytest.mark.parametrize("change,message", [
    ({"item": 3}, "PMID item 2.3 is already used by port_rcv_errors"),
    ({"item": 0, "cluster": TRAFFIC}, "PMID item 1.0 is already used by port_xmit_data"),
    ({"sysfs": "symbol_error"}, "sysfs name symbol_error is already used"),
    ({"metric": "port.errors.symbol"}, "metric name port.errors.symbol is already used"),
    ({"cluster": 3}, "neither TRAFFIC nor ERRORS"),
    ({"files": (legacy("x", 16), ext("x_64"))}, "widest first"),
    ({"files": ()}, "widest first"),
])
def test_check_refuses_a_clashing_or_malformed_record(change, message):
    with pytest.raises(ValueError, match=message):
        counters.check((*COUNTERS, dataclasses.replace(NEW, **change)))


def test_records_are_keyword_only():
    with pytest.raises(TypeError):
        PortCounter("symbol_error", (legacy("symbol_error", 16),))  # type: ignore[misc]


def test_the_demo_writes_every_counter_and_moves_traffic_faster(tmp_path):
    root = str(tmp_path)
    demo.build(root, hcas=1, ports=1)
    for c in COUNTERS:
        assert os.path.isfile(port_file(root, "mlx5_0", 1, c.files[-1].path)), c.sysfs
    assert demo.COUNTER_FILES == tuple(c.files[-1].path for c in COUNTERS)
    assert demo.TRAFFIC_FILES == {c.files[-1].path for c in COUNTERS if c.cluster == TRAFFIC}
