"""Tier-2 harness: install an agent into the real local pmcd, query it, clean up.

Tests that use these fixtures need root and a running pmcd (scripts/setup-node.sh
starts one).  They fail, not skip, when pmcd is absent: CI must prove them.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from hpc_pcp import install as installer

PCP_PATH = "/usr/bin:/bin:/usr/sbin:/sbin:/usr/lib/pcp/bin"


def pcp_env() -> dict[str, str]:
    return {**os.environ, "PATH": PCP_PATH + ":" + os.environ.get("PATH", "")}


def run_pcp(*argv: str, timeout: float = 30) -> subprocess.CompletedProcess:
    """Run a PCP tool (pminfo, pmval, ...) and return the completed process (text)."""
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, env=pcp_env())


def hpc_pcp(*args: str, user: str | None = None, env: dict | None = None,
            timeout: float = 60, command: str = "hpc-pcp") -> subprocess.CompletedProcess:
    """Run this venv's ``hpc-pcp`` console script, or another one named by ``command``
    (as ``user`` through su, if given)."""
    argv = [os.path.join(os.path.dirname(sys.executable), command), *args]
    if user:
        argv = ["su", user, "-s", "/bin/sh", "-c", " ".join(argv)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PATH": PCP_PATH, **(env or {})})


def pmcd_running() -> bool:
    return run_pcp("pminfo", "-f", "pmcd.version").returncode == 0


def reader():
    from hpc_pcp.pcpclient import PcpReader
    return PcpReader()


def wait_for(predicate, timeout: float = 30, interval: float = 0.2, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except Exception as exc:  # the agent may not be answering yet
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what} (last: {last!r})")


def agent_diagnostics(root: str) -> str:
    """What pmcd and the agent's own log say about the agent serving ``root`` (for failures)."""
    from hpc_pcp.agents import AGENTS
    names = [n for n, e in AGENTS.items() if e.load().root == root] if root.startswith("hpc.") else []
    out = []
    status = run_pcp("pminfo", "-f", "pmcd.agent.status").stdout
    for name in names:
        out += [line.strip() for line in status.splitlines() if f'"{name}"' in line] or \
            [f"pmcd.agent.status has no {name} instance"]
        log_dir = os.environ.get("PCP_LOG_DIR", "/var/log/pcp")
        path = os.path.join(log_dir, "pmcd", f"{name}.log")
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                out.append(f"--- tail of {path}:\n" + "".join(f.readlines()[-15:]))
        except OSError as exc:
            out.append(f"{path}: {exc}")
    pmcd_log = os.path.join(os.environ.get("PCP_LOG_DIR", "/var/log/pcp"), "pmcd", "pmcd.log")
    try:
        with open(pmcd_log, encoding="utf-8", errors="replace") as f:
            out.append(f"--- tail of {pmcd_log}:\n" + "".join(f.readlines()[-25:]))
    except OSError as exc:
        out.append(f"{pmcd_log}: {exc}")
    return "\n".join(out)


def wait_refreshed(root: str, at_least: int = 1, timeout: float = 60) -> None:
    """Wait until the agent at ``root`` (e.g. hpc.sample) has finished ``at_least`` refreshes."""
    def done():
        value = reader().fetch([f"{root}.agent.refreshes"])[f"{root}.agent.refreshes"]
        return value is not None and value >= at_least
    try:
        wait_for(done, timeout, what=f"{root} to refresh {at_least} time(s)")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{agent_diagnostics(root)}") from None


