"""Metric table of the InfiniBand agent (hpc.ib.*).

Append only within each cluster: PMIDs are positions, and archives record them.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pmdas.common.table import (
    BITS_PER_SEC,
    BYTES,
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
    per_instance,
)

_UNAVAILABLE = ("Unavailable for a port when its file cannot be read (the reason is in "
                "hpc.ib.port.error_text) and for one refresh after the counter went backwards "
                "(reset).")




def _counter(name: str, sysfs: str, units, short: str, long: str) -> Metric:
    return Metric(name, U64, COUNTER, units, short, f"{long} Source: sysfs {sysfs}. {_UNAVAILABLE}",
                  per_instance("ports", lambda p: p.counters.get(sysfs)), indom="port")


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
          "np_cnp_sent, ...), named <ca>:<port>:<counter>, with labels ca, port and counter. "
          "The set depends on the driver and firmware, so it is an instance domain rather than "
          "one metric per counter.",
          lambda s: {f"{k}:{c}": {"ca": p.ca, "port": p.port, "counter": c}
                     for k, p in s.ports.items() for c in p.hw_counters}),
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
]

_TRAFFIC = [
    _counter("port.xmit.bytes", "port_xmit_data", BYTES, "bytes transmitted by the port",
             "Octets transmitted on all VLs, excluding link packets. The kernel counts 32-bit "
             "words; the agent multiplies by 4. Taken from counters_ext/port_xmit_data_64 when "
             "present, else counters/port_xmit_data, which on old kernels is 32 bits wide and "
             "saturates after 16 GiB (see hpc.ib.port.saturated)."),
    _counter("port.rcv.bytes", "port_rcv_data", BYTES, "bytes received by the port",
             "Octets received on all VLs, excluding link packets; converted from 4-octet words "
             "like port.xmit.bytes, 64-bit source preferred."),
    _counter("port.xmit.packets", "port_xmit_packets", COUNT, "packets transmitted by the port",
             "Packets transmitted on all VLs; counters_ext/port_xmit_packets_64 preferred."),
    _counter("port.rcv.packets", "port_rcv_packets", COUNT, "packets received by the port",
             "Packets received on all VLs; counters_ext/port_rcv_packets_64 preferred."),
    _counter("port.xmit.unicast_packets", "unicast_xmit_packets", COUNT,
             "unicast packets transmitted", "Unicast packets transmitted (64-bit extended "
             "counter; absent on HCAs without PortCountersExtended)."),
    _counter("port.rcv.unicast_packets", "unicast_rcv_packets", COUNT, "unicast packets received",
             "Unicast packets received (64-bit extended counter)."),
    _counter("port.xmit.multicast_packets", "multicast_xmit_packets", COUNT,
             "multicast packets transmitted", "Multicast packets transmitted (64-bit extended "
             "counter)."),
    _counter("port.rcv.multicast_packets", "multicast_rcv_packets", COUNT,
             "multicast packets received", "Multicast packets received (64-bit extended "
             "counter)."),
    _counter("port.xmit.wait", "port_xmit_wait", COUNT, "ticks the port had data but no credits",
             "Number of sample ticks during which the port had data to send but could not "
             "(no flow-control credits, or link down). A rising rate means congestion towards "
             "the switch. 32 bits wide: it saturates on busy fabrics."),
]

_ERRORS_HELP = [
    ("symbol", "symbol_error", "minor link errors (symbol errors)",
     "Minor link errors detected on one or more physical lanes. A steady rise points at a "
     "bad cable or transceiver. 16 bits wide."),
    ("link_error_recovery", "link_error_recovery", "successful link error recoveries",
     "Times the port training state machine successfully completed link error recovery. "
     "8 bits wide."),
    ("link_downed", "link_downed", "times the link went down",
     "Times the link error recovery process failed and the link went down. 8 bits wide."),
    ("rcv", "port_rcv_errors", "received packets with errors",
     "Packets received with errors (local physical errors, malformed packets, buffer "
     "overruns). 16 bits wide."),
    ("rcv_remote_physical", "port_rcv_remote_physical_errors",
     "received packets marked bad by an upstream link",
     "Packets received with the EBP delimiter: corrupted on an earlier link of the fabric. "
     "16 bits wide."),
    ("rcv_switch_relay", "port_rcv_switch_relay_errors", "packets a switch port could not relay",
     "Received packets discarded because they could not be forwarded by the switch relay "
     "(meaningful on switch ports). 16 bits wide."),
    ("xmit_discards", "port_xmit_discards", "outbound packets discarded",
     "Outbound packets discarded because the port was down or congested. 16 bits wide."),
    ("xmit_constraint", "port_xmit_constraint_errors", "packets not sent due to constraints",
     "Packets not transmitted because of outbound raw filtering or partition enforcement. "
     "8 bits wide."),
    ("rcv_constraint", "port_rcv_constraint_errors", "packets dropped due to constraints",
     "Packets received and discarded because of inbound raw filtering or partition "
     "enforcement. 8 bits wide."),
    ("local_link_integrity", "local_link_integrity_errors", "local link integrity threshold hits",
     "Times the count of local physical errors exceeded the LocalPhyErrors threshold. "
     "4 bits wide: saturates at 15."),
    ("excessive_buffer_overrun", "excessive_buffer_overrun_errors",
     "excessive consecutive buffer overruns",
     "Times consecutive flow-control update periods had at least one receive buffer overrun. "
     "4 bits wide: saturates at 15."),
    ("vl15_dropped", "VL15_dropped", "subnet management packets dropped",
     "Incoming VL15 (subnet management) packets dropped for lack of buffers. 16 bits wide."),
]
_ERRORS = [_counter(f"port.errors.{name}", sysfs, COUNT, short, long)
           for name, sysfs, short, long in _ERRORS_HELP]

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
    Metric("port.rate", U64, DISCRETE, BITS_PER_SEC, "link signalling rate in bits per second",
           "The port's rate file (100 Gb/sec (4X EDR)) in bits per second: lanes times lane "
           "speed. A port that trained at fewer lanes or a lower speed than its peers shows "
           "here. Unavailable when the kernel cannot report it (EINVAL on some down RoCE "
           "ports).", per_instance("ports", lambda p: p.rate.bits_per_second if p.rate else None),
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
           "Width in bits of the counter as read: 64 for counters_ext and extended counters, "
           "the IBTA PortCounters width (32, 16, 8 or 4) for legacy files, raised to 64 when a "
           "value above the legacy maximum shows the kernel read the extended counter.",
           lambda s: {f"{k}:{c}": w for k, p in s.ports.items() for c, w in p.widths.items()},
           indom="port_counter"),
    Metric("port.counter.saturated", U32, INSTANT, NONE, "1 if the counter is saturated",
           "1 when the counter equals 2^width-1 for its width and has stopped counting; 0 "
           "otherwise.",
           lambda s: {f"{k}:{c}": int(c in p.saturated) for k, p in s.ports.items()
                      for c in p.widths}, indom="port_counter"),
]

_HW = [
    Metric("port.hw_counter", U64, COUNTER, COUNT, "vendor hardware counter of a port",
           "The value of each file in the port's hw_counters directory (for mlx5: out_of_buffer "
           "= packets dropped for lack of receive WQEs, np_cnp_sent = congestion notification "
           "packets sent, packet_seq_err, local_ack_timeout_err, ...; see the vendor's "
           "documentation). The lifespan setting is not exported. Unavailable for one refresh "
           "after the counter went backwards, or while its file cannot be read.",
           lambda s: {f"{k}:{c}": v for k, p in s.ports.items()
                      for c, v in p.hw_counters.items() if v is not None},
           indom="hw_counter"),
]


def _total(name: str) -> Callable[[Any], int]:
    return lambda s: s.totals.get(name)


_TOTALS_HELP = (" Starts at the sum over all ports at the agent's first refresh and grows by "
                "each port's increase after that, so it never goes backwards when a port "
                "resets or disappears; restarts when the agent restarts.")

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

METRICS = [*cluster(0, _CA), *cluster(1, _TRAFFIC), *cluster(2, _ERRORS), *cluster(3, _STATE),
           *cluster(4, _PORT_HEALTH), *cluster(5, _HW), *cluster(6, _TOTALS)]
