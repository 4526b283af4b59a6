"""Making the running scripts match the registry, on a thread of its own.

Stopping a bpftrace takes a SIGINT and a wait while it detaches its probes and prints its
maps, up to ``Limits.stop_timeout`` before a SIGKILL, and then the readers drain.  pmcd
drops an agent that takes 5 s to answer a store, and a refresh whose source runs past its
timeout marks the agent down.  So a PCP store only checks and records the request (the
registry's files, and which scripts need a fresh start) and wakes this thread; every
refresh wakes it too (an admin may change the files by hand).  Here the scripts are
stopped (in parallel) and started, the outcome goes to the per-script status
(hpc.bpftrace.script.*) and to control.result, and a refresh is asked for so that it
is published at once.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from .registry import ScriptRegistry
from .runner import STOPPED, Runner, RunnerError

log = logging.getLogger(__name__)


class ScriptControl:
    """Applies the wanted script set to a ``Runner``; ``request()`` never waits for a script."""

    def __init__(self, registry: ScriptRegistry, runner: Runner, registry_lock: threading.Lock,
                 report: Callable[[str], None], on_change: Callable[[], None]):
        self._registry, self._runner = registry, runner
        self._registry_lock = registry_lock     # the store path changes the registry meanwhile
        self._report, self._on_change = report, on_change
        self._lock = threading.Lock()
        self._passed = threading.Condition(self._lock)
        self._requests = 0                      # requests made, and those a finished pass covered
        self._answered = 0
        self._fresh: set[str] = set()           # scripts to start afresh (added, re-enabled)
        self._outcomes: list[tuple[str, str]] = []   # (script, what to report once applied)
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    def request(self, script: str = "", fresh: bool = False, outcome: str = "") -> None:
        """Have the running set brought up to date soon; returns at once.

        ``fresh``: stop ``script`` first if it runs (its text changed, or an admin enables it
        again to retry it).  ``outcome``: what control.result says once this is applied.
        """
        with self._lock:
            self._requests += 1
            if fresh:
                self._fresh.add(script)
            if outcome:
                self._outcomes.append((script, outcome))
            if self._thread is None and not self._closed.is_set():
                self._runner.start_supervisor()
                self._thread = threading.Thread(target=self._loop, name="bpftrace-control",
                                                daemon=True)
                self._thread.start()
        self._wake.set()

    def settle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for the requests made so far to be applied (a refresh then
        shows scripts just started; it never waits long for one being stopped)."""
        with self._lock:
            target = self._requests
            return self._passed.wait_for(lambda: self._answered >= target or self._closed.is_set(),
                                         timeout)

    def close(self, timeout: float) -> None:
        """Stop the thread (after the pass it is in); the caller then shuts the runner down."""
        self._closed.set()
        self._wake.set()
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _loop(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._closed.is_set():
                return
            with self._lock:
                covered = self._requests
            try:
                changed = self.apply()
            except Exception:            # a bug here must not end live management
                log.exception("bpftrace scripts: bringing the running set up to date failed")
                changed = True
            with self._lock:
                self._answered = covered
                self._passed.notify_all()
            if changed:
                self._on_change()

    def apply(self) -> bool:
        """One pass: stop what is no longer wanted (or is to start afresh), start what is
        wanted and not running.  True when something changed or a request was answered."""
        with self._registry_lock:
            scripts = self._registry.scripts()
        with self._lock:
            fresh, self._fresh = self._fresh, set()
            outcomes, self._outcomes = self._outcomes, []
        wanted = {n: s for n, s in scripts.items() if s.enabled and s.runnable}
        running = self._runner.statuses()
        stopping = [n for n in running if n not in wanted or n in fresh]
        self._runner.stop_all(stopping)
        for name in stopping:
            if name not in scripts:
                self._runner.forget(name)
        problems: dict[str, str] = {}
        started = 0
        for name, script in wanted.items():
            status = running.get(name)
            if status is not None and name not in stopping and status.state != STOPPED:
                continue
            if self._closed.is_set():
                break
            try:
                self._runner.start(name, script.path, script.header.deltas)
                started += 1
            except RunnerError as exc:
                problems[name] = str(exc)
        if outcomes:
            self._report("; ".join(problems.get(name, outcome) for name, outcome in outcomes))
        return bool(stopping or started or outcomes)
