"""Reading one HCA's sysfs tree into plain data.

This is the only module that touches files.  It reads every attribute with one
``os.open``/``os.read`` (no buffered text layer: hundreds of tiny files per
refresh), parses it with the pure parsers, and keeps going when a single file
fails: the value is left out and the reason recorded, so one counter answering
EINVAL or ``N/A (no PMA)`` does not hide the rest of the port.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pmdas.common.sources import SourceError

from .parsers import (
    HW_COUNTER_SETTINGS,
    parse_counter,
    parse_guid,
    parse_lid,
    parse_rate,
    parse_state,
    parse_text,
)

CLASS_DIR = "/sys/class/infiniband"

# Per-CA attribute files; drivers differ (hfi1 has no hca_type), so absence is normal.
CA_ATTRIBUTES: dict[str, Callable[[str], Any]] = {
    "hca_type": parse_text, "fw_ver": parse_text, "board_id": parse_text, "node_guid": parse_guid,
}
# Per-port attribute files; every driver has these, so absence is reported.
PORT_ATTRIBUTES: dict[str, Callable[[str], Any]] = {
    "state": parse_state, "phys_state": parse_state, "rate": parse_rate,
    "link_layer": parse_text, "lid": parse_lid, "sm_lid": parse_lid,
}
COUNTER_DIRS = ("counters", "counters_ext")


@dataclass
class PortReading:
    """What one port's files said.  ``counters`` is keyed ``<dir>/<file>``."""

    ca: str
    port: str
    attributes: dict[str, Any] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    hw_counters: dict[str, int] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)   # relative path → why unusable

    def has_file(self, relative: str) -> bool:
        """Whether the file exists (read successfully or not)."""
        return relative in self.counters or relative in self.problems


@dataclass
class CaReading:
    name: str
    driver_link: str | None = None       # where <ca>/device/driver points, if anywhere
    attributes: dict[str, Any] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    ports: dict[str, PortReading] = field(default_factory=dict)


def read_attribute(path: str) -> str:
    """One sysfs attribute as text.  Module-level so tests can inject failures."""
    fd = os.open(path, os.O_RDONLY)
    try:
        data = os.read(fd, 8192)
    finally:
        os.close(fd)
    return data.decode("utf-8", "replace")


def read_driver_link(ca_dir: str) -> str | None:
    """The target of ``<ca>/device/driver`` (the bound kernel driver), None without one."""
    try:
        return os.readlink(os.path.join(ca_dir, "device", "driver"))
    except OSError:
        return None


def list_devices(class_dir: str) -> list[str]:
    """The CA names under /sys/class/infiniband; SourceError when there is no such class."""
    try:
        return sorted(n for n in os.listdir(class_dir) if not n.startswith("."))
    except FileNotFoundError:
        raise SourceError(f"{class_dir} does not exist: no RDMA devices (is the HCA driver loaded?)") \
            from None
    except NotADirectoryError:
        raise SourceError(f"{class_dir} is not a directory") from None
    except OSError as exc:
        raise SourceError(f"{class_dir} could not be listed: {exc.strerror}") from None


def read_ca(class_dir: str, name: str, hw_counters: bool = True) -> CaReading:
    """Read one CA and all its ports.  SourceError only when the CA itself is gone."""
    ca_dir = os.path.join(class_dir, name)
    reading = CaReading(name)
    for attr, parse in CA_ATTRIBUTES.items():
        _read_into(os.path.join(ca_dir, attr), attr, parse, reading.attributes, reading.problems,
                   missing_ok=True)
    reading.driver_link = read_driver_link(ca_dir)
    ports_dir = os.path.join(ca_dir, "ports")
    try:
        ports = sorted(_list(ports_dir), key=_port_order)
    except FileNotFoundError:
        if not os.path.isdir(ca_dir):
            raise SourceError(f"device {name} disappeared while being read") from None
        raise SourceError(f"device {name} has no ports directory ({ports_dir})") from None
    except OSError as exc:
        raise SourceError(f"the ports of device {name} could not be listed: {exc.strerror}") from None
    for port in ports:
        try:
            reading.ports[port] = read_port(os.path.join(ports_dir, port), name, port, hw_counters)
        except FileNotFoundError:
            reading.problems[f"ports/{port}"] = "the port disappeared while being read"
    return reading


def read_port(port_dir: str, ca: str, port: str, hw_counters: bool = True) -> PortReading:
    """Read one port's attributes and counters.  FileNotFoundError if the port vanished."""
    reading = PortReading(ca, port)
    if not os.path.isdir(port_dir):
        raise FileNotFoundError(port_dir)
    for attr, parse in PORT_ATTRIBUTES.items():
        _read_into(os.path.join(port_dir, attr), attr, parse, reading.attributes, reading.problems)
    for directory in COUNTER_DIRS:
        _read_counter_dir(port_dir, directory, reading.counters, reading.problems, prefix=True)
    if hw_counters:
        _read_counter_dir(port_dir, "hw_counters", reading.hw_counters, reading.problems,
                          prefix=False)
    return reading


def _read_counter_dir(port_dir: str, directory: str, into: dict[str, int],
                      problems: dict[str, str], prefix: bool) -> None:
    path = os.path.join(port_dir, directory)
    try:
        names = _list(path)
    except (FileNotFoundError, NotADirectoryError):
        if directory == "counters":
            # Kernels since 5.x omit it on devices without a performance management agent.
            problems[directory] = "does not exist (the device has no performance management agent)"
        return  # counters_ext and hw_counters exist on some HCAs only
    except OSError as exc:
        problems[directory] = f"could not be listed: {exc.strerror}"
        return
    for name in names:
        if directory == "hw_counters" and name in HW_COUNTER_SETTINGS:
            continue
        key = f"{directory}/{name}" if prefix else name
        try:
            into[key] = parse_counter(read_attribute(os.path.join(path, name)))
        except ValueError as exc:
            problems[f"{directory}/{name}"] = str(exc)
        except OSError as exc:
            problems[f"{directory}/{name}"] = _os_reason(exc)


def _read_into(path: str, key: str, parse: Callable[[str], Any], into: dict[str, Any],
               problems: dict[str, str], missing_ok: bool = False) -> None:
    try:
        into[key] = parse(read_attribute(path))
    except FileNotFoundError:
        if not missing_ok:
            problems[key] = "does not exist"
    except OSError as exc:
        problems[key] = _os_reason(exc)
    except ValueError as exc:
        problems[key] = str(exc)


def _os_reason(exc: OSError) -> str:
    return f"could not be read: {exc.strerror or type(exc).__name__}"


def _list(path: str) -> list[str]:
    return [n for n in os.listdir(path) if not n.startswith(".")]


def _port_order(name: str) -> tuple[int, str]:
    return (int(name), name) if name.isdecimal() else (1 << 30, name)
