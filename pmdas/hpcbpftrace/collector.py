"""The hpcbpftrace agent: runs enabled scripts and maps their maps to hpc.bpftrace.*.

Live management goes through PCP stores to hpc.bpftrace.control.* (so pmstore, a
Grafana panel or 'hpc-pcp bpftrace ...' all take the same checked path): only
authenticated users named in ``allowed_users`` may change scripts, and pmcd's own
access rules refuse stores from other hosts unless the admin opens them.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from pmdas.common.agent import Agent, StoreRefused
from pmdas.common.config import Option, positive
from pmdas.common.sources import Results, Source

from . import metrics as table
from .control import ScriptControl
from .datatable import EMPTY, DataTable, KindTable
from .header import parse_header
from .process import Limits
from .registry import ADMIN_DIR, CURATED_DIR, RegistryError, Script, ScriptRegistry
from .runner import Runner

log = logging.getLogger(__name__)

# Scripts on by default: those whose probes fire on rare events (a block I/O, a TCP
# retransmit or reset, an exec, an OOM kill, a CPU migration).  Probes on every system
# call (syscalls, rwbytes: +79% on a getppid loop), context switch or wakeup (cswitch;
# runqlat, even timing 1 wakeup in 8) or page fault (pagefaults) cost 2-6% of a busy
# job's CPU each (bench/bpftrace_overhead.py), and PCP's own proc agent has the per-process
# counts (context switches, faults, run-queue wait) for free, so admins turn them on for
# an investigation.
DEFAULT_ENABLED = ["biolatency", "migrations", "tcpretrans", "procexec", "oomkill"]


@dataclass(frozen=True)
class BpftraceSnapshot:
    scripts: dict[str, Script] = field(default_factory=dict)
    statuses: dict = field(default_factory=dict)
    data: dict[str, KindTable] = field(default_factory=lambda: dict(EMPTY))   # metric kind → table
    last_control: str = ""


class BpftraceAgent(Agent):
    name = "hpcbpftrace"
    domain = 413
    root = "hpc.bpftrace"
    options = {
        "script_dir": Option(ADMIN_DIR, "Directory of admin-added scripts (and their enabled state).", str),
        "curated_dir": Option(CURATED_DIR, "Directory of the curated scripts shipped with pcp-hpc.", str),
        "enabled": Option(DEFAULT_ENABLED, "Curated scripts enabled until an admin changes them.", list),
        "allowed_users": Option(["root"], "Users who may add, enable, disable or remove scripts "
                                "through PCP stores (authenticated local clients).", list),
        "max_scripts": Option(8, "Scripts that may run at once.", int, positive),
        "cpu_budget": Option(0.10, "CPU (fraction of one core) a script may use before it is stopped.",
                             (int, float), positive),
        "max_lines_per_sec": Option(2000.0, "Output lines per second before a script is stopped.",
                                    (int, float), positive),
        "max_keys": Option(4096, "Keys kept per map that a script clears after each print (exports "
                           "declared delta): the agent keeps their running totals, and adds the "
                           "counts of further keys to the key '[other]'.", int, positive),
        "bpftrace": Option("bpftrace", "The bpftrace program.", str),
    }
    metrics = table.METRICS
    indoms = table.INDOMS

    def __init__(self, config):
        super().__init__(config)
        self.registry = ScriptRegistry(config.curated_dir, config.script_dir,
                                       enabled_by_default=set(config.enabled))
        self.runner = Runner(Limits(max_scripts=config.max_scripts, cpu_budget=float(config.cpu_budget),
                                    max_lines_per_sec=float(config.max_lines_per_sec),
                                    max_keys=config.max_keys),
                             bpftrace=config.bpftrace)
        self._last_control = ""
        self._registry_lock = threading.Lock()    # stores (pmcd's thread), refreshes, the control thread
        self._control = ScriptControl(self.registry, self.runner, self._registry_lock,
                                      report=self._report, on_change=lambda: self.request_refresh())
        self._data = DataTable()     # instances kept between refreshes (the refresh thread's)

    def _report(self, text: str) -> None:
        self._last_control = text

    def sources(self):
        return [Source("scripts", self._read, self.config.timeout)]

    def _read(self) -> BpftraceSnapshot:
        self._control.request()       # starts and stops happen there, never here (control.py)
        self._control.settle(0.25)    # scripts just started show as starting, not stopped
        with self._registry_lock:
            scripts = self.registry.scripts()
        statuses = self.runner.statuses()
        data = self._data.update(scripts, self.runner.all_values())
        return BpftraceSnapshot(scripts, statuses, data, self._last_control)

    def build(self, results: Results) -> BpftraceSnapshot | None:
        snapshot = results.value("scripts")
        if snapshot is None:
            return None
        return BpftraceSnapshot(snapshot.scripts, snapshot.statuses, snapshot.data,
                                self._last_control)

    # -- live management (PCP stores, on pmcd's thread: check and record, never wait) ----
    def store(self, metric, instance, value, user):
        """Refuse a bad request at once; record a good one and return.  The control thread
        starts and stops scripts, then control.result says 'done' and script.* the outcome."""
        if not metric.startswith("control."):
            return super().store(metric, instance, value, user)
        if user is None or user not in self.config.allowed_users:
            self._last_control = (f"refused: user {user or '(unauthenticated)'} may not change "
                                  f"bpftrace scripts (allowed_users: {', '.join(self.config.allowed_users)})")
            raise StoreRefused(self._last_control, permission=True)
        action = metric.split(".", 1)[1]
        text = str(value)
        try:
            with self._registry_lock:
                if action == "add":
                    header = parse_header(text)
                    self.registry.add(header.name, text, enable=True)
                    target = header.name
                elif action in ("enable", "disable", "remove"):
                    target = text.strip()
                    getattr(self.registry, action)(target)
                else:
                    raise StoreRefused(f"unknown control {metric}")
        except (RegistryError, ValueError) as exc:
            self._last_control = f"{action} failed: {exc}"
            raise StoreRefused(self._last_control) from None
        self._last_control = f"{action} {target}: requested by {user}"
        # a replaced script restarts with its new text; an enabled failed/unsupported one is retried
        self._control.request(target, fresh=action in ("add", "enable"),
                              outcome=f"{action} {target}: done by {user}")

    def needs_root(self) -> str:
        return ("bpftrace loads BPF programs into the kernel and attaches them to kprobes and "
                "tracepoints, which takes root (CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN)")

    def close(self) -> None:
        self._control.close(self.runner.limits.stop_timeout + 10.0)
        self.runner.shutdown()
