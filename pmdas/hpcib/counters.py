"""The standard InfiniBand port counters: one record per counter, the only list of them.

Everything else is derived from ``COUNTERS``: which files the collector reads and
their widths, the bytes-per-word scale, which node total a counter adds to, the
per-port metrics with their PMIDs (metrics.py), and the files the demo writes
(hpc_demo/hpcib.py).  Adding a counter is adding one record with an unused item
of its cluster; no other record's PMID moves, whatever its place in the list.
PMIDs are pinned in metrics.golden.  Pure data: no file access, no PCP import.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from pmdas.common.table import BYTES, COUNT, Units

# PMID clusters of the per-port counter metrics (hpc.ib.port.*).
TRAFFIC = 1   # data and packet counters: large, fast-moving
ERRORS = 2    # error counters: small widths, rarely move

# port_xmit_data and port_rcv_data count 32-bit words, not octets (InfiniBand and
# RoCE; Omni-Path hfi1 counts 8-octet flits instead: drivers.py).
OCTETS_PER_WORD = 4

# The counters the kernel reads from PortCountersExtended (64 bit) into counters/ when
# the device's performance management agent reports extended width
# (drivers/infiniband/core/sysfs.c, get_counter_table: pma_group_ext or pma_group_noietf;
# else pma_group, the 32-bit PortCounters).
EXTENDED_IN_COUNTERS = frozenset({"port_xmit_data", "port_rcv_data", "port_xmit_packets",
                                  "port_rcv_packets"})
# Files only the extended table (pma_group_ext, IETF counters included) puts in counters/:
# where one exists, the four above are 64-bit whatever their value.
EXTENDED_TABLE_FILES = ("counters/unicast_xmit_packets", "counters/unicast_rcv_packets",
                        "counters/multicast_xmit_packets", "counters/multicast_rcv_packets")


@dataclass(frozen=True, kw_only=True)
class CounterFile:
    """One place a counter may be read: ``<port>/<directory>/<name>``, ``width`` bits wide.

    A counter at 2**width - 1 is saturated (the hardware stopped counting until reset).
    """

    directory: str
    name: str
    width: int

    @cached_property
    def path(self) -> str:
        """Relative to the port directory, as PortReading keys its counters."""
        return f"{self.directory}/{self.name}"


def ext(name: str) -> CounterFile:
    """A 64-bit copy in ``counters_ext/`` (older kernels and MLNX_OFED)."""
    return CounterFile(directory="counters_ext", name=name, width=64)


def legacy(name: str, width: int) -> CounterFile:
    """A file in ``counters/`` with its IBTA PortCounters width (64 for the extended ones)."""
    return CounterFile(directory="counters", name=name, width=width)


@dataclass(frozen=True, kw_only=True)
class PortCounter:
    """One standard port counter, and the metric that exports it."""

    sysfs: str                       # the counter's sysfs name (port_xmit_data, symbol_error)
    files: tuple[CounterFile, ...]   # where it may be found, best (widest) first
    metric: str                      # metric name below hpc.ib (port.xmit.bytes)
    cluster: int                     # TRAFFIC or ERRORS
    item: int                        # PMID item in its cluster: never changes once shipped
    units: Units                     # of the exported value
    scale: int = 1                   # exported value = raw value * scale
    total: str | None = None         # the node total it adds to (total.<...>), if any
    help: str
    long_help: str


# The order below is the order counters are read and listed (saturated_counters, the
# port_counter instances, the demo's files); PMIDs come from ``item`` alone.
COUNTERS: tuple[PortCounter, ...] = (
    PortCounter(
        sysfs="port_xmit_data", cluster=TRAFFIC, item=0, metric="port.xmit.bytes",
        files=(ext("port_xmit_data_64"), legacy("port_xmit_data", 32)),
        units=BYTES, scale=OCTETS_PER_WORD, total="xmit_bytes",
        help="bytes transmitted by the port",
        long_help="Octets transmitted on all VLs, excluding link packets. InfiniBand and RoCE "
        "count 32-bit words (the agent multiplies by 4); Omni-Path (hfi1) fills the file from "
        "its flit counter, 8 octets of data per flit (the agent multiplies by 8; agents before "
        "2026-12-05 multiplied by 4 and showed half the traffic). Taken from "
        "counters_ext/port_xmit_data_64 when present (MLNX_OFED), else counters/port_xmit_data: "
        "64 bits wide when the device reports extended counters (kernels since about 4.6, "
        "2016), else 32 bits, "
        "which saturates after 16 GiB (see hpc.ib.port.saturated)."),
    PortCounter(
        sysfs="port_rcv_data", cluster=TRAFFIC, item=1, metric="port.rcv.bytes",
        files=(ext("port_rcv_data_64"), legacy("port_rcv_data", 32)),
        units=BYTES, scale=OCTETS_PER_WORD, total="rcv_bytes",
        help="bytes received by the port",
        long_help="Octets received on all VLs, excluding link packets; converted like "
        "port.xmit.bytes: 4-octet words on InfiniBand and RoCE, 8-octet flits on Omni-Path "
        "(hfi1), 64-bit source preferred."),
    PortCounter(
        sysfs="port_xmit_packets", cluster=TRAFFIC, item=2, metric="port.xmit.packets",
        files=(ext("port_xmit_packets_64"), legacy("port_xmit_packets", 32)),
        units=COUNT, total="xmit_packets",
        help="packets transmitted by the port",
        long_help="Packets transmitted on all VLs; counters_ext/port_xmit_packets_64 preferred."),
    PortCounter(
        sysfs="port_rcv_packets", cluster=TRAFFIC, item=3, metric="port.rcv.packets",
        files=(ext("port_rcv_packets_64"), legacy("port_rcv_packets", 32)),
        units=COUNT, total="rcv_packets",
        help="packets received by the port",
        long_help="Packets received on all VLs; counters_ext/port_rcv_packets_64 preferred."),
    # unicast/multicast packets exist only in PortCountersExtended (64 bit); modern kernels
    # name them without the port_ prefix in counters/.
    PortCounter(
        sysfs="unicast_xmit_packets", cluster=TRAFFIC, item=4, metric="port.xmit.unicast_packets",
        files=(ext("port_unicast_xmit_packets"), legacy("unicast_xmit_packets", 64)),
        units=COUNT,
        help="unicast packets transmitted",
        long_help="Unicast packets transmitted (64-bit extended counter). Absent on HCAs and "
        "kernels without the extended counter set, and on Omni-Path (hfi1), whose driver "
        "reports the constant 0 here (agents before 2026-12-05 exported that 0)."),
    PortCounter(
        sysfs="unicast_rcv_packets", cluster=TRAFFIC, item=5, metric="port.rcv.unicast_packets",
        files=(ext("port_unicast_rcv_packets"), legacy("unicast_rcv_packets", 64)),
        units=COUNT,
        help="unicast packets received",
        long_help="Unicast packets received (64-bit extended counter). Absent where "
        "port.xmit.unicast_packets is, including Omni-Path (hfi1), whose driver reports the "
        "constant 0."),
    PortCounter(
        sysfs="multicast_xmit_packets", cluster=TRAFFIC, item=6,
        metric="port.xmit.multicast_packets",
        files=(ext("port_multicast_xmit_packets"), legacy("multicast_xmit_packets", 64)),
        units=COUNT,
        help="multicast packets transmitted",
        long_help="Multicast packets transmitted (64-bit extended counter)."),
    PortCounter(
        sysfs="multicast_rcv_packets", cluster=TRAFFIC, item=7,
        metric="port.rcv.multicast_packets",
        files=(ext("port_multicast_rcv_packets"), legacy("multicast_rcv_packets", 64)),
        units=COUNT,
        help="multicast packets received",
        long_help="Multicast packets received (64-bit extended counter)."),
    PortCounter(
        sysfs="port_xmit_wait", cluster=TRAFFIC, item=8, metric="port.xmit.wait",
        files=(legacy("port_xmit_wait", 32),),
        units=COUNT,
        help="ticks the port had data to send but sent none",
        long_help="Number of ticks during which the port had data to transmit but no data was "
        "sent during the entire tick, either because of insufficient credits or because of "
        "lack of arbitration (IBTA PortXmitWait; wording of the kernel's sysfs ABI). A rising "
        "rate means congestion towards the switch. 32 bits wide: it saturates on busy fabrics. "
        "Absent where the kernel does not create counters/port_xmit_wait (4.x kernels from "
        "2016 list only the other counters) and on Omni-Path (hfi1), whose driver never fills "
        "it (its hw_counter TxWait counts the same)."),
    PortCounter(
        sysfs="symbol_error", cluster=ERRORS, item=0, metric="port.errors.symbol",
        files=(legacy("symbol_error", 16),), units=COUNT, total="errors",
        help="minor link errors (symbol errors)",
        long_help="Minor link errors detected on one or more physical lanes. A steady rise points "
        "at a bad cable or transceiver. 16 bits wide. Absent on Omni-Path (hfi1), whose driver "
        "reports the constant 0."),
    PortCounter(
        sysfs="link_error_recovery", cluster=ERRORS, item=1,
        metric="port.errors.link_error_recovery",
        files=(legacy("link_error_recovery", 8),), units=COUNT, total="errors",
        help="successful link error recoveries",
        long_help="Times the port training state machine successfully completed link error "
        "recovery. 8 bits wide."),
    PortCounter(
        sysfs="link_downed", cluster=ERRORS, item=2, metric="port.errors.link_downed",
        files=(legacy("link_downed", 8),), units=COUNT, total="errors",
        help="times the link went down",
        long_help="Times the link error recovery process failed and the link went down. "
        "8 bits wide."),
    PortCounter(
        sysfs="port_rcv_errors", cluster=ERRORS, item=3, metric="port.errors.rcv",
        files=(legacy("port_rcv_errors", 16),), units=COUNT, total="errors",
        help="received packets with errors",
        long_help="Packets received with errors (local physical errors, malformed packets, buffer "
        "overruns). 16 bits wide."),
    PortCounter(
        sysfs="port_rcv_remote_physical_errors", cluster=ERRORS, item=4,
        metric="port.errors.rcv_remote_physical",
        files=(legacy("port_rcv_remote_physical_errors", 16),), units=COUNT, total="errors",
        help="received packets marked bad by an upstream link",
        long_help="Packets received with the EBP delimiter: corrupted on an earlier link of the "
        "fabric. 16 bits wide."),
    PortCounter(
        sysfs="port_rcv_switch_relay_errors", cluster=ERRORS, item=5,
        metric="port.errors.rcv_switch_relay",
        files=(legacy("port_rcv_switch_relay_errors", 16),), units=COUNT, total="errors",
        help="packets a switch port could not relay",
        long_help="Received packets discarded because they could not be forwarded by the switch "
        "relay (meaningful on switch ports). 16 bits wide."),
    PortCounter(
        sysfs="port_xmit_discards", cluster=ERRORS, item=6, metric="port.errors.xmit_discards",
        files=(legacy("port_xmit_discards", 16),), units=COUNT, total="errors",
        help="outbound packets discarded",
        long_help="Outbound packets discarded because the port was down or congested. "
        "16 bits wide."),
    PortCounter(
        sysfs="port_xmit_constraint_errors", cluster=ERRORS, item=7,
        metric="port.errors.xmit_constraint",
        files=(legacy("port_xmit_constraint_errors", 8),), units=COUNT, total="errors",
        help="packets not sent due to constraints",
        long_help="Packets not transmitted because of outbound raw filtering or partition "
        "enforcement. 8 bits wide."),
    PortCounter(
        sysfs="port_rcv_constraint_errors", cluster=ERRORS, item=8,
        metric="port.errors.rcv_constraint",
        files=(legacy("port_rcv_constraint_errors", 8),), units=COUNT, total="errors",
        help="packets dropped due to constraints",
        long_help="Packets received and discarded because of inbound raw filtering or partition "
        "enforcement. 8 bits wide."),
    PortCounter(
        sysfs="local_link_integrity_errors", cluster=ERRORS, item=9,
        metric="port.errors.local_link_integrity",
        files=(legacy("local_link_integrity_errors", 4),), units=COUNT, total="errors",
        help="local link integrity threshold hits",
        long_help="Times the count of local physical errors exceeded the LocalPhyErrors "
        "threshold. 4 bits wide: saturates at 15."),
    PortCounter(
        sysfs="excessive_buffer_overrun_errors", cluster=ERRORS, item=10,
        metric="port.errors.excessive_buffer_overrun",
        files=(legacy("excessive_buffer_overrun_errors", 4),), units=COUNT, total="errors",
        help="excessive consecutive buffer overruns",
        long_help="Times consecutive flow-control update periods had at least one receive buffer "
        "overrun. 4 bits wide: saturates at 15."),
    PortCounter(
        sysfs="VL15_dropped", cluster=ERRORS, item=11, metric="port.errors.vl15_dropped",
        files=(legacy("VL15_dropped", 16),), units=COUNT, total="errors",
        help="subnet management packets dropped",
        long_help="Incoming VL15 (subnet management) packets dropped for lack of buffers. "
        "16 bits wide. Absent on Omni-Path (hfi1), whose driver reports the constant 0."),
)


def check(counters: Sequence[PortCounter]) -> None:
    """Raise ValueError unless every counter has a known cluster, its own PMID, sysfs name
    and metric name, and files listed widest first."""
    seen: dict[str, str] = {}
    for c in counters:
        if c.cluster not in (TRAFFIC, ERRORS):
            raise ValueError(f"counter {c.sysfs}: cluster {c.cluster} is neither TRAFFIC nor ERRORS")
        if not c.files or [f.width for f in c.files] != sorted((f.width for f in c.files),
                                                                reverse=True):
            raise ValueError(f"counter {c.sysfs}: list its files, widest first")
        for key in (f"PMID item {c.cluster}.{c.item}", f"sysfs name {c.sysfs}",
                    f"metric name {c.metric}"):
            if key in seen:
                raise ValueError(f"counter {c.sysfs}: {key} is already used by {seen[key]}")
            seen[key] = c.sysfs


def totals(counters: Sequence[PortCounter]) -> dict[str, tuple[str, ...]]:
    """Node total → the sysfs names of the counters it sums, in first-use order."""
    out: dict[str, tuple[str, ...]] = {}
    for c in counters:
        if c.total is not None:
            out[c.total] = (*out.get(c.total, ()), c.sysfs)
    return out


check(COUNTERS)
TOTALS = totals(COUNTERS)
