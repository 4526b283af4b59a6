"""Metric table of the InfiniBand agent (hpc.ib.*).

The per-port counter metrics (clusters 1 and 2) come from the counter records in
counters.py, each with its own PMID item.  The other clusters are append only:
their PMIDs are positions, and archives record them.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pmdas.common.table import (
    BITS_PER_SEC,
    BYTES,
    BYTES_PER_SEC,
    COUNT,
    COUNTER,
    DISCRETE,
    INSTANT,
    NONE,
    STRING,
    U32,
    U64,
    Indom,
    Metric,
    cluster,
    numbered,
    per_instance,
)

from .counters import COUNTERS, ERRORS, TOTALS, TRAFFIC, PortCounter

_UNAVAILABLE = ("Unavailable for a port when its file cannot be read (the reason is in "
                "hpc.ib.port.error_text) and for one refresh after the counter went backwards "
                "(reset).")


def _counter(spec: PortCounter) -> Metric:
    sysfs = spec.sysfs
    return Metric(spec.metric, U64, COUNTER, spec.units, spec.help,
                  f"{spec.long_help} Source: sysfs {sysfs}. {_UNAVAILABLE}",
                  per_instance("ports", lambda p: p.counters.get(sysfs)), indom="port")


def counter_metrics(cluster_number: int,
                    counters: Sequence[PortCounter] = COUNTERS) -> list[Metric]:
    """The metrics of one cluster of port counters, each numbered by its record's item."""
    return numbered(cluster_number, ((c.item, _counter(c)) for c in counters if c.cluster == cluster_number))


def _text_state(pair: tuple[int, str] | None, index: int) -> Any:
    return None if pair is None else pair[index]


INDOMS = [
    Indom("ca", 0, "RDMA devices (host channel adapters)",
          "One instance per device under /sys/class/infiniband (mlx5_0, mlx4_0, hfi1_0, ...). "
          "Instance labels carry the HCA type, board id, firmware version and node GUID.",
          lambda s: {n: {"ca": n, **{k: v for k, v in (("hca_type", c.hca_type),
                                                         ("board_id", c.board_id),
                                                         ("fw_ver", c.fw_ver),
                                                         ("node_guid", c.node_guid)) if v}}
                     for n, c in s.cas.items()}),
    Indom("port", 1, "HCA ports, named <ca>:<port>",
          "One instance per port of every RDMA device, named <ca>:<port> (mlx5_0:1). Labels: "
          "ca, port and link_layer (InfiniBand, or Ethernet for RoCE) for dashboard filters.",
          lambda s: {k: {"ca": p.ca, "port": p.port, "link_layer": p.link_layer or "unknown"}
                     for k, p in s.ports.items()}),
    Indom("hw_counter", 2, "vendor hardware counters, named <ca>:<port>:<counter>",
          "One instance per file in a port's hw_counters directory (mlx5 out_of_buffer, "
          "np_cnp_sent, bnxt_re active_qps, ...), named <ca>:<port>:<counter>, with labels ca, "
          "port and counter. The set depends on the driver and firmware, so it is an instance "
          "domain rather than one metric per counter. Event counters have values in "
          "hpc.ib.port.hw_counter, levels (gauges) in hpc.ib.port.hw_gauge.",
          lambda s: {f"{k}:{c}": {"ca": p.ca, "port": p.port, "counter": c}
                     for k, p in s.ports.items() for c in (*p.hw_counters, *p.hw_gauges)}),
    Indom("port_counter", 3, "standard port counters, named <ca>:<port>:<counter>",
          "One instance per standard IBTA port counter the agent read, named "
          "<ca>:<port>:<counter> with the sysfs counter name (port_xmit_data, symbol_error, "
          "...), labels ca, port and counter. Used to report counter widths and saturation.",
          lambda s: {f"{k}:{c}": {"ca": p.ca, "port": p.port, "counter": c}
                     for k, p in s.ports.items() for c in p.widths}),
]

