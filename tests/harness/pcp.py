"""Tier-2 harness: install an agent into the real local pmcd, query it, clean up.

Tests that use these fixtures need root and a running pmcd (scripts/setup-node.sh
starts one).  They fail, not skip, when pmcd is absent: CI must prove them.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
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


def wait_refreshed(root: str, at_least: int = 1, timeout: float = 60) -> None:
    """Wait until the agent at ``root`` (e.g. hpc.sample) has finished ``at_least`` refreshes."""
    def done():
        value = reader().fetch([f"{root}.agent.refreshes"])[f"{root}.agent.refreshes"]
        return value is not None and value >= at_least
    wait_for(done, timeout, what=f"{root} to refresh {at_least} time(s)")


@contextlib.contextmanager
def installed_agent(name: str, config: dict | None = None) -> Iterator[str]:
    """Install agent ``name`` with ``config`` (written to a temp YAML file); remove it after."""
    if not pmcd_running():
        raise AssertionError("pmcd is not running: run scripts/setup-node.sh first")
    tmp = tempfile.mkdtemp(prefix=f"{name}-test-")
    args = ""
    if config is not None:
        path = os.path.join(tmp, f"{name}.yaml")
        with open(path, "w", encoding="utf-8") as f:
            yaml.safe_dump(config, f)
        args = f"-c {path}"
    result = installer.install(name, extra_args=args)
    try:
        assert result.ok, f"Install of {name} failed:\n{result.output}"
        yield tmp
    finally:
        installer.remove(name)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def pmcd() -> None:
    if os.geteuid() != 0:
        pytest.fail("tier-2 tests need root (they install agents into pmcd)")
    if not pmcd_running():
        pytest.fail("pmcd is not running: run scripts/setup-node.sh first")
