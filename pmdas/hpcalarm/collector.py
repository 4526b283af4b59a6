"""Sources and snapshot of the alarm agent: the state directory written by the rule actions."""
from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from pmdas.common.agent import Agent
from pmdas.common.config import Option, positive
from pmdas.common.sources import Results, Source, SourceError

from . import metrics as table
from .state import AlarmStore, RuleHost, default_directory

STATE_SOURCE = "state"


@dataclass(frozen=True)
class AlarmView:
    rule: str
    host: str
    instance: str
    severity: str
    firing: bool
    since: float
    last_change: float
    last_confirmed: float
    cleared: float | None
    value: str
    message: str
    firings: int
    stale: bool


@dataclass(frozen=True)
class AlarmSnapshot:
    directory: str
    alarms: Mapping[str, AlarmView] = field(default_factory=dict)
    files: int = 0
    problems: tuple[str, ...] = ()


def alarm_key(rule: str, host: str, instance: str) -> str:
    """The exported instance name: rule:host:instance, or rule:host for rules without instances."""
    return f"{rule}:{host}:{instance}" if instance else f"{rule}:{host}"


def flatten(states: list[RuleHost], now: float, stale_after: float) -> dict[str, AlarmView]:
    out: dict[str, AlarmView] = {}
    for state in states:
        for name, a in state.alarms.items():
            out[alarm_key(state.rule, state.host, name)] = AlarmView(
                state.rule, state.host, name, state.severity, a.firing, a.since, a.last_change,
                a.last_confirmed, a.cleared, a.value, a.message, a.firings,
                a.firing and now - a.last_confirmed > stale_after)
    return out


class AlarmAgent(Agent):
    name = "hpcalarm"
    domain = 416
    root = "hpc.alarm"
    options = {
        "directory": Option("", "State directory the alarm actions write (empty: "
                            "$HPC_PCP_ALARM_DIR or $PCP_VAR_DIR/config/hpc/alarms).", str),
        "stale_after": Option(900.0, "Seconds after which a firing alarm that pmie has not "
                              "confirmed is flagged stale (use a few pmie intervals).",
                              (int, float), positive),
    }
    metrics = table.METRICS
    indoms = table.INDOMS

    def directory(self) -> str:
        return self.config.directory or default_directory()

    def sources(self):
        return [Source(STATE_SOURCE, self._read_state, self.config.timeout)]

    def _read_state(self) -> tuple[list[RuleHost], list[str]]:
        directory = self.directory()
        if not os.path.isdir(directory):
            raise SourceError(f"alarm state directory {directory} does not exist "
                              f"(no alarm has fired yet, or the rules write elsewhere)")
        try:
            return AlarmStore(directory).read_all()
        except PermissionError:
            raise SourceError(f"alarm state directory {directory} is not readable") from None

    def build(self, results: Results) -> AlarmSnapshot:
        states, problems = results.value(STATE_SOURCE, ([], []))
        return AlarmSnapshot(self.directory(),
                             flatten(states, time.time(), float(self.config.stale_after)),
                             len(states) + len(problems), tuple(problems))
