"""The alarm agent on the demo node: a real pmie evaluates the pcp-hpc rules against the demo's agents.

The demo node is its own logger too (``make demo`` starts pmlogger, pmproxy and Redis), so
the logger's other service runs here as well: on PCP before 6.3.4, the series index
(``hpc-pcp logger series-index``), which makes the demo Slurm's new jobs found in every
per-job metric of the dashboards.

``prepare`` returns hpcalarm's settings (a state directory under the demo directory).
``advance`` (every demo tick) writes the rules for the agents pmcd answers for and keeps one
pmie running on them; the first tick after ``hpc-demo up`` starts it, once every agent
is installed.  ``teardown`` stops it.  One threshold is lowered so that the admin's path
starts with an alarm: the demo Slurm's held and begin-time jobs pend "too long" after 30 s.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time

from hpc_pcp.alarm import configure, installed_command, load_catalogue, render
from hpc_pcp.pcpenv import pcp_config

DELTA = "2 sec"
SERIES_STORE = "localhost:6379"      # the demo node's pmproxy store (scripts/setup-node.sh --logger)
# The demo's Slurm keeps held and begin-time jobs: with a 30 s limit they pend "too long", so an
# alarm fires and the dashboards have one to show.  The DTN testbed's links are shaped to
# 4 MiB/s per node (a thousandth of a real DTN), so the transfer floor is scaled down with them.
OVERRIDES = {"job.pending_too_long": {"max_seconds": 30},
             "dtn.throughput_low": {"min_mbytes_per_sec": 0.25}}


def _paths(directory: str) -> dict[str, str]:
    return {name: os.path.join(directory, name)
            for name in ("state", "hpc-demo.pmie", "pmie.pid", "pmie.log", "series-index.pid",
                         "series-index.log")}


def prepare(directory: str) -> dict:
    paths = _paths(directory)
    os.makedirs(paths["state"], exist_ok=True)
    for path in (directory, paths["state"]):   # pmcd's agents read it
        os.chmod(path, 0o755)
    return {"directory": paths["state"], "interval": 1}


def _command() -> list[str]:
    """How pmie's actions call the recorder: this installation's hpc-pcp by path."""
    return list(installed_command())


def _known(names: set[str]) -> set[str]:
    """The names among ``names`` that the local pmcd knows."""
    from pcp import pmapi  # the distro's bindings; imported only when the demo runs
    context = pmapi.pmContext()
    known = set()
    for name in names:
        with contextlib.suppress(pmapi.pmErr):
            context.pmLookupName(name)
            known.add(name)
    return known


def rules_text(state_dir: str) -> str:
    """The catalogue with the demo's thresholds, limited to rules whose metrics pmcd has."""
    rules, settings = configure(load_catalogue(), {
        "delta": DELTA, "state_dir": state_dir, "command": _command(), "rules": OVERRIDES})
    known = _known(set().union(*(r.metrics() for r in rules)))
    return render([r for r in rules if r.metrics() <= known], settings,
                  title="pcp-hpc alarm rules for the demo node")


def _pid(path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as f:
            pid = int(f.read().strip())
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            exited = f.read().rpartition(")")[2].split()[0] == "Z"
    except (OSError, ValueError, IndexError):
        return None
    if exited:                                   # our child that died: reap it
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        return None
    return pid


def _start_series_index(paths: dict[str, str]) -> None:
    """The logger's series index over the demo node's pmproxy store (PCP before 6.3.4 only)."""
    from hpc_pcp.logger import series_index_command, series_index_needed, spawn_series_index

    if _pid(paths["series-index.pid"]) or not series_index_needed():
        return
    spawn_series_index(series_index_command(SERIES_STORE, 10), paths["series-index.log"],
                       paths["series-index.pid"])


def advance(directory: str) -> None:
    paths = _paths(directory)
    _start_series_index(paths)
    if _pid(paths["pmie.pid"]):
        return
    text = rules_text(paths["state"])
    with open(paths["hpc-demo.pmie"], "w", encoding="utf-8") as f:
        f.write(text)
    pmie = shutil.which("pmie") or os.path.join(pcp_config("PCP_BIN_DIR") or "/usr/bin", "pmie")
    env = {**os.environ, "PMCD_RECONNECT_TIMEOUT": "1"}
    with open(paths["pmie.log"], "ab") as log:
        proc = subprocess.Popen([pmie, "-f", "-c", paths["hpc-demo.pmie"], "-l", paths["pmie.log"]],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                                start_new_session=True)
    with open(paths["pmie.pid"], "w", encoding="ascii") as f:
        f.write(str(proc.pid))


def teardown(directory: str) -> None:
    paths = _paths(directory)
    for pidfile in (paths["pmie.pid"], paths["series-index.pid"]):
        _stop(pidfile)


def _stop(pidfile: str) -> None:
    pid = _pid(pidfile)
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)       # the service and any action it is running
    deadline = time.monotonic() + 10
    while _pid(pidfile) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.1)
    with contextlib.suppress(OSError):
        os.unlink(pidfile)
