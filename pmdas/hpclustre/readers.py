"""The agent's sources: read a node's Lustre files and parse them (no PCP, no state).

Each reader returns plain parsed data or raises SourceError with one sentence.
A device that vanishes between listing and reading (a filesystem unmounted
mid-refresh, a job entry expiring) is skipped, not reported as an error.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from pmdas.common.sources import SourceError, under

from . import paths
from .job_stats import JobCounters, parse_job_stats
from .parsers import (
    Recovery,
    RpcStats,
    StatCounter,
    parse_health_check,
    parse_lnet_stats,
    parse_number_file,
    parse_recovery_status,
    parse_rpc_stats,
    parse_stats,
)

CAPACITY_FILES = ("kbytestotal", "kbytesfree", "kbytesavail", "filestotal", "filesfree")


@dataclass(frozen=True)
class ClientDevice:
    """An OSC or MDC: one client's connection to one OST or MDT."""

    kind: str                       # "osc" or "mdc"
    filesystem: str
    target: str
    stats: dict[str, StatCounter] = field(default_factory=dict)
    rpc: RpcStats | None = None


@dataclass(frozen=True)
class ClientData:
    filesystems: dict[str, dict[str, StatCounter]]      # instance → llite stats
    devices: dict[str, ClientDevice]                    # instance → OSC/MDC
    version: tuple[int, int] | None = None              # Lustre (major, minor), if known


@dataclass(frozen=True)
class ServerTarget:
    kind: str                       # "ost" or "mdt"
    filesystem: str
    stats: dict[str, StatCounter] | None
    recovery: Recovery | None
    capacity: dict[str, int]
    version: tuple[int, int] | None = None     # Lustre (major, minor), if known


def _instance_names(found: dict[str, str]) -> dict[str, str]:
    """{directory name: short name}; short names (without the per-mount hex) unless two clash."""
    counts: dict[str, int] = {}
    for short in found.values():
        counts[short] = counts.get(short, 0) + 1
    return {full: (short if counts[short] == 1 else full) for full, short in found.items()}


def read_client(root: str) -> ClientData:
    """llite, OSC and MDC statistics of every mounted Lustre filesystem."""
    llite = paths.list_devices(root, "llite")
    state = paths.debugfs_state(root)
    if not llite and state != "mounted" and _sysfs_llite(root):
        if state == "unreadable":
            raise SourceError(paths.debugfs_unreadable(root))
        raise SourceError(paths.debugfs_missing(root, "Lustre client statistics (llite, osc, mdc)"))
    shorts = {}
    for name in llite:
        match = paths.LLITE.match(name)
        shorts[name] = match.group("fs") if match else name
    filesystems = {}
    for name, instance in _instance_names(shorts).items():
        text = paths.first_file(llite[name], "stats")
        if text is not None:
            filesystems[instance] = parse_stats(text)
    devices: dict[str, ClientDevice] = {}
    for kind in ("osc", "mdc"):
        listed = paths.list_devices(root, kind)
        shorts = {}
        parts = {}
        for name in listed:
            match = paths.CLIENT_DEVICE.match(name)
            if not match:
                continue     # e.g. the "num_refs" file next to the device directories
            parts[name] = (match.group("fs"), match.group("target"))
            client = match.group("client")
            hexid = len(client) == 16 and all(c in "0123456789abcdefABCDEF" for c in client)
            shorts[name] = match.group("target") if hexid else name
        for name, instance in _instance_names(shorts).items():
            stats_text = paths.first_file(listed[name], "stats")
            rpc_text = paths.first_file(listed[name], "rpc_stats")
            if stats_text is None and rpc_text is None:
                continue     # unmounted between the listing and the read
            devices[instance] = ClientDevice(
                kind, parts[name][0], parts[name][1],
                parse_stats(stats_text) if stats_text is not None else {},
                parse_rpc_stats(rpc_text) if rpc_text is not None else None)
    return ClientData(filesystems, devices, paths.lustre_version(root))


def _sysfs_llite(root: str) -> bool:
    try:
        return bool(os.listdir(under(root, paths.SYSFS_LLITE)))
    except OSError:
        return False


def server_targets(root: str) -> dict[str, tuple[str, str, list[str]]]:
    """{target: (kind, filesystem, its directories)} for local OSTs and MDTs."""
    out = {}
    for kind, base in (("ost", "obdfilter"), ("mdt", "mdt")):
        for name, directories in paths.list_devices(root, base).items():
            match = paths.SERVER_TARGET.match(name)
            if match and match.group("kind").lower() == kind:
                out[name] = (kind, match.group("fs"), directories)
    return out


def read_servers(root: str) -> dict[str, ServerTarget]:
    """Op counters, capacity and recovery state of every local OST and MDT."""
    out = {}
    version = paths.lustre_version(root)
    for name, (kind, filesystem, directories) in server_targets(root).items():
        stats_text = paths.first_file(directories, "stats" if kind == "ost" else "md_stats")
        recovery_text = paths.first_file(directories, "recovery_status")
        capacity = {}
        places = [*paths.osd_directories(root, name), *directories]
        for item in CAPACITY_FILES:
            text = paths.first_file(places, item)
            value = parse_number_file(text) if text is not None else None
            if value is not None:
                capacity[item] = value
        if stats_text is None and recovery_text is None and not capacity:
            continue     # the target went away while we looked
        out[name] = ServerTarget(
            kind, filesystem, parse_stats(stats_text) if stats_text is not None else None,
            parse_recovery_status(recovery_text) if recovery_text is not None else None, capacity,
            version)
    return out


@dataclass(frozen=True)
class TargetJobs:
    filesystem: str
    jobs: dict[str, JobCounters] | None    # None: job_stats missing (disabled / not supported)


def read_job_stats(root: str) -> dict[str, TargetJobs]:
    """Parsed job_stats of every local OST and MDT."""
    out = {}
    for name, (_kind, filesystem, directories) in server_targets(root).items():
        text = paths.first_file(directories, "job_stats")
        out[name] = TargetJobs(filesystem, parse_job_stats(text) if text is not None else None)
    return out


def read_lnet(root: str) -> dict[str, int]:
    """LNet's global message, byte and drop counters."""
    path = paths.first_existing(root, paths.LNET_STATS)
    if path is None:
        state = paths.debugfs_state(root)
        if state == "unreadable":
            raise SourceError(paths.debugfs_unreadable(root))
        if state == "missing" and not os.path.exists(under(root, "/proc/sys/lnet")):
            raise SourceError(paths.debugfs_missing(root, "LNet statistics"))
        raise SourceError(f"LNet statistics not found at {under(root, paths.LNET_STATS[0])} "
                          f"or {under(root, paths.LNET_STATS[1])}: is the lnet module loaded?")
    text = paths.read_optional(path)
    if text is None:
        raise SourceError(f"{path} disappeared while being read (LNet unloading?)")
    try:
        return parse_lnet_stats(text)
    except ValueError as exc:
        raise SourceError(f"{path} is not in the expected format ({exc})") from None


def read_health(root: str) -> bool:
    """Lustre's own health_check verdict."""
    path = paths.first_existing(root, paths.HEALTH_CHECK)
    if path is None:
        raise SourceError(f"no Lustre health_check file under {under(root, '/sys/fs/lustre')} "
                          f"or {under(root, '/proc/fs/lustre')}")
    verdict = parse_health_check(paths.read_optional(path) or "")
    if verdict is None:
        raise SourceError(f"{path} says neither 'healthy' nor 'NOT HEALTHY'")
    return verdict