def _paths_in(value: Any) -> Iterator[str]:
    if isinstance(value, str) and value.startswith("/"):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _paths_in(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _paths_in(item)


def reachable_by_agents(config: dict | None) -> None:
    """Let an agent running as the pcp user reach the fixture paths ``config`` names.

    pytest makes its temporary directories (/tmp/pytest-of-root, each test's tmp_path) and
    tempfile.mkdtemp its directories mode 0700: an agent that dropped root could not enter
    them.  Each directory on the way to a named path that lies in the temporary directory
    gets search permission for others (o+x: enter, not list); what tests create inside is
    0755/0644 as usual.  The product's defaults stay as they are: only the test's own
    temporary directories are opened, never a system one."""
    base = os.path.realpath(tempfile.gettempdir())
    for path in _paths_in(config or {}):
        path = os.path.realpath(path)
        while path.startswith(base + os.sep):
            with contextlib.suppress(FileNotFoundError):
                st = os.stat(path)
                if st.st_uid == os.geteuid() and os.path.isdir(path) and not st.st_mode & 0o001:
                    os.chmod(path, st.st_mode | 0o001)
            path = os.path.dirname(path)


@contextlib.contextmanager
def installed_agent(name: str, config: dict | None = None, ready: bool = True) -> Iterator[str]:
    """Install agent ``name`` with ``config`` (written to a temp YAML file); remove it after.

    With ``ready`` (the default) it returns once the agent has served its first refresh.
    The paths in ``config`` are made reachable for an agent running as pcp
    (reachable_by_agents); the file itself is read by the agent while still root.
    """
    if not pmcd_running():
        raise AssertionError("pmcd is not running: run scripts/setup-node.sh first")
    tmp = tempfile.mkdtemp(prefix=f"{name}-test-")
    args = ""
    if config is not None:
        path = os.path.join(tmp, f"{name}.yaml")
        with open(path, "w", encoding="utf-8") as f:
            yaml.safe_dump(config, f)
        args = f"-c {path}"
        reachable_by_agents(config)
    result = installer.install(name, extra_args=args)
    try:
        assert result.ok, f"Install of {name} failed:\n{result.output}"
        if ready:  # one agent at a time: the next Install's pmcd SIGHUP never meets a starting agent
            from hpc_pcp.agents import AGENTS
            wait_refreshed(AGENTS[name].load().root, 1)
        yield tmp
    finally:
        installer.remove(name)
        shutil.rmtree(tmp, ignore_errors=True)


def process_status(pid: int) -> dict[str, str]:
    """/proc/<pid>/status as {field: text} (Uid, Gid, Groups, PPid, ...)."""
    with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def _process_table() -> dict[int, tuple[int, list[bytes]]]:
    """pid → (parent pid, argv) of every process now."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdecimal():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            table[int(entry)] = (int(process_status(int(entry))["PPid"]), argv)
        except (OSError, KeyError, ValueError):
            continue     # gone meanwhile
    return table


def pmcd_agents(name: str) -> list[int]:
    """The processes this machine's pmcd runs for agent ``name`` (``python -I -m pmdas.<name>``,
    started by pmcd: not an agent of another pmcd, such as a container's or a matrix node's)."""
    pmcd_pid = reader().fetch(["pmcd.pid"])["pmcd.pid"]
    table = _process_table()
    module = f"pmdas.{name}".encode()

    def started_by_pmcd(parent: int) -> bool:   # directly, or through its pmdaroot
        return parent == pmcd_pid or table.get(parent, (None,))[0] == pmcd_pid
    return [pid for pid, (parent, argv) in table.items()
            if started_by_pmcd(parent) and b"-m" in argv and module in argv]


def agent_processes(name: str) -> tuple[int, list[int]]:
    """The one process this machine's pmcd runs for agent ``name`` and its refresh children
    (``pmdas.common.worker``)."""
    agents = pmcd_agents(name)
    assert len(agents) == 1, f"pmcd runs {len(agents)} {name} agents: {agents}"
    children = [pid for pid, (parent, argv) in _process_table().items()
                if parent == agents[0] and b"pmdas.common.worker" in argv]
    return agents[0], children


@pytest.fixture(scope="session")
def pmcd() -> None:
    if os.geteuid() != 0:
        pytest.fail("tier-2 tests need root (they install agents into pmcd)")
    if not pmcd_running():
        pytest.fail("pmcd is not running: run scripts/setup-node.sh first")
