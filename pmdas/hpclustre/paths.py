"""Where Lustre keeps its files, for 2.10 (/proc) through 2.15 (/sys + debugfs).

Every lookup tries the known locations in order and takes the first that
exists, so one agent serves mixed versions.  All paths go below the agent's
root prefix (a fixture tree in tests, the demo tree on the demo node).
"""
from __future__ import annotations

import os
import re

from pmdas.common.sources import SourceError, under

DEBUGFS = "/sys/kernel/debug"

# Directories holding one subdirectory per device, newest layout first.
BASES = {
    "llite": ("/sys/kernel/debug/lustre/llite", "/proc/fs/lustre/llite"),
    "osc": ("/sys/kernel/debug/lustre/osc", "/proc/fs/lustre/osc", "/sys/fs/lustre/osc"),
    "mdc": ("/sys/kernel/debug/lustre/mdc", "/proc/fs/lustre/mdc", "/sys/fs/lustre/mdc"),
    "obdfilter": ("/proc/fs/lustre/obdfilter", "/sys/fs/lustre/obdfilter",
                  "/sys/kernel/debug/lustre/obdfilter"),
    "mdt": ("/proc/fs/lustre/mdt", "/sys/fs/lustre/mdt", "/sys/kernel/debug/lustre/mdt"),
}
# 2.12+ clients list their mounts here even when debugfs (with the stats) is missing.
SYSFS_LLITE = "/sys/fs/lustre/llite"
OSD_PARENTS = ("/sys/fs/lustre", "/proc/fs/lustre")
LNET_STATS = ("/sys/kernel/debug/lnet/stats", "/proc/sys/lnet/stats")
HEALTH_CHECK = ("/sys/fs/lustre/health_check", "/proc/fs/lustre/health_check")
LUSTRE_ROOTS = ("/sys/fs/lustre", "/proc/fs/lustre")
# "2.15.5" (sysfs, 2.10+); the /proc file of old releases says "lustre: 2.10.8" and more.
VERSION = ("/sys/fs/lustre/version", "/proc/fs/lustre/version")

SERVER_TARGET = re.compile(r"^(?P<fs>[\w.-]+?)-(?P<kind>OST|MDT)[0-9a-fA-F]{4}$")
CLIENT_DEVICE = re.compile(r"^(?P<target>(?P<fs>[\w.-]+?)-(?:OST|MDT)[0-9a-fA-F]{4})"
                           r"-(?:osc|mdc)-(?P<client>[\w.-]+)$")
LLITE = re.compile(r"^(?P<fs>[\w.-]+)-(?P<client>[0-9a-fA-F]{8,16})$")


def read_optional(path: str) -> str | None:
    """File text, or None if it vanished (unmounted mid-refresh) or is a directory.

    Permission problems are not hidden: they raise SourceError, because the
    fix (run as root) is the admin's.
    """
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    except PermissionError:
        raise SourceError(f"{path} is not readable (permission denied): run the agent as root") from None
    except OSError:
        return None   # ENODEV and friends: a device going away under us


def list_devices(root: str, kind: str) -> dict[str, list[str]]:
    """{device directory name: [its directories, in preference order]} over all bases."""
    found: dict[str, list[str]] = {}
    for base in BASES[kind]:
        directory = under(root, base)
        try:
            names = os.listdir(directory)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except PermissionError:
            if base.startswith(DEBUGFS):
                raise SourceError(debugfs_unreadable(root)) from None
            raise SourceError(f"{directory} is not readable (permission denied): "
                              f"run the agent as root") from None
        for name in names:
            found.setdefault(name, []).append(os.path.join(directory, name))
    return found


def first_file(directories: list[str], name: str) -> str | None:
    """Text of ``name`` from the first directory holding it, or None."""
    for directory in directories:
        text = read_optional(os.path.join(directory, name))
        if text is not None:
            return text
    return None


def osd_directories(root: str, target: str) -> list[str]:
    """The target's osd-<backend> directories (ldiskfs, zfs), where capacity lives."""
    out = []
    for parent in OSD_PARENTS:
        directory = under(root, parent)
        try:
            names = sorted(n for n in os.listdir(directory) if n.startswith("osd-"))
        except OSError:
            continue
        out.extend(os.path.join(directory, n, target) for n in names)
    return out


def first_existing(root: str, paths: tuple[str, ...]) -> str | None:
    for path in paths:
        full = under(root, path)
        if os.path.exists(full):
            return full
    return None


def lustre_version(root: str) -> tuple[int, int] | None:
    """(major, minor) of the loaded Lustre modules, or None when no version file says it."""
    for path in VERSION:
        text = read_optional(under(root, path))
        if text is not None:
            match = re.search(r"(\d+)\.(\d+)", text)
            if match:
                return int(match.group(1)), int(match.group(2))
    return None


def debugfs_state(root: str) -> str:
    """'mounted', 'missing' (not mounted: the directory is empty or absent) or 'unreadable'."""
    directory = under(root, DEBUGFS)
    try:
        return "mounted" if os.listdir(directory) else "missing"
    except FileNotFoundError:
        return "missing"
    except PermissionError:
        return "unreadable"
    except OSError:
        return "missing"


def debugfs_missing(root: str, what: str) -> str:
    return (f"debugfs is not mounted at {under(root, DEBUGFS)}, so {what} cannot be read "
            f"(Lustre 2.12 and later keep them there): mount it with "
            f"'mount -t debugfs none /sys/kernel/debug'")


def debugfs_unreadable(root: str) -> str:
    return (f"{under(root, DEBUGFS)} (debugfs) is not readable by this agent, so Lustre "
            f"statistics kept there cannot be read: run the agent as root")


def lustre_present(root: str) -> bool:
    return any(os.path.isdir(under(root, p)) for p in LUSTRE_ROOTS)


def has_devices(root: str, kinds: tuple[str, ...], extra: tuple[str, ...] = ()) -> bool:
    """Cheap presence test (no reads) used to decide which sources exist this refresh."""
    for kind in kinds:
        for base in BASES[kind]:
            try:
                if os.listdir(under(root, base)):
                    return True
            except OSError:
                continue
    for path in extra:
        try:
            if os.listdir(under(root, path)):
                return True
        except OSError:
            continue
    return False
