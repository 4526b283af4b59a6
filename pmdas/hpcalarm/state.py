"""The alarm state directory: what pmie's rule actions record and the hpcalarm agent reads.

pmie only runs commands; it keeps no state an agent could export.  So each rule
action (``hpc-pcp alarm fire`` / ``clear``) records the outcome of one evaluation
here, and the agent turns the directory into metrics.  Layout:

    <dir>/<rule>@<host>.json   every alarm of one rule on one host (firing or cleared)
    <dir>/firing/<rule>@<host> exists while at least one of those alarms is firing;
                               the generated clear actions test for it in sh, so a
                               rule that fires nowhere costs no Python start-up
    <dir>/.lock                serialises writers (flock); readers never lock

Files are replaced atomically and durably (temporary file, fsync, rename, fsync of the
directory), so the agent never sees half a file, nor an empty one after a crash.  pmie's
user writes this directory and the agent may read it as root: files are read only if they
are regular files of bounded size (no symlink followed, no FIFO waited on).  A fire call
carries the complete set of instances for which the rule is true on each host it names,
so instances missing from it are cleared.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace

from pmdas.common.durable import replace_file
from pmdas.common.untrusted import UntrustedFileError, read_text

SEVERITIES = ("info", "warning", "critical")
# Cleared alarms stay visible (firing 0, cleared time) for this long, then are dropped.
KEEP_CLEARED = 7 * 86400.0
_SAFE = re.compile(r"[^A-Za-z0-9._:+-]")
RULE_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")
MAX_STATE_READ = 4 * 1024 * 1024   # bytes of one rule@host file (thousands of instances)


def default_directory() -> str:
    """$HPC_PCP_ALARM_DIR, else $PCP_VAR_DIR/config/hpc/alarms (pmie runs as user pcp: it must own it)."""
    explicit = os.environ.get("HPC_PCP_ALARM_DIR")
    if explicit:
        return explicit
    return os.path.join(os.environ.get("PCP_VAR_DIR", "/var/lib/pcp"), "config", "hpc", "alarms")


@dataclass(frozen=True)
class Alarm:
    """One alarm: a rule being true (or having been true) for one instance on one host."""

    instance: str
    firing: bool
    since: float              # start of the current episode, or of the last one when cleared
    last_change: float        # last transition (fired or cleared)
    last_confirmed: float     # last evaluation that found it true
    cleared: float | None     # when the last episode ended; None while firing
    value: str                # pmie's %v at the last confirmation
    message: str
    firings: int              # episodes since the state file was created


@dataclass(frozen=True)
class RuleHost:
    """The contents of one state file: every alarm of ``rule`` on ``host``."""

    rule: str
    host: str
    severity: str
    alarms: Mapping[str, Alarm] = field(default_factory=dict)

    @property
    def firing(self) -> bool:
        return any(a.firing for a in self.alarms.values())


@dataclass(frozen=True)
class Transition:
    """An alarm that fired or cleared in one call (for syslog and the command's output)."""

    rule: str
    host: str
    instance: str
    severity: str
    fired: bool
    message: str


def file_stem(rule: str, host: str) -> str:
    """File name (without .json) of a rule/host pair; host names keep their usual characters."""
    return f"{rule}@{_SAFE.sub('_', host)}"


# -- pure (de)serialisation -------------------------------------------------------------
def parse_state(text: str) -> RuleHost:
    """One state file → RuleHost.  Raises ValueError for anything that is not a valid file;
    alarms with bad fields are skipped so one damaged entry hides nothing else."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc.msg}") from None
    except RecursionError:      # nesting deeper than Python's stack: pmie's user can write this
        raise ValueError("not JSON: nested too deeply") from None
    if not isinstance(raw, dict):
        raise ValueError("top level is not an object")
    rule, host, severity = raw.get("rule"), raw.get("host"), raw.get("severity", "warning")
    if not isinstance(rule, str) or not isinstance(host, str) or not rule or not host:
        raise ValueError("rule or host missing")
    if severity not in SEVERITIES:
        severity = "warning"
    alarms: dict[str, Alarm] = {}
    entries = raw.get("alarms")
    if not isinstance(entries, dict):
        raise ValueError("alarms is not an object")
    for instance, entry in entries.items():
        try:
            cleared = entry.get("cleared")
            alarms[str(instance)] = Alarm(
                instance=str(instance), firing=bool(entry["firing"]), since=float(entry["since"]),
                last_change=float(entry["last_change"]),
                last_confirmed=float(entry["last_confirmed"]),
                cleared=None if cleared is None else float(cleared),
                value=str(entry.get("value", "")), message=str(entry.get("message", "")),
                firings=max(0, int(entry.get("firings", 0))))
        except (AttributeError, KeyError, TypeError, ValueError, OverflowError):
            continue            # OverflowError: "firings": Infinity
    return RuleHost(rule, host, severity, alarms)


def format_state(state: RuleHost) -> str:
    alarms = {name: {k: v for k, v in asdict(a).items() if k != "instance"}
              for name, a in sorted(state.alarms.items())}
    return json.dumps({"rule": state.rule, "host": state.host, "severity": state.severity,
                       "alarms": alarms}, indent=1, sort_keys=True) + "\n"


def apply_fire(state: RuleHost, true_now: Mapping[str, tuple[str, str]], now: float,
               keep_cleared: float = KEEP_CLEARED) -> tuple[RuleHost, list[Transition]]:
    """The rule was evaluated on this host and is true exactly for ``true_now``
    ({instance: (value, message)}): fire those, clear the rest.  Pure."""
    alarms: dict[str, Alarm] = {}
    changes: list[Transition] = []
    for name, old in state.alarms.items():
        if name in true_now:
            continue
        if old.firing:
            old = replace(old, firing=False, cleared=now, last_change=now)
            changes.append(Transition(state.rule, state.host, name, state.severity, False, old.message))
        if old.firing or old.cleared is None or now - old.cleared <= keep_cleared:
            alarms[name] = old
    for name, (value, message) in true_now.items():
        old = state.alarms.get(name)
        if old is not None and old.firing:
            alarms[name] = replace(old, last_confirmed=now, value=value, message=message)
            continue
        firings = old.firings + 1 if old is not None else 1
        alarms[name] = Alarm(name, True, now, now, now, None, value, message, firings)
        changes.append(Transition(state.rule, state.host, name, state.severity, True, message))
    return replace(state, alarms=alarms), changes


# -- the directory ----------------------------------------------------------------------
class AlarmStore:
    """Read-modify-write of the state directory, one writer at a time."""

    def __init__(self, directory: str | None = None):
        self.directory = directory or default_directory()

    def _path(self, rule: str, host: str) -> str:
        return os.path.join(self.directory, file_stem(rule, host) + ".json")

    def _marker(self, rule: str, host: str) -> str:
        return os.path.join(self.directory, "firing", file_stem(rule, host))

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        os.makedirs(os.path.join(self.directory, "firing"), exist_ok=True)
        with open(os.path.join(self.directory, ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def load(self, rule: str, host: str, severity: str | None = None) -> RuleHost:
        """The saved state (``severity`` replaces the saved one when given)."""
        try:
            state = parse_state(read_text(self._path(rule, host), MAX_STATE_READ))
        except (UntrustedFileError, ValueError):
            # Missing, or damaged: rebuilt from now on.
            return RuleHost(rule, host, severity or "warning")
        return replace(state, severity=severity) if severity else state

    def _save(self, state: RuleHost) -> None:
        replace_file(self._path(state.rule, state.host), format_state(state))
        marker = self._marker(state.rule, state.host)
        if state.firing:
            with open(marker, "a"):
                pass
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(marker)

    def fire(self, rule: str, severity: str, true_now: Mapping[str, Mapping[str, tuple[str, str]]],
             now: float) -> list[Transition]:
        """Record one evaluation: ``true_now`` maps host → {instance: (value, message)}."""
        changes: list[Transition] = []
        with self._locked():
            for host, instances in true_now.items():
                state, moved = apply_fire(self.load(rule, host, severity), instances, now)
                self._save(state)
                changes.extend(moved)
        return changes

    def clear(self, rule: str, hosts: Iterable[str], now: float) -> list[Transition]:
        """The rule is false for every instance on ``hosts``."""
        changes: list[Transition] = []
        with self._locked():
            for host in hosts:
                if not os.path.exists(self._path(rule, host)):
                    continue  # never fired there: nothing to record
                state, moved = apply_fire(self.load(rule, host), {}, now)
                self._save(state)
                changes.extend(moved)
        return changes

    def read_all(self) -> tuple[list[RuleHost], list[str]]:
        """Every state file, plus one line per file that could not be used (for the agent)."""
        states: list[RuleHost] = []
        problems: list[str] = []
        for name in sorted(os.listdir(self.directory)):
            if not name.endswith(".json") or name.startswith("."):
                continue
            path = os.path.join(self.directory, name)
            try:
                states.append(parse_state(read_text(path, MAX_STATE_READ)))
            except UntrustedFileError as exc:
                problems.append(str(exc))
            except ValueError as exc:
                problems.append(f"{name}: {exc}")
        return states, problems

