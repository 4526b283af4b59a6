"""The set of running scripts: start/stop by name, limits, one supervisor tick.

The agent owns one ``Runner``.  ``sync(registry)`` makes the running set match
the enabled scripts; ``tick()`` (every second from ``start_supervisor()``, or
from the agent's refresh) notices exits, restarts after back-off and enforces
the CPU budget.  ``statuses()`` and ``values()`` are cheap copies for the
refresh thread to turn into metrics.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Mapping

from .output import Variable
from .process import (
    ACTIVE,
    FAILED,
    RESTARTING,
    RUNNING,
    STARTING,
    STATES,
    STOPPED,
    UNSUPPORTED,
    Limits,
    RunnerError,
    ScriptProcess,
    ScriptStatus,
)
from .registry import Script, ScriptRegistry

__all__ = ["Runner", "RunnerError", "Limits", "ScriptStatus", "STATES", "STARTING", "RUNNING",
           "STOPPED", "FAILED", "UNSUPPORTED", "RESTARTING"]

log = logging.getLogger(__name__)


class Runner:
    def __init__(self, limits: Limits = Limits(), bpftrace: str = "bpftrace",
                 env: Mapping[str, str] | None = None):
        self.limits = limits
        self.bpftrace = bpftrace
        self.env = env
        self._lock = threading.Lock()
        self._scripts: dict[str, ScriptProcess] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- per script -------------------------------------------------------------
    def start(self, name: str, path: str, deltas: Collection[str] = ()) -> ScriptStatus:
        """Start (or restart now) a script; RunnerError when the script cap is reached.

        ``deltas``: the variables it clears after each print (Header.deltas), whose prints
        are added up (totals.py)."""
        with self._lock:
            process = self._scripts.get(name)
            active = sum(1 for n, p in self._scripts.items()
                         if n != name and p.status().state in ACTIVE)
            replaced = process if process is not None and process.path != path else None
            if process is None or replaced is not None:
                process = ScriptProcess(name, path, self.limits, self.bpftrace, self.env)
                self._scripts[name] = process
            refused = (f"cannot start bpftrace script {name}: {active} scripts are already "
                       f"running (limit {self.limits.max_scripts})"
                       if active >= self.limits.max_scripts else "")
        if replaced is not None:
            replaced.stop()           # outside the lock: it may take stop_timeout
        if refused:
            process.refuse(refused)   # its script.error until it starts
            raise RunnerError(refused)
        process.declare(frozenset(deltas))
        process.start()
        return process.status()

    def stop(self, name: str) -> ScriptStatus:
        process = self._get(name)
        process.stop()
        return process.status()

    def stop_all(self, names: Collection[str]) -> None:
        """Stop several scripts at once: one slow to exit does not hold the others up."""
        with self._lock:
            processes = [self._scripts[n] for n in names if n in self._scripts]
        if len(processes) == 1:
            processes[0].stop()
            return
        threads = [threading.Thread(target=p.stop, daemon=True, name=f"bpftrace-{p.name}-stop")
                   for p in processes]
        for t in threads:
            t.start()
        for t in threads:
            t.join(self.limits.stop_timeout + 5.0)

    def restart(self, name: str) -> ScriptStatus:
        """Stop and start again now (after its file changed, or to retry a failed script)."""
        process = self._get(name)
        process.stop()
        return self.start(name, process.path, process.deltas)

    def forget(self, name: str) -> None:
        """Stop a script and drop it (and its values) from the tables."""
        with self._lock:
            process = self._scripts.pop(name, None)
        if process is not None:
            process.stop()

    def _get(self, name: str) -> ScriptProcess:
        with self._lock:
            process = self._scripts.get(name)
        if process is None:
            raise RunnerError(f"bpftrace script {name} is not known to the runner")
        return process

    # -- views for the agent ------------------------------------------------------
    def statuses(self) -> dict[str, ScriptStatus]:
        with self._lock:
            processes = dict(self._scripts)
        return {name: p.status() for name, p in processes.items()}

    def values(self, name: str) -> dict[str, Variable]:
        """Latest value of each map of one script, by variable ('@x')."""
        return self._get(name).values()

    def all_values(self) -> dict[str, dict[str, Variable]]:
        with self._lock:
            processes = dict(self._scripts)
        return {name: p.values() for name, p in processes.items()}

    def texts(self, name: str) -> list:
        """The last printf/time/cat lines of a script (output.Text), oldest first."""
        return list(self._get(name).texts)

    # -- whole set ----------------------------------------------------------------
    def sync(self, registry: ScriptRegistry) -> dict[str, str]:
        """Run exactly the enabled, runnable scripts; return {name: problem} for refusals.

        Scripts already unsupported or failed stay so until started explicitly,
        so that a sync every refresh does not turn into a restart loop.
        """
        problems: dict[str, str] = {}
        wanted: dict[str, Script] = {s.name: s for s in registry.enabled()}
        for name in set(self.statuses()) - set(wanted):
            self.forget(name)
        for name, script in sorted(wanted.items()):
            if not script.runnable:
                problems[name] = script.error
                continue
            current = self.statuses().get(name)
            if current is not None and current.state != STOPPED \
                    and self._get(name).path == script.path:
                continue
            try:
                self.start(name, script.path, script.header.deltas)
            except RunnerError as exc:
                problems[name] = str(exc)
        return problems

    def tick(self) -> None:
        with self._lock:
            processes = list(self._scripts.values())
        for process in processes:
            try:
                process.poll()
            except Exception:        # one script's trouble must not stop the others
                log.exception("bpftrace script %s: supervision failed", process.name)

    def start_supervisor(self, interval: float = 1.0) -> None:
        def loop() -> None:
            while not self._stop.wait(interval):
                self.tick()
        self._stop.clear()
        self._thread = threading.Thread(target=loop, name="bpftrace-supervisor", daemon=True)
        self._thread.start()

    def shutdown(self) -> None:
        """Stop the supervisor and every script (probes are detached by bpftrace)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
        self.stop_all(list(self.statuses()))
