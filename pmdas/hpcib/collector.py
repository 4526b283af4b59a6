"""Sources and snapshot of the InfiniBand agent (sysfs only: no libibmad, no umad).

One source lists the RDMA devices; one source per CA reads that CA, so a hung or
vanished device shows in the health metrics by name while the others answer.
``build()`` chooses the best counter file per counter (64-bit first), converts
data words (or Omni-Path flits) to bytes, leaves out the files a driver fills with
a constant, flags saturated counters by the width the kernel reads them with,
notices counters that went backwards (reset, driver reload), keeps hw_counters
gauges apart from counters, and keeps node totals that grow only by increases seen
between two reads of the same port.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pmdas.common.agent import Agent
from pmdas.common.config import Option
from pmdas.common.sources import Results, Source, under

from . import metrics as table
from .counters import COUNTERS, EXTENDED_IN_COUNTERS, EXTENDED_TABLE_FILES, TOTALS
from .drivers import DriverQuirks, driver_of, is_gauge, quirks_of
from .parsers import Rate, effective_width, saturated
from .sysfs import CLASS_DIR, CaReading, PortReading, list_devices, read_ca

DEVICES_SOURCE = "devices"
# Forget remembered counter values of ports unseen for this many refreshes.
FORGET_AFTER_REFRESHES = 360

# sysfs counter name → the node totals it adds to.
_TOTALS_OF = {c.sysfs: tuple(t for t, members in TOTALS.items() if c.sysfs in members)
              for c in COUNTERS}


@dataclass(frozen=True, kw_only=True)
class CaView:
    name: str
    driver: str | None
    hca_type: str | None
    fw_ver: str | None
    board_id: str | None
    node_guid: str | None
    ports: int
    problems: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class PortView:
    ca: str
    port: str
    counters: Mapping[str, int | None]       # exported value (bytes for data counters)
    widths: Mapping[str, int]                # bits of each counter read
    saturated: tuple[str, ...]               # counters stuck at their maximum
    hw_counters: Mapping[str, int | None]    # event counters of hw_counters/
    hw_gauges: Mapping[str, int | None]      # levels of hw_counters/ (bnxt_re active_qps, ...)
    state: tuple[int, str] | None
    phys_state: tuple[int, str] | None
    rate: Rate | None
    link_layer: str | None
    lid: int | None
    sm_lid: int | None
    problems: tuple[str, ...]                # "<file>: <why>" for every unusable value
    resets: int                              # counter resets seen since the agent started

    @property
    def key(self) -> str:
        return f"{self.ca}:{self.port}"


@dataclass(frozen=True, kw_only=True)
class IbSnapshot:
    cas: Mapping[str, CaView] = field(default_factory=dict)
    ports: Mapping[str, PortView] = field(default_factory=dict)
    totals: Mapping[str, int] = field(default_factory=dict)


class InfinibandAgent(Agent):
    name = "hpcib"
    domain = 412
    root = "hpc.ib"
    options = {
        "hw_counters": Option(True, "Export the vendor hw_counters of every port (mlx5 "
                              "out_of_buffer, np_cnp_sent, ...).  Set false to keep the "
                              "number of instances small.", bool),
        "ignore_devices": Option([], "RDMA device names not to read (for example virtual "
                                 "functions passed to guests).", list),
    }
    metrics = table.METRICS
    indoms = table.INDOMS

    def __init__(self, config) -> None:
        super().__init__(config)
        self._previous: dict[tuple[str, str, str], int] = {}   # (port key, kind, counter) → value
        self._last_seen: dict[str, int] = {}                   # port key → refresh number
        self._resets: dict[str, int] = {}
        self._totals: dict[str, int] = {name: 0 for name in TOTALS}
        self._wide: set[tuple[str, str]] = set()   # (port key, counter) seen above 32 bits
        self._refresh = 0

    @property
    def class_dir(self) -> str:
        return under(self.config.root, CLASS_DIR)

    def sources(self) -> Sequence[Source]:
        class_dir = self.class_dir
        found = [Source(DEVICES_SOURCE, lambda: list_devices(class_dir), self.config.timeout)]
        try:
            names = list_devices(class_dir)
        except Exception:
            return found  # the devices source reports why
        ignored = {str(n) for n in self.config.ignore_devices}
        hw = bool(self.config.hw_counters)
        for name in names:
            if name not in ignored and name != DEVICES_SOURCE:
                found.append(Source(name, lambda n=name: read_ca(class_dir, n, hw),
                                    self.config.timeout))
        return found

    def build(self, results: Results) -> IbSnapshot:
        self._refresh += 1
        cas: dict[str, CaView] = {}
        ports: dict[str, PortView] = {}
        for name, result in results.items():
            if name == DEVICES_SOURCE or not result.ok:
                continue
            reading: CaReading = result.value
            cas[name] = _ca_view(reading)
            quirks = quirks_of(cas[name].driver)
            for port in reading.ports.values():
                view = self._port_view(port, quirks)
                ports[view.key] = view
        self._forget_stale()
        return IbSnapshot(cas=cas, ports=ports, totals=dict(self._totals))

    # -- per port ----------------------------------------------------------
    def _port_view(self, reading: PortReading, quirks: DriverQuirks) -> PortView:
        key = f"{reading.ca}:{reading.port}"
        self._last_seen[key] = self._refresh
        problems = {path: why for path, why in reading.problems.items()}
        counters: dict[str, int | None] = {}
        widths: dict[str, int] = {}
        stuck: list[str] = []
        extended = any(reading.has_file(f) for f in EXTENDED_TABLE_FILES)
        for spec in COUNTERS:
            chosen = next((f for f in spec.files if reading.has_file(f.path)), None)
            counter = spec.sysfs
            if chosen is None or counter in quirks.constant:
                continue  # this HCA or kernel does not have the counter, or its driver fakes it
            raw = reading.counters.get(chosen.path)
            if raw is None:
                counters[counter] = None  # the file exists but failed: the reason is in problems
                continue
            widths[counter] = self._width(key, counter, chosen.directory, chosen.width, raw,
                                          extended)
            if saturated(raw, widths[counter]):
                stuck.append(counter)
            scale = quirks.scale.get(counter, spec.scale)
            counters[counter] = self._track(key, "std", counter, raw * scale, problems,
                                            chosen.path)
        hw: dict[str, int | None] = {}
        gauges: dict[str, int | None] = {}
        for counter, value in reading.hw_counters.items():
            if is_gauge(counter):
                gauges[counter] = value   # a level: it may fall, which is no reset
            else:
                hw[counter] = self._track(key, "hw", counter, value, problems,
                                          f"hw_counters/{counter}")
        for counter in reading.problems:
            if counter.startswith("hw_counters/"):
                name = counter.split("/", 1)[1]
                (gauges if is_gauge(name) else hw)[name] = None
        attrs = reading.attributes
        return PortView(
            ca=reading.ca, port=reading.port, counters=counters, widths=widths,
            saturated=tuple(stuck), hw_counters=hw, hw_gauges=gauges,
            state=attrs.get("state"), phys_state=attrs.get("phys_state"), rate=attrs.get("rate"),
            link_layer=attrs.get("link_layer"), lid=attrs.get("lid"), sm_lid=attrs.get("sm_lid"),
            problems=tuple(f"{path}: {why}" for path, why in sorted(problems.items())),
            resets=self._resets.get(key, 0))

    def _width(self, port: str, counter: str, directory: str, nominal: int, raw: int,
               extended: bool) -> int:
        """The width the kernel reads a counter with, from the source, not the value.

        counters/ holds the 64-bit PortCountersExtended data and packet counters when
        the device reports extended width; the unicast/multicast files show the full
        extended table.  Without them (PortCounters, or the extended table without the
        IETF counters) only a value above the 32-bit range tells, and once seen it holds.
        """
        if directory == "counters" and counter in EXTENDED_IN_COUNTERS:
            if extended or (port, counter) in self._wide:
                return 64
            if effective_width(raw, nominal) == 64:
                self._wide.add((port, counter))
                return 64
        return effective_width(raw, nominal)

    def _track(self, port: str, kind: str, counter: str, value: int,
               problems: dict[str, str], relative: str) -> int | None:
        """Remember a counter; None when it went backwards (reset) so no client sees a fake wrap.

        Node totals grow by each counter's increase between two reads of the same
        port, counting from zero after a reset, so they never go backwards when a port
        resets or disappears.  A port's first read adds its whole count only at the
        agent's first refresh (the starting point of the totals); a port first read
        later (hot-added, its device failing at the first refresh, or returning after
        it was forgotten) adds nothing until its next read, so its lifetime count never
        shows up as traffic of one interval.
        """
        slot = (port, kind, counter)
        previous = self._previous.get(slot)
        self._previous[slot] = value
        if previous is None:
            increase, exported = (value if self._refresh == 1 else 0), value
        elif value < previous:
            self._resets[port] = self._resets.get(port, 0) + 1
            problems[relative] = (
                f"went backwards from {previous} to {value} (counter reset); "
                "unavailable for one refresh")
            increase, exported = value, None
        else:
            increase, exported = value - previous, value
        if kind == "std":
            for total in _TOTALS_OF[counter]:
                self._totals[total] += increase
        return exported

    def _forget_stale(self) -> None:
        stale = {p for p, seen in self._last_seen.items()
                 if self._refresh - seen > FORGET_AFTER_REFRESHES}
        if stale:
            self._previous = {s: v for s, v in self._previous.items() if s[0] not in stale}
            self._wide = {w for w in self._wide if w[0] not in stale}
            for port in stale:
                del self._last_seen[port]


def _ca_view(reading: CaReading) -> CaView:
    attrs = reading.attributes
    return CaView(name=reading.name, driver=driver_of(reading.name, reading.driver_link),
                  hca_type=attrs.get("hca_type"), fw_ver=attrs.get("fw_ver"),
                  board_id=attrs.get("board_id"), node_guid=attrs.get("node_guid"),
                  ports=len(reading.ports),
                  problems=tuple(f"{path}: {why}" for path, why in sorted(reading.problems.items())))
