"""Sources and snapshot of the InfiniBand agent (sysfs only: no libibmad, no umad).

One source lists the RDMA devices; one source per CA reads that CA, so a hung or
vanished device shows in the health metrics by name while the others answer.
``build()`` chooses the best counter file per counter (64-bit first), converts
data words to bytes, flags saturated counters, notices counters that went
backwards (reset, driver reload) and keeps node totals that never go backwards.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pmdas.common.agent import Agent
from pmdas.common.config import Option
from pmdas.common.sources import Results, Source, under

from . import metrics as table
from .counters import COUNTERS, TOTALS
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
    hw_counters: Mapping[str, int | None]
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
            for port in reading.ports.values():
                view = self._port_view(port)
                ports[view.key] = view
        self._forget_stale()
        return IbSnapshot(cas=cas, ports=ports, totals=dict(self._totals))

    # -- per port ----------------------------------------------------------
    def _port_view(self, reading: PortReading) -> PortView:
        key = f"{reading.ca}:{reading.port}"
        self._last_seen[key] = self._refresh
        problems = {path: why for path, why in reading.problems.items()}
        counters: dict[str, int | None] = {}
        widths: dict[str, int] = {}
        stuck: list[str] = []
        for spec in COUNTERS:
            chosen = next((f for f in spec.files if reading.has_file(f.path)), None)
            if chosen is None:
                continue  # this HCA or kernel does not have the counter
            counter = spec.sysfs
            raw = reading.counters.get(chosen.path)
            if raw is None:
                counters[counter] = None  # the file exists but failed: the reason is in problems
                continue
            widths[counter] = effective_width(raw, chosen.width)
            if saturated(raw, widths[counter]):
                stuck.append(counter)
            counters[counter] = self._track(key, "std", counter, raw * spec.scale, problems,
                                            chosen.path)
        hw: dict[str, int | None] = {}
        for counter, value in reading.hw_counters.items():
            hw[counter] = self._track(key, "hw", counter, value, problems,
                                      f"hw_counters/{counter}")
        for counter in reading.problems:
            if counter.startswith("hw_counters/"):
                hw[counter.split("/", 1)[1]] = None
        attrs = reading.attributes
        return PortView(
            ca=reading.ca, port=reading.port, counters=counters, widths=widths,
            saturated=tuple(stuck), hw_counters=hw,
            state=attrs.get("state"), phys_state=attrs.get("phys_state"), rate=attrs.get("rate"),
            link_layer=attrs.get("link_layer"), lid=attrs.get("lid"), sm_lid=attrs.get("sm_lid"),
            problems=tuple(f"{path}: {why}" for path, why in sorted(problems.items())),
            resets=self._resets.get(key, 0))

    def _track(self, port: str, kind: str, counter: str, value: int,
               problems: dict[str, str], relative: str) -> int | None:
        """Remember a counter; None when it went backwards (reset) so no client sees a fake wrap.

        Node totals grow by each counter's increase, counting from zero after a
        reset, so they never go backwards when a port resets or disappears.
        """
        slot = (port, kind, counter)
        previous = self._previous.get(slot)
        self._previous[slot] = value
        if previous is None:
            increase, exported = value, value
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
            for port in stale:
                del self._last_seen[port]


def _ca_view(reading: CaReading) -> CaView:
    attrs = reading.attributes
    return CaView(name=reading.name, hca_type=attrs.get("hca_type"), fw_ver=attrs.get("fw_ver"),
                  board_id=attrs.get("board_id"), node_guid=attrs.get("node_guid"),
                  ports=len(reading.ports),
                  problems=tuple(f"{path}: {why}" for path, why in sorted(reading.problems.items())))