_CA = [
    Metric("ca.type", STRING, DISCRETE, NONE, "HCA model (hca_type)",
           "The device's hca_type file, the PCI device model such as MT4123 (ConnectX-6). "
           "Omni-Path hfi1 devices have no hca_type: unavailable there.",
           per_instance("cas", lambda c: c.hca_type), indom="ca"),
    Metric("ca.fw_ver", STRING, DISCRETE, NONE, "HCA firmware version",
           "The device's fw_ver file (16.35.2000). Compare across nodes to find HCAs left on "
           "old firmware.", per_instance("cas", lambda c: c.fw_ver), indom="ca"),
    Metric("ca.board_id", STRING, DISCRETE, NONE, "HCA board identifier (PSID)",
           "The device's board_id file: the vendor board id (Mellanox PSID such as "
           "MT_0000000010, or the Omni-Path board name).", per_instance("cas", lambda c: c.board_id),
           indom="ca"),
    Metric("ca.node_guid", STRING, DISCRETE, NONE, "HCA node GUID",
           "The device's node_guid, as four groups of four hex digits. It identifies the HCA "
           "in the fabric (ibnetdiscover, subnet manager logs).",
           per_instance("cas", lambda c: c.node_guid), indom="ca"),
    Metric("ca.ports", U32, INSTANT, COUNT, "ports of the HCA",
           "Number of ports under the device's ports directory at the last refresh.",
           per_instance("cas", lambda c: c.ports), indom="ca"),
    Metric("ca.error_text", STRING, INSTANT, NONE, "why device attributes are unavailable",
           "Semicolon-separated '<file>: <reason>' for device-level files that could not be "
           "read or parsed at the last refresh, or empty.",
           per_instance("cas", lambda c: "; ".join(c.problems)), indom="ca"),
    Metric("ca.driver", STRING, DISCRETE, NONE, "kernel driver of the RDMA device",
           "The name the device's device/driver link points to: the PCI driver (hfi1, "
           "mlx5_core on kernels before the auxiliary bus) or the auxiliary driver (mlx5_ib, "
           "bnxt_re on newer kernels). When the link is missing, the driver whose default "
           "device name this is (hfi1_0 is hfi1), else unavailable. The agent reads hfi1 "
           "(Omni-Path) counters by that driver's rules; see hpc.ib.port.xmit.bytes.",
           per_instance("cas", lambda c: c.driver), indom="ca"),
]

