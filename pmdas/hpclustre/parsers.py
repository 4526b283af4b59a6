"""Pure parsers for Lustre's small text files (stats, rpc_stats, LNet, recovery, health).

No I/O and no PCP here: text in, plain data out.  Every parser skips lines it
cannot understand (truncated reads, garbage, a newer Lustre adding fields), so
one bad line costs only the values on that line.  job_stats, which is large and
must be fast, has its own module.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

# 2.10 printed "[regs]" (a typo of LPROCFS_TYPE_REQS) where later versions print "[reqs]",
# and "[usec]" for RPC times that later versions print as "[usecs]".
_UNIT_ALIASES = {"regs": "reqs", "usec": "usecs"}


@dataclass(frozen=True)
class StatCounter:
    """One line of a Lustre ``stats`` file.

    ``samples`` counts events (calls, RPCs); ``total`` is the sum column, whose
    meaning depends on ``unit``: bytes for ``[bytes]``, microseconds for
    ``[usecs]``.  Lines that carry only a count (``[reqs]``) have ``total`` None.
    """

    samples: int
    unit: str
    total: int | None = None


def parse_stats(text: str) -> dict[str, StatCounter]:
    """``name count samples [unit] min max sum [sumsq]`` lines → {name: StatCounter}.

    Header lines (``snapshot_time``, ``start_time``, ``elapsed_time``) have no
    ``samples`` word and are skipped, as is anything malformed.
    """
    out: dict[str, StatCounter] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 4 or parts[2] != "samples":
            continue
        unit = parts[3]
        if not (unit.startswith("[") and unit.endswith("]")):
            continue
        unit = unit[1:-1]
        unit = _UNIT_ALIASES.get(unit, unit)
        try:
            samples = int(parts[1])
            total = int(parts[6]) if len(parts) >= 7 else None
        except ValueError:
            continue
        if samples < 0 or (total is not None and total < 0):
            continue
        out[parts[0]] = StatCounter(samples, unit, total)
    return out


@dataclass(frozen=True)
class RpcStats:
    """An OSC/MDC ``rpc_stats`` file.

    ``header`` holds the single values above the histograms (``read RPCs in
    flight``, ``pending write pages``...).  ``histograms`` maps a section title
    (``pages per rpc``, ``rpcs in flight``, ``offset``) to {bucket: (read, write)}
    where the counts are cumulative RPC counts since the file was last cleared.
    """

    header: dict[str, int] = field(default_factory=dict)
    histograms: dict[str, dict[int, tuple[int, int]]] = field(default_factory=dict)


_HEADER = re.compile(r"^([A-Za-z][A-Za-z ]*?):\s+(\d+)\s*$")
_SECTION = re.compile(r"^(\S.*?)\s+rpcs\s+%\s+cum\s+%\s*\|")
_BUCKET = re.compile(r"^(\d+)[kKmM]?:\s+(\d+)\s+\d+\s+\d+\s*\|\s*(\d+)\s+\d+\s+\d+\s*$")


def parse_rpc_stats(text: str) -> RpcStats:
    """Parse rpc_stats; bucket lines outside a known section are ignored."""
    header: dict[str, int] = {}
    histograms: dict[str, dict[int, tuple[int, int]]] = {}
    section: dict[int, tuple[int, int]] | None = None
    for line in text.splitlines():
        if not line.strip():
            continue
        bucket = _BUCKET.match(line)
        if bucket:
            if section is not None:
                section[int(bucket.group(1))] = (int(bucket.group(2)), int(bucket.group(3)))
            continue
        title = _SECTION.match(line)
        if title:
            section = histograms.setdefault(title.group(1).strip().lower(), {})
            continue
        value = _HEADER.match(line)
        if value and section is None:
            header[value.group(1).strip()] = int(value.group(2))
    return RpcStats(header, histograms)


LNET_FIELDS = ("msgs_alloc", "msgs_max", "errors", "send_count", "recv_count", "route_count",
               "drop_count", "send_length", "recv_length", "route_length", "drop_length")


def parse_lnet_stats(text: str) -> dict[str, int]:
    """The single line of LNet ``stats``: eleven numbers in LNET_FIELDS order.

    Raises ValueError when the line is not eleven (or more, for future
    additions) non-negative integers: a partial LNet line is not trustworthy.
    """
    parts = text.split()
    if len(parts) < len(LNET_FIELDS):
        raise ValueError(f"expected {len(LNET_FIELDS)} numbers, found {len(parts)}")
    values = [int(p) for p in parts[:len(LNET_FIELDS)]]
    if any(v < 0 for v in values):
        raise ValueError("negative LNet counter")
    return dict(zip(LNET_FIELDS, values, strict=True))


# recovery_status "status:" values, as a number for alarms (pmie) and graphs.
RECOVERY_STATES = {"COMPLETE": 0, "INACTIVE": 1, "WAITING_FOR_CLIENTS": 2, "WAITING": 2,
                   "RECOVERING": 3}


@dataclass(frozen=True)
class Recovery:
    status: str
    connected_clients: int | None = None
    completed_clients: int | None = None
    total_clients: int | None = None
    time_remaining: int | None = None
    duration: int | None = None


def _fraction(value: str) -> tuple[int | None, int | None]:
    done, _, total = value.partition("/")
    try:
        return int(done), (int(total) if total else None)
    except ValueError:
        return None, None


def parse_recovery_status(text: str) -> Recovery | None:
    """``key: value`` lines; None when there is no ``status:`` line at all."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    status = fields.get("status", "").split()
    if not status:
        return None
    connected, total = _fraction(fields.get("connected_clients", ""))
    completed, total_done = _fraction(fields.get("completed_clients", ""))

    def number(key: str) -> int | None:
        try:
            return int(fields[key])
        except (KeyError, ValueError):
            return None

    return Recovery(status[0].upper(), connected, completed, total if total is not None else total_done,
                    number("time_remaining"), number("recovery_duration"))


def parse_health_check(text: str) -> bool | None:
    """``healthy`` → True; ``NOT HEALTHY`` (possibly after device lines) or ``LBUG`` → False."""
    upper = text.upper()
    if "NOT HEALTHY" in upper or "LBUG" in upper:
        return False
    if "HEALTHY" in upper:
        return True
    return None


def parse_number_file(text: str) -> int | None:
    """A single-number file (kbytesfree, filestotal...); None if it is not one."""
    try:
        value = int(text.strip())
    except ValueError:
        return None
    return value if value >= 0 else None
