"""Tier 2: the README's main job, `hpc-demo up`, on the real pmcd — then `hpc-demo down`.

Every agent with a demo joins it: each must be loaded by pmcd, refresh, report healthy
through `hpc-pcp status`, and show moving values after a `hpc-demo tick`.  The demo's pmie fires
an alarm (its Slurm's held jobs pend too long).  `hpc-demo down` removes them all, stops pmie and
leaves the rest of pmcd.conf alone.
"""
from __future__ import annotations

import os
import subprocess
import tempfile

import pytest

from hpc_demo.node import demo_modules
from hpc_pcp.agents import available
from hpc_pcp.logger import series_index_needed
from tests.harness.pcp import agent_diagnostics, hpc_pcp, reader, wait_for, wait_refreshed

pytestmark = [pytest.mark.pcp, pytest.mark.usefixtures("pmcd")]

PMCD_CONF = "/etc/pcp/pmcd/pmcd.conf"


def _running(pidfile: str) -> int | None:
    """The pid in ``pidfile`` if that process runs (not a zombie)."""
    try:
        pid = int(open(pidfile, encoding="ascii").read())
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return None if f.read().rpartition(")")[2].split()[0] == "Z" else pid
    except (OSError, ValueError, IndexError):
        return None


def _pmcd_agents() -> set[str]:
    with open(PMCD_CONF, encoding="utf-8") as f:
        return {line.split()[0] for line in f if line.strip() and not line.startswith(("#", "["))}


def test_demo_up_runs_every_demo_agent_and_down_removes_them():
    root = tempfile.mkdtemp(prefix="hpc-demo-")
    os.chmod(root, 0o755)
    env = {"HPC_PCP_DEMO_ROOT": root}
    before = _pmcd_agents()
    names = sorted(demo_modules())
    assert {"hpcib", "hpclustre", "hpcdtn", "hpcjob"} <= set(names), names
    try:
        up = hpc_pcp("up", env=env, timeout=300, command="hpc-demo")
        assert up.returncode == 0, up.stdout + up.stderr
        for name in names:
            assert f"{name}: installed" in up.stdout, up.stdout
        roots = {name: available()[name].load().root for name in names}
        for name, agent_root in roots.items():
            try:
                wait_refreshed(agent_root, 2)
            except AssertionError as exc:
                raise AssertionError(f"{name}: {exc}\n{agent_diagnostics(agent_root)}") from None
        status = hpc_pcp("status", *names, env=env, timeout=60)
        assert status.returncode == 0, status.stdout + status.stderr
        for name in names:
            assert f"{name:<12} healthy" in status.stdout, status.stdout
        # Every agent exports some of its own (non-health) values.
        for name, agent_root in roots.items():
            own = [f"{agent_root}.{m.name}" for m in available()[name].load().metrics][:40]
            got = reader().fetch(own)
            assert any(v not in (None, {}) for v in got.values()), f"{name}: no values in {own}"
        wait_for(lambda: [k for k, v in (reader().fetch(["hpc.alarm.firing"])["hpc.alarm.firing"]
                                         or {}).items() if v == 1 and k.startswith("job.pending_too_long:")],
                 120, what="the demo's pmie to fire job.pending_too_long")
        index = None
        if series_index_needed():   # the demo node is its own logger: its new jobs in every metric
            index = wait_for(lambda: _running(os.path.join(root, "hpcalarm", "series-index.pid")), 60,
                             what="the demo's series index (PCP before 6.3.4)")
            with open(f"/proc/{index}/cmdline", "rb") as f:
                assert b"series-index" in f.read()
    finally:
        down = hpc_pcp("down", env=env, timeout=300, command="hpc-demo")
    assert down.returncode == 0, down.stdout + down.stderr
    after = _pmcd_agents()
    assert not {n for n in names if n in after}, after
    assert after == before - set(names)
    pmie = subprocess.run(["pgrep", "-f", f"pmie .*{root}"], capture_output=True, text=True)
    assert pmie.returncode == 1, f"pmie still runs after demo down: {pmie.stdout}"
    assert index is None or _running(os.path.join(root, "hpcalarm", "series-index.pid")) is None
    assert index is None or not os.path.exists(f"/proc/{index}/cmdline") or \
        b"series-index" not in open(f"/proc/{index}/cmdline", "rb").read()