_STATE = [
    Metric("port.state", U32, INSTANT, NONE, "logical port state number",
           "The port's logical state from its state file: 1 DOWN, 2 INIT, 3 ARMED, 4 ACTIVE, "
           "5 ACTIVE_DEFER. Only ACTIVE ports carry traffic.",
           per_instance("ports", lambda p: _text_state(p.state, 0)), indom="port"),
    Metric("port.state_text", STRING, INSTANT, NONE, "logical port state name",
           "The name part of the port's state file (ACTIVE, DOWN, INIT, ARMED).",
           per_instance("ports", lambda p: _text_state(p.state, 1)), indom="port"),
    Metric("port.phys_state", U32, INSTANT, NONE, "physical port state number",
           "The port's physical state from phys_state: 1 Sleep, 2 Polling, 3 Disabled, "
           "4 PortConfigurationTraining, 5 LinkUp, 6 LinkErrorRecovery, 7 Phy Test. Polling "
           "means no peer (cable out or switch port down).",
           per_instance("ports", lambda p: _text_state(p.phys_state, 0)), indom="port"),
    Metric("port.phys_state_text", STRING, INSTANT, NONE, "physical port state name",
           "The name part of the port's phys_state file (LinkUp, Polling, Disabled, ...).",
           per_instance("ports", lambda p: _text_state(p.phys_state, 1)), indom="port"),
    Metric("port.rate", U64, DISCRETE, BITS_PER_SEC, "link rate in bits/s (deprecated)",
           "Deprecated: use hpc.ib.port.rate_bytes. The port's rate file (100 Gb/sec (4X EDR)) "
           "in bits per second, but with the units count/s, because PCP has no bit unit: tools "
           "cannot compare it with the byte counters or convert it. Kept unchanged for "
           "archives and rules that use it.",
           per_instance("ports", lambda p: p.rate.bits_per_second if p.rate else None),
           indom="port"),
    Metric("port.width", STRING, DISCRETE, NONE, "active link width (1X, 4X, ...)",
           "The lane count part of the rate file: 1X, 2X, 4X, 8X or 12X.",
           per_instance("ports", lambda p: p.rate.width or None if p.rate else None), indom="port"),
    Metric("port.speed", STRING, DISCRETE, NONE, "active lane speed (EDR, HDR, ...)",
           "The lane speed part of the rate file: SDR, DDR, QDR, FDR10, FDR, EDR, HDR, NDR, XDR.",
           per_instance("ports", lambda p: p.rate.speed or None if p.rate else None), indom="port"),
    Metric("port.link_layer", STRING, DISCRETE, NONE, "link layer: InfiniBand or Ethernet",
           "The port's link_layer file: InfiniBand for IB and Omni-Path ports, Ethernet for "
           "RoCE ports.", per_instance("ports", lambda p: p.link_layer), indom="port"),
    Metric("port.lid", U32, DISCRETE, NONE, "local identifier assigned by the subnet manager",
           "The port's LID (lid file, hexadecimal in sysfs). 0 on RoCE ports and on IB ports "
           "the subnet manager has not configured yet.", per_instance("ports", lambda p: p.lid),
           indom="port"),
    Metric("port.sm_lid", U32, DISCRETE, NONE, "LID of the subnet manager",
           "The LID of the subnet manager this port reports to (sm_lid file). A change means "
           "the subnet manager failed over.", per_instance("ports", lambda p: p.sm_lid), indom="port"),
    Metric("port.rate_bytes", U64, DISCRETE, BYTES_PER_SEC, "link rate in bytes per second",
           "The port's rate file (100 Gb/sec (4X EDR)) divided by 8: lanes times lane speed, "
           "in bytes per second, so it compares with the rate of hpc.ib.port.xmit.bytes. It is "
           "the signalling rate the kernel reports, before line encoding (8b/10b on SDR, DDR "
           "and QDR leaves 80% for packets; 64b/66b from FDR on). RoCE ports report the "
           "Ethernet speed mapped to an IB width and speed; Omni-Path reports 100 Gb/sec "
           "(4X EDR). A port that trained at fewer lanes or a lower speed than its peers shows "
           "here. Unavailable when the kernel cannot report it (EINVAL on some down RoCE "
           "ports). Replaces hpc.ib.port.rate (bits/s with count units).",
           per_instance("ports", lambda p: p.rate.bits_per_second // 8 if p.rate else None),
           indom="port"),
]

_PORT_HEALTH = [
    Metric("port.saturated", U32, INSTANT, NONE, "1 if any counter of the port is saturated",
           "1 when at least one counter read for this port sits at the maximum of its width "
           "(2^width-1), i.e. the hardware stopped counting and its rate reads as zero rather "
           "than the true traffic or error rate. Clear the counters (perfquery -R) or use an "
           "HCA/kernel with 64-bit counters. hpc.ib.port.saturated_counters names them.",
           per_instance("ports", lambda p: int(bool(p.saturated))), indom="port"),
    Metric("port.saturated_counters", STRING, INSTANT, NONE, "names of saturated counters",
           "Comma-separated sysfs names of this port's counters that sit at their maximum "
           "value, or empty.", per_instance("ports", lambda p: ",".join(p.saturated)), indom="port"),
    Metric("port.error_text", STRING, INSTANT, NONE, "why values of the port are unavailable",
           "Semicolon-separated '<file>: <reason>' for every file of this port that could not "
           "be read or parsed at the last refresh ('N/A (no PMA)', EINVAL, garbage) and every "
           "counter that went backwards, or empty when all values were read.",
           per_instance("ports", lambda p: "; ".join(p.problems)), indom="port"),
    Metric("port.unavailable", U32, INSTANT, COUNT, "values of the port unavailable now",
           "Number of files of this port whose values are unavailable at the last refresh "
           "(see port.error_text).", per_instance("ports", lambda p: len(p.problems)), indom="port"),
    Metric("port.counter_resets", U64, COUNTER, COUNT, "counter resets seen on the port",
           "Times a counter of this port (standard or hw_counters) was seen going backwards "
           "since the agent started: someone cleared the counters or the driver reloaded.",
           per_instance("ports", lambda p: p.resets), indom="port"),
    Metric("port.counter.width", U32, DISCRETE, NONE, "bits of each standard counter",
           "Width in bits of the counter as the kernel reads it: 64 for counters_ext and the "
           "extended (unicast/multicast) counters; 64 for port_xmit_data, port_rcv_data, "
           "port_xmit_packets and port_rcv_packets in counters/ when the kernel put the "
           "extended counter set there (the unicast/multicast files show it: kernels since "
           "about 4.6 on devices reporting extended width, hfi1 included); else the IBTA "
           "PortCounters width (32, 16, 8 or 4), raised to 64 for good once a value above the "
           "32-bit maximum shows the kernel reads the extended counter without the "
           "unicast/multicast ones. Agents before 2026-12-05 read 32 until the value passed "
           "2^32.",
           lambda s: {f"{k}:{c}": w for k, p in s.ports.items() for c, w in p.widths.items()},
           indom="port_counter"),
    Metric("port.counter.saturated", U32, INSTANT, NONE, "1 if the counter is saturated",
           "1 when the counter equals 2^width-1 for its width and has stopped counting; 0 "
           "otherwise.",
           lambda s: {f"{k}:{c}": int(c in p.saturated) for k, p in s.ports.items()
                      for c in p.widths}, indom="port_counter"),
]

def _hw_values(of_port: Callable[[Any], Any]) -> Callable[[Any], dict[str, int]]:
    """Values of one kind of hw_counters entry, keyed <ca>:<port>:<counter>; unreadable left out."""
    return lambda s: {f"{k}:{c}": v for k, p in s.ports.items()
                      for c, v in of_port(p).items() if v is not None}


_HW = [
    Metric("port.hw_counter", U64, COUNTER, COUNT, "vendor hardware counter of a port",
           "The value of each file in the port's hw_counters directory (for mlx5: out_of_buffer "
           "= packets dropped for lack of receive WQEs, np_cnp_sent = congestion notification "
           "packets sent, packet_seq_err, local_ack_timeout_err, ...; see the vendor's "
           "documentation). The lifespan setting is not exported. Unavailable for one refresh "
           "after the counter went backwards, or while its file cannot be read. Levels that "
           "rise and fall (bnxt_re active_qps, active_cqs, active_mrs, ..., the watermark_* "
           "high-water marks, db_fifo_register) are not served here but in "
           "hpc.ib.port.hw_gauge; agents before 2026-12-05 served them here and took each fall "
           "for a counter reset.",
           _hw_values(lambda p: p.hw_counters), indom="hw_counter"),
    Metric("port.hw_gauge", U64, INSTANT, COUNT, "vendor hardware level (gauge) of a port",
           "Entries of a port's hw_counters directory that are levels, not event counts: "
           "bnxt_re (Broadcom) active_pds, active_ahs, active_qps, active_srqs, active_cqs, "
           "active_mrs, active_mws (resources in use now; active_rc_qps and active_ud_qps in "
           "later drivers), watermark_* (the highest count since the driver loaded, later 6.x "
           "drivers) and db_fifo_register (a doorbell FIFO register reading). Values may fall; "
           "no reset detection. A Broadcom patch of September 2025 moves them out of "
           "hw_counters, so kernels with it show none. Unavailable while the file cannot be "
           "read.",
           _hw_values(lambda p: p.hw_gauges), indom="hw_counter"),
]


def _total(name: str) -> Callable[[Any], int]:
    if name not in TOTALS:
        raise ValueError(f"no counter record adds to the node total {name!r} (counters.py)")
    return lambda s: s.totals.get(name)


_TOTALS_HELP = (" Starts at the sum over the ports read at the agent's first refresh and grows "
                "only by increases seen between two reads of the same port, so it never goes "
                "backwards when a port resets or disappears; a port first read later "
                "(hot-added, its device failing at the first refresh, or back after 360 "
                "refreshes away) adds nothing at first sight, only its increases after that. "
                "Agents before 2026-12-05 added such a port's whole lifetime count at once. "
                "Restarts when the agent restarts.")

_TOTALS = [
    Metric("total.xmit.bytes", U64, COUNTER, BYTES, "bytes transmitted by all ports of the node",
           "Bytes transmitted over every InfiniBand/RoCE port of this node." + _TOTALS_HELP,
           _total("xmit_bytes")),
    Metric("total.rcv.bytes", U64, COUNTER, BYTES, "bytes received by all ports of the node",
           "Bytes received over every InfiniBand/RoCE port of this node." + _TOTALS_HELP,
           _total("rcv_bytes")),
    Metric("total.xmit.packets", U64, COUNTER, COUNT, "packets transmitted by all ports",
           "Packets transmitted over every port of this node." + _TOTALS_HELP,
           _total("xmit_packets")),
    Metric("total.rcv.packets", U64, COUNTER, COUNT, "packets received by all ports",
           "Packets received over every port of this node." + _TOTALS_HELP,
           _total("rcv_packets")),
    Metric("total.errors", U64, COUNTER, COUNT, "errors counted by all ports of the node",
           "Sum of every standard error counter (symbol errors, link recoveries, link downs, "
           "receive errors, discards, constraint, integrity, overrun and VL15 drops) over every "
           "port of this node: a single line for summary dashboards." + _TOTALS_HELP,
           _total("errors")),
    Metric("total.ports", U32, INSTANT, COUNT, "ports read at the last refresh",
           "Number of HCA ports the agent read at the last refresh.",
           lambda s: len(s.ports)),
    Metric("total.ports_active", U32, INSTANT, COUNT, "ports in the ACTIVE state",
           "Number of ports whose logical state is ACTIVE (4). Fewer than expected means a "
           "cable, switch port or subnet manager problem.",
           lambda s: sum(1 for p in s.ports.values() if p.state and p.state[0] == 4)),
    Metric("total.saturated_ports", U32, INSTANT, COUNT, "ports with a saturated counter",
           "Number of ports with at least one counter stuck at its maximum.",
           lambda s: sum(1 for p in s.ports.values() if p.saturated)),
    Metric("total.unavailable", U32, INSTANT, COUNT, "port values unavailable at the last refresh",
           "Number of port files whose values were unavailable at the last refresh, over all "
           "ports (see hpc.ib.port.error_text).",
           lambda s: sum(len(p.problems) for p in s.ports.values())),
]

METRICS = [*cluster(0, _CA), *counter_metrics(TRAFFIC), *counter_metrics(ERRORS),
           *cluster(3, _STATE), *cluster(4, _PORT_HEALTH), *cluster(5, _HW), *cluster(6, _TOTALS)]
