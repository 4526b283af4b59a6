"""What individual RDMA drivers put into the shared sysfs files differently.

The core (drivers/infiniband/core/sysfs.c) prints whatever the driver's
performance management agent answers, so the meaning of a value can depend on
the driver behind it.  This module holds those differences as data, checked
against the drivers' sources:

* hfi1 (Intel/Cornelis Omni-Path) answers the IB PortCountersExtended query
  from its OPA counters (hw/hfi1/mad.c, pma_get_ib_portcounters_ext): the data
  counters are flit counters (C_DC_XMIT_FLITS/C_DC_RCV_FLITS), 8 bytes of data
  per flit as opa-ff counts them, and the unicast packet counters are the
  constant 0.  Its PortCounters answer (pma_get_ib_portcounters) sets
  SymbolErrorCounter and VL15Dropped to 0 ("N/A for OPA") and never fills
  PortXmitWait.  Those files exist but say nothing: the agent leaves them out.
* bnxt_re (Broadcom NetXtreme-E RoCE) lists resource counts in hw_counters
  (active_qps, ...), their high-water marks (watermark_qps, ...) and a doorbell
  FIFO register reading: gauges, not counters (hw/bnxt_re/hw_counters.c; a
  Broadcom patch of September 2025 moves them out of hw_counters).

Pure data and string functions: no file access, no PCP import.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

# Omni-Path flits carry 64 bits of data (the 65th bit is the flit type).
OCTETS_PER_FLIT = 8


@dataclass(frozen=True, kw_only=True)
class DriverQuirks:
    """How a driver's counters/ files differ from the IBTA meaning."""

    scale: Mapping[str, int] = field(default_factory=dict)   # sysfs name → octets per unit
    constant: frozenset[str] = frozenset()                   # files the driver fills with 0


NO_QUIRKS = DriverQuirks()

QUIRKS: Mapping[str, DriverQuirks] = {
    "hfi1": DriverQuirks(
        scale={"port_xmit_data": OCTETS_PER_FLIT, "port_rcv_data": OCTETS_PER_FLIT},
        constant=frozenset({"unicast_xmit_packets", "unicast_rcv_packets", "symbol_error",
                            "VL15_dropped", "port_xmit_wait"})),
}

# The names the kernel gives a driver's devices when nothing renames them
# (rdma-core's persistent naming may: ibp65s0, opap129s0, ...).
_KERNEL_NAMES = {"hfi1": re.compile(r"hfi1_\d+")}

# hw_counters entries that are levels, not event counts (bnxt_re, Linux 4.11 on;
# watermark_*, active_rc_qps, active_ud_qps and db_fifo_register in later 6.x drivers).
HW_GAUGES = frozenset({
    "active_pds", "active_ahs", "active_qps", "active_rc_qps", "active_ud_qps", "active_srqs",
    "active_cqs", "active_mrs", "active_mws",
    "watermark_pds", "watermark_ahs", "watermark_qps", "watermark_rc_qps", "watermark_ud_qps",
    "watermark_srqs", "watermark_cqs", "watermark_mrs", "watermark_mws",
    "db_fifo_register",
})


def driver_of(device: str, driver_link: str | None) -> str | None:
    """The kernel driver of an RDMA device: the name its ``device/driver`` link points
    to, else the driver whose default device name this is, else None."""
    if driver_link:
        return driver_link.rstrip("/").rsplit("/", 1)[-1] or None
    return next((d for d, name in _KERNEL_NAMES.items() if name.fullmatch(device)), None)


def quirks_of(driver: str | None) -> DriverQuirks:
    return QUIRKS.get(driver or "", NO_QUIRKS)


def is_gauge(hw_counter: str) -> bool:
    """True for hw_counters entries that rise and fall (resource counts, high-water marks)."""
    return hw_counter in HW_GAUGES
