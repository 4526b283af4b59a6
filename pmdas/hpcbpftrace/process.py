"""One supervised bpftrace child per script, keeping its latest map values.

One ``ScriptProcess`` per script: bpftrace ``-f json`` started without a shell
in its own session, its stdout read line by line in a thread (output.parse_line),
its stderr kept (bounded) to explain an exit (diagnose.diagnose).  ``Runner``
holds them all, enforces the limits and is driven by ``tick()`` (from its own
supervisor thread, or from the agent's refresh).  Limits exist because a
tracing script on a compute node competes with the job it observes:
  * at most ``max_scripts`` scripts at a time;
  * output rate: more than ``max_lines_per_sec``/``max_bytes_per_sec`` over
    ``rate_window`` seconds stops the script with an error (no restart);
  * CPU: the bpftrace process plus its BPF programs (when kernel.bpf_stats_enabled
    is 1) above ``cpu_budget`` of one CPU over ``cpu_window`` stops it (no restart);
  * a script that exits or crashes is restarted after a back-off that doubles
    from ``backoff_initial`` up to ``backoff_max`` and resets after a run of
    ``stable_after`` seconds; unsupported or broken scripts are never restarted.
"""
from __future__ import annotations

import collections
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from . import diagnose as dx
from .output import Attached, HelperError, LostEvents, Text, Variable, parse_line, printed_variable
from .procstat import process_cost
from .totals import Totals, is_full, map_keys_max

log = logging.getLogger(__name__)

STARTING, RUNNING, STOPPED, FAILED, UNSUPPORTED, RESTARTING = (
    "starting", "running", "stopped", "failed", "unsupported", "restarting")
STATES = (STARTING, RUNNING, STOPPED, FAILED, UNSUPPORTED, RESTARTING)
ACTIVE = (STARTING, RUNNING, RESTARTING)


class RunnerError(Exception):
    """A request the runner refuses (limit reached, unknown script); one sentence."""


@dataclass(frozen=True)
class Limits:
    max_scripts: int = 8
    max_lines_per_sec: float = 2000.0
    max_bytes_per_sec: float = 2_000_000.0
    rate_window: float = 5.0
    cpu_budget: float = 0.10          # fraction of one CPU
    cpu_window: float = 30.0
    backoff_initial: float = 2.0
    backoff_max: float = 300.0
    stable_after: float = 60.0
    restart_window: float = 600.0     # recent_restarts counts restarts this far back
    stop_timeout: float = 5.0
    max_line_bytes: int = 4 << 20
    max_stderr_bytes: int = 16 << 10
    keep_text_lines: int = 50
    max_keys: int = 4096              # keys kept per delta variable's totals (totals.py)


@dataclass(frozen=True)
class ScriptStatus:
    """Everything the agent publishes about one script (hpc.bpftrace.script.*)."""

    name: str
    state: str
    pid: int = 0
    error: str = ""
    probes: int = 0
    lines: int = 0                 # output lines since the script was first started
    bytes: int = 0
    unparsed_lines: int = 0
    lines_per_sec: float = 0.0     # over the last complete rate window
    bytes_per_sec: float = 0.0
    lost_events: int = 0
    helper_errors: int = 0
    cpu_seconds: float = 0.0       # bpftrace process, summed over all runs
    bpf_seconds: float = 0.0       # its BPF programs (needs kernel.bpf_stats_enabled)
    bpf_events: int = 0            # probe firings (needs kernel.bpf_stats_enabled)
    cpu_fraction: float = 0.0      # over the last cpu window, of one CPU
    restarts: int = 0
    recent_restarts: int = 0       # restarts within the last Limits.restart_window seconds
    started: float = 0.0           # wall-clock start of the current run
    next_restart: float = 0.0      # wall-clock time of the next restart, when restarting
    full_map_prints: int = 0       # prints of a map at bpftrace's key limit (totals.is_full)


