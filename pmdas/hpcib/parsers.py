"""Pure parsers for the InfiniBand sysfs files (text in, plain data out).

Every sysfs attribute holds one value and a trailing newline.  The formats are
the kernel's (drivers/infiniband/core/sysfs.c): ``4: ACTIVE``, ``5: LinkUp``,
``100 Gb/sec (4X EDR)``, ``0x1a``, ``248a:0703:00b4:7a96``.  Parsers raise
``ValueError`` whose message says, in words an admin understands, why a value
is unusable; the caller turns that into "this one value is unavailable".
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# The kernel's answer for a counter when the device has no performance
# management agent (virtual functions, iWARP, some RoCE devices).
NO_PMA = "N/A (no PMA)"

# hw_counters/ entries that are settings, not counters.
HW_COUNTER_SETTINGS = frozenset({"lifespan"})

_MAX_U64 = 2**64 - 1


def parse_counter(text: str) -> int:
    """A counter file: one unsigned decimal number.

    Raises ValueError for ``N/A (no PMA)``, empty files and anything that is
    not a whole number in the unsigned 64-bit range.
    """
    value = text.strip()
    if value == NO_PMA:
        raise ValueError("the device has no performance management agent (reads 'N/A (no PMA)')")
    if not value:
        raise ValueError("the file is empty")
    if not value.isascii() or not value.isdigit():
        raise ValueError(f"holds {_show(value)}, not a counter value")
    number = int(value)
    if number > _MAX_U64:
        raise ValueError(f"holds {_show(value)}, larger than a 64-bit counter")
    return number


def saturated(value: int, width: int) -> bool:
    """True when a ``width``-bit counter sits at its maximum (it stopped counting)."""
    return width < 64 and value == (1 << width) - 1


def effective_width(value: int, width: int) -> int:
    """The width a counter evidently has: a value above the nominal maximum means
    the kernel read the 64-bit PortCountersExtended variant into a legacy file."""
    return 64 if value > (1 << width) - 1 else width


_STATE = re.compile(r"^(\d+): (.+)$")


def parse_state(text: str) -> tuple[int, str]:
    """``state`` (``4: ACTIVE``) or ``phys_state`` (``5: LinkUp``, ``7: Phy Test``)."""
    match = _STATE.match(text.strip())
    if not match:
        raise ValueError(f"holds {_show(text.strip())}, not '<number>: <name>'")
    return int(match.group(1)), match.group(2).strip()


_RATE = re.compile(r"^(\d+(?:\.\d+)?) Gb/sec(?: \((\d+X)\s*([A-Za-z0-9]+)?\))?$")


@dataclass(frozen=True)
class Rate:
    bits_per_second: int
    width: str   # "4X", "" when the kernel printed none
    speed: str   # "EDR", "" when the kernel printed none


def parse_rate(text: str) -> Rate:
    """``rate``: ``100 Gb/sec (4X EDR)``, ``2.5 Gb/sec (1X SDR)``, ``56 Gb/sec (4X FDR)``."""
    value = text.strip()
    match = _RATE.match(value)
    if not match:
        raise ValueError(f"holds {_show(value)}, not '<n> Gb/sec (<width> <speed>)'")
    gbits, width, speed = match.groups()
    whole, _, frac = gbits.partition(".")
    bits = int(whole) * 10**9 + (int(frac.ljust(9, "0")[:9]) if frac else 0)
    return Rate(bits, width or "", speed or "")


def parse_lid(text: str) -> int:
    """``lid``/``sm_lid``: hexadecimal with ``0x`` (``0x1a``); RoCE ports read ``0x0``."""
    value = text.strip()
    try:
        if not value.lower().startswith("0x"):
            raise ValueError
        lid = int(value, 16)
    except ValueError:
        raise ValueError(f"holds {_show(value)}, not a hexadecimal LID") from None
    if not 0 <= lid <= 0xFFFF:
        raise ValueError(f"holds {_show(value)}, outside the 16-bit LID range")
    return lid


_GUID = re.compile(r"^[0-9a-fA-F]{4}(:[0-9a-fA-F]{4}){3}$")


def parse_guid(text: str) -> str:
    """``node_guid``: four groups of four hex digits (``248a:0703:00b4:7a96``), lower-cased."""
    value = text.strip()
    if not _GUID.match(value):
        raise ValueError(f"holds {_show(value)}, not a GUID like 248a:0703:00b4:7a96")
    return value.lower()


def parse_text(text: str) -> str:
    """A one-line text attribute (``fw_ver``, ``board_id``, ``hca_type``, ``link_layer``)."""
    value = text.strip()
    if not value:
        raise ValueError("the file is empty")
    if not value.isprintable():
        raise ValueError(f"holds {_show(value)}, which is not printable text")
    return value


def _show(value: str, limit: int = 40) -> str:
    """Quote a bad value for an error message without flooding the log."""
    shown = value if len(value) <= limit else value[:limit] + "..."
    return repr(shown)
