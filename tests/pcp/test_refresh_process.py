"""Tier 2: an agent whose refresh runs in a separate process (hpclustre's default), under the
real pmcd: values arrive through the child, a killed child is reported in the agent's health
and replaced while pmcd keeps getting answers, and removing the agent leaves no child behind."""
from __future__ import annotations

import os
import shutil
import signal
import tempfile

import pytest

from bench.harness import process_argvs
from hpc_demo import hpclustre as demo
from tests.harness.pcp import installed_agent, reader, wait_for, wait_refreshed

pytestmark = [pytest.mark.pcp, pytest.mark.usefixtures("pmcd")]


def _refresh_processes() -> dict[int, int]:
    """pid → parent pid of every running hpclustre refresh process."""
    found = {}
    for pid, argv in process_argvs().items():
        if b"pmdas.common.worker" in argv and any(b"hpclustre" in a for a in argv):
            try:
                with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
                    found[pid] = int(f.read().rpartition(")")[2].split()[1])
            except OSError:
                continue
    return found


def _health() -> tuple:
    got = reader().fetch(["hpc.lustre.agent.up", "hpc.lustre.agent.last_error",
                          "hpc.lustre.server.target.kbytes.total"])
    return (got["hpc.lustre.agent.up"], got["hpc.lustre.agent.last_error"],
            got["hpc.lustre.server.target.kbytes.total"])


def test_refresh_process_serves_survives_a_kill_and_goes_with_the_agent():
    work = tempfile.mkdtemp(prefix="refresh-process-")
    os.chmod(work, 0o755)
    try:
        settings = demo.prepare(work)
        assert not _refresh_processes(), "an hpclustre refresh process is already running"
        with installed_agent("hpclustre", {**settings, "interval": 1}):
            wait_refreshed("hpc.lustre", 2)
            children = _refresh_processes()
            assert len(children) == 1, children
            child, agent = next(iter(children.items()))
            assert b"pmdas.hpclustre" in b" ".join(process_argvs()[agent]), "not the agent's child"
            up, error, capacity = _health()
            assert up == 1 and capacity, (up, error)

            os.kill(child, signal.SIGKILL)
            up, error, stale = wait_for(lambda: (h := _health())[0] == 0 and h, 10,
                                        0.05, what="agent.up 0 after the refresh process was killed")
            assert "refresh process exited" in error
            assert stale == capacity, "the last values are served meanwhile"
            wait_for(lambda: _health()[0] == 1, 30, what="a healthy refresh from a new refresh process")
            replaced = _refresh_processes()
            assert list(replaced.values()) == [agent] and child not in replaced, replaced
        wait_for(lambda: not _refresh_processes(), 10, what="the refresh process to go with the agent")
    finally:
        shutil.rmtree(work, ignore_errors=True)