class ScriptProcess:
    """One script's bpftrace child, its output reader and its state machine."""

    def __init__(self, name: str, path: str, limits: Limits, bpftrace: str = "bpftrace",
                 env: Mapping[str, str] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.name, self.path, self.limits = name, path, limits
        self._argv = [bpftrace, "-f", "json", path]
        self._env = None if env is None else {**os.environ, **env}
        self._clock = clock
        self._restart_times: collections.deque[float] = collections.deque()
        self._lock = threading.RLock()
        self._proc: subprocess.Popen | None = None
        self._threads: list[threading.Thread] = []
        self._stderr = bytearray()
        self._values: dict[str, Variable] = {}
        self._undecoded: dict[str, bytes] = {}    # variable → its latest print, not decoded yet
        self.deltas: frozenset[str] = frozenset()     # variables cleared after each print
        self._totals = Totals(limits.max_keys)    # their sums, across runs
        self._map_keys_max = map_keys_max(self._env)
        self.texts: collections.deque[Text] = collections.deque(maxlen=limits.keep_text_lines)
        self._status = ScriptStatus(name, STOPPED)
        self._run_started = 0.0
        self._failures_in_row = 0
        self._restart_at = 0.0
        self._cost_base = (0.0, 0.0, 0)           # cost of earlier runs
        self._cost_run = (0.0, 0.0, 0)            # cost of this run so far
        self._cpu_samples: collections.deque[tuple[float, float]] = collections.deque()
        self._window = [0.0, 0, 0]                # start, lines, bytes
        self._stop_reason: tuple[str, str] | None = None

    # -- public -------------------------------------------------------------
    def status(self) -> ScriptStatus:
        with self._lock:
            horizon = self._clock() - self.limits.restart_window
            while self._restart_times and self._restart_times[0] < horizon:
                self._restart_times.popleft()
            return replace(self._status, recent_restarts=len(self._restart_times))

    def values(self) -> dict[str, Variable]:
        """The latest printed value of every map, by variable name ('@x').

        Prints are decoded here, only the latest of each variable (see
        output.printed_variable); one that does not decode leaves the variable's
        earlier value and counts as an unparsed line.  A delta variable's value is
        the sum of all its prints (added up as they come, see totals.py).
        """
        with self._lock:
            if self._undecoded:
                undecoded, self._undecoded = self._undecoded, {}
                failed = full = 0
                for raw in undecoded.values():
                    event = parse_line(raw)
                    if isinstance(event, Variable):
                        self._values[event.name] = event
                        full += is_full(event, self._map_keys_max)
                    else:
                        failed += 1
                if failed or full:
                    s = self._status
                    self._status = replace(s, unparsed_lines=s.unparsed_lines + failed,
                                           full_map_prints=s.full_map_prints + full)
            return dict(self._values)

    def declare(self, deltas: frozenset[str]) -> None:
        """The variables the script clears after each print (header.deltas), for its next start."""
        with self._lock:
            for variable in deltas ^ self.deltas:           # a value of the other kind is no use
                self._values.pop(variable, None)
                self._undecoded.pop(variable, None)
            self.deltas = deltas
            self._totals.keep_only(deltas)

    def start(self) -> None:
        with self._lock:
            if self._status.state in (STARTING, RUNNING):
                return
            self._failures_in_row = 0
            self._status = replace(self._status, restarts=0, error="")
            self._spawn()

    def refuse(self, reason: str) -> None:
        """Not started (a limit): keep it stopped, with the reason as its error."""
        with self._lock:
            if self._proc is None and self._status.state not in (STARTING, RUNNING, RESTARTING):
                self._status = replace(self._status, state=STOPPED, error=reason, next_restart=0.0)

    def stop(self, state: str = STOPPED, error: str = "") -> None:
        """Stop the child (SIGINT, then SIGKILL after stop_timeout) and set ``state``."""
        with self._lock:
            self._stop_reason = (state, error)
            proc = self._proc
            if proc is None:
                self._status = replace(self._status, state=state, error=error, pid=0,
                                       next_restart=0.0)
                return
        self._terminate(proc)
        self._reap()

    def poll(self) -> None:
        """Notice an exit, restart when due, account CPU and enforce the budget."""
        with self._lock:
            state = self._status.state
            if state == RESTARTING and self._clock() >= self._restart_at:
                self._spawn()
                return
            proc = self._proc
        if proc is None:
            return
        if proc.poll() is not None:
            self._reap()
            return
        self._account_cpu(proc.pid)

    # -- child lifecycle ----------------------------------------------------
    def _spawn(self) -> None:
        self._stderr = bytearray()
        self._stop_reason = None
        self._cpu_samples.clear()
        self._cost_run = (0.0, 0.0, 0)
        now = self._clock()
        self._window = [now, 0, 0]
        try:
            proc = subprocess.Popen(self._argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env=self._env, start_new_session=True)
        except OSError as exc:
            self._proc = None
            self._status = replace(self._status, state=FAILED, pid=0,
                                   error=f"cannot run {self._argv[0]}: {exc.strerror or exc}")
            return
        self._proc = proc
        self._run_started = now
        self._status = replace(self._status, state=STARTING, pid=proc.pid, probes=0,
                               started=time.time(), next_restart=0.0, cpu_fraction=0.0)
        self._threads = [
            threading.Thread(target=self._read_stdout, args=(proc,), daemon=True,
                             name=f"bpftrace-{self.name}-out"),
            threading.Thread(target=self._read_stderr, args=(proc,), daemon=True,
                             name=f"bpftrace-{self.name}-err"),
        ]
        for t in self._threads:
            t.start()

    def _terminate(self, proc: subprocess.Popen) -> None:
        if proc.poll() is not None:
            return
        try:
            proc.send_signal(signal.SIGINT)     # bpftrace detaches its probes cleanly
            proc.wait(self.limits.stop_timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        except OSError:
            pass

    def _reap(self) -> None:
        """The child has exited (or is being stopped): decide the next state.

        Waiting and joining the readers happen outside the lock: the readers
        take it for every line and must drain the last lines (the exit dump).
        """
        with self._lock:
            proc, threads = self._proc, list(self._threads)
        if proc is None:
            return
        try:
            returncode = proc.wait(self.limits.stop_timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            returncode = proc.wait()
        for t in threads:
            t.join(5.0)
        with self._lock:
            if self._proc is not proc:
                return                               # reaped by another caller
            self._proc = None
            cpu, bpf, events = self._cost_run
            b_cpu, b_bpf, b_events = self._cost_base
            self._cost_base = (b_cpu + cpu, b_bpf + bpf, b_events + events)
            self._cost_run = (0.0, 0.0, 0)
            status = replace(self._status, pid=0, cpu_seconds=self._cost_base[0],
                             bpf_seconds=self._cost_base[1], bpf_events=self._cost_base[2])
            if self._stop_reason is not None:
                state, error = self._stop_reason
                self._status = replace(status, state=state, error=error, next_restart=0.0)
                return
            found = dx.diagnose(self._stderr.decode("utf-8", "replace"), returncode)
            if found.outcome == dx.UNSUPPORTED:
                self._status = replace(status, state=UNSUPPORTED, error=found.reason)
            elif found.outcome == dx.BROKEN:
                self._status = replace(status, state=FAILED, error=found.reason)
            else:
                self._schedule_restart(status, found.reason)
            log.warning("bpftrace script %s: %s", self.name, self._status.error)

    def _schedule_restart(self, status: ScriptStatus, reason: str) -> None:
        now = self._clock()
        if now - self._run_started >= self.limits.stable_after:
            self._failures_in_row = 0
        delay = min(self.limits.backoff_max,
                    self.limits.backoff_initial * (2 ** self._failures_in_row))
        self._failures_in_row += 1
        self._restart_at = now + delay
        self._restart_times.append(now)
        self._status = replace(status, state=RESTARTING, restarts=status.restarts + 1,
                               error=f"{reason}; restarting in {delay:g} s",
                               next_restart=time.time() + delay)

    def _stop_for_limit(self, proc: subprocess.Popen, error: str) -> None:
        """Called from a reader or poll: stop this run as FAILED without restarting."""
        with self._lock:
            if self._proc is not proc or self._stop_reason is not None:
                return
            self._stop_reason = (FAILED, error)
        log.warning("bpftrace script %s: %s", self.name, error)
        threading.Thread(target=self.stop, args=(FAILED, error), daemon=True,
                         name=f"bpftrace-{self.name}-stop").start()

    # -- readers ------------------------------------------------------------
    def _read_stdout(self, proc: subprocess.Popen) -> None:
        stream = proc.stdout
        limits = self.limits
        truncated = False
        for raw in iter(lambda: stream.readline(limits.max_line_bytes), b""):
            whole = raw.endswith(b"\n")
            self._take_line(proc, raw, whole and not truncated)
            truncated = not whole                    # skip the rest of an over-long line
        stream.close()

    def _take_line(self, proc: subprocess.Popen | None, raw: bytes, complete: bool = True) -> None:
        """One line of output: a map print is kept undecoded (see values()), the rest parsed now."""
        if not complete:
            self._count_output(proc, len(raw), None)
            return
        variable = printed_variable(raw)
        if variable is None or variable in self.deltas:     # every print of a delta counts
            self._count_output(proc, len(raw), parse_line(raw))
        else:
            self._count_output(proc, len(raw), (variable, raw))

    def _count_output(self, proc: subprocess.Popen | None, size: int, event: object) -> None:
        now = self._clock()
        with self._lock:
            s = self._status
            changes: dict = {"lines": s.lines + 1, "bytes": s.bytes + size}
            if isinstance(event, tuple):             # (variable, undecoded print)
                self._undecoded[event[0]] = event[1]
            elif isinstance(event, Variable) and event.name in self.deltas:
                totals = self._totals.add(event)
                if totals is None:
                    changes["unparsed_lines"] = s.unparsed_lines + 1
                else:
                    self._values[event.name] = totals
                if is_full(event, self._map_keys_max):
                    changes["full_map_prints"] = s.full_map_prints + 1
            elif isinstance(event, Variable):
                self._values[event.name] = event
                self._undecoded.pop(event.name, None)
            elif isinstance(event, Attached):
                changes.update(probes=event.probes, state=RUNNING)
            elif isinstance(event, Text):
                self.texts.append(event)
            elif isinstance(event, LostEvents):
                changes["lost_events"] = s.lost_events + event.events
            elif isinstance(event, HelperError):
                changes["helper_errors"] = s.helper_errors + 1
            elif event is None and size > 1:
                changes["unparsed_lines"] = s.unparsed_lines + 1
            if s.state != STARTING or "state" not in changes:
                changes.pop("state", None)
            self._status = replace(s, **changes)
            window = self._window
            window[1] += 1
            window[2] += size
            elapsed = now - window[0]
            span = self.limits.rate_window
            over = (window[1] > self.limits.max_lines_per_sec * span
                    or window[2] > self.limits.max_bytes_per_sec * span)
            if elapsed >= span or over:
                rate_l, rate_b = window[1] / max(elapsed, 1e-3), window[2] / max(elapsed, 1e-3)
                if elapsed >= span:
                    self._status = replace(self._status, lines_per_sec=rate_l, bytes_per_sec=rate_b)
                    self._window = [now, 0, 0]
        if over:
            self._stop_for_limit(proc, (
                f"stopped: output of {window[1]} lines ({window[2]} bytes) in {elapsed:.1f} s "
                f"exceeds the limit of {self.limits.max_lines_per_sec:g} lines/s or "
                f"{self.limits.max_bytes_per_sec:g} bytes/s"))

    def _read_stderr(self, proc: subprocess.Popen) -> None:
        cap = self.limits.max_stderr_bytes
        for raw in iter(lambda: proc.stderr.readline(cap), b""):
            with self._lock:
                self._stderr += raw
                if len(self._stderr) > cap:          # keep the end: the fatal error is last
                    del self._stderr[:len(self._stderr) - cap]
        proc.stderr.close()

    # -- CPU budget -----------------------------------------------------------
    def _account_cpu(self, pid: int) -> None:
        cost = process_cost(pid)
        if cost is None:
            return
        now = self._clock()
        with self._lock:
            if self._proc is None or self._proc.pid != pid:
                return
            self._cost_run = (cost.cpu_seconds, cost.bpf_seconds, cost.bpf_events)
            base = self._cost_base
            spent = cost.cpu_seconds + cost.bpf_seconds
            status = replace(self._status, cpu_seconds=base[0] + cost.cpu_seconds,
                             bpf_seconds=base[1] + cost.bpf_seconds,
                             bpf_events=base[2] + cost.bpf_events)
            if status.state != RUNNING:              # compiling is not charged to the budget
                self._status = status
                self._cpu_samples.clear()
                return
            samples = self._cpu_samples
            samples.append((now, spent))
            while len(samples) > 2 and now - samples[1][0] >= self.limits.cpu_window:
                samples.popleft()
            t0, c0 = samples[0]
            elapsed = now - t0
            fraction = (spent - c0) / elapsed if elapsed > 0 else 0.0
            self._status = replace(status, cpu_fraction=fraction)
            proc = self._proc
        if elapsed >= self.limits.cpu_window and fraction > self.limits.cpu_budget:
            self._stop_for_limit(proc, (
                f"stopped: used {fraction:.1%} of a CPU over {elapsed:.0f} s, over its "
                f"budget of {self.limits.cpu_budget:.1%}"))
