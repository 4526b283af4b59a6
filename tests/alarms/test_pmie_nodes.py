"""Tier 2: node.unreachable through real pmie: pmcd reached through a TCP relay that the
test cuts (the node 'goes away') and restores, with the state shown by hpcalarm."""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import tempfile
import threading

import pytest

from tests.harness.pcp import installed_agent, pmcd_agents, run_pcp, wait_for

from .live import rules_text, running_pmie, wait_alarms

pytestmark = [pytest.mark.pcp, pytest.mark.usefixtures("pmcd")]


class Relay:
    """localhost:<port> → pmcd's 44321; closing it makes pmcd unreachable on that port."""

    def __init__(self, port: int = 0):
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", port))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.open = True
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while self.open:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", 44321))
            self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := a.recv(65536):
                b.sendall(data)
        with contextlib.suppress(OSError):
            b.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.open = False
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        self.listener.close()
        for s in self.conns:
            with contextlib.suppress(OSError):
                s.close()


def test_node_unreachable_fires_and_clears():
    work = tempfile.mkdtemp(prefix="alarm-node-")
    os.chmod(work, 0o755)
    state = os.path.join(work, "state")
    relay = Relay()
    host = f"localhost:{relay.port}"
    text = rules_text(["nodes"], state, hosts=[host],
                      overrides={r: {"enabled": False} for r in (
                          "node.agent_down", "node.d_state", "agent.job_unhealthy", "agent.lustre_unhealthy",
                          "agent.ib_unhealthy", "agent.bpftrace_unhealthy", "agent.dtn_unhealthy")})
    key = f"node.unreachable|{host}"
    try:
        with installed_agent("hpcalarm", {"directory": state, "interval": 1}), running_pmie(text):
            relay.close()                                     # the node disappears
            wait_alarms({key: 1})
            relay = Relay(int(host.rsplit(":", 1)[1]))        # and comes back
            wait_alarms({key: 0})
    finally:
        relay.close()
        shutil.rmtree(work, ignore_errors=True)



def test_agent_down_fires_and_clears():
    """An agent that dies and cannot be started again → node.agent_down; repaired → clears.

    pmcd (6.0.3) restarts an agent that died by itself within about 3 s, so a single kill
    only blips.  What stays down is an agent pmcd cannot start: here its launcher is moved
    away before the kill (as a broken package update would leave it) and put back for the
    repair, which pmcd picks up on SIGHUP."""
    work = tempfile.mkdtemp(prefix="alarm-agent-")
    os.chmod(work, 0o755)
    state = os.path.join(work, "state")
    text = rules_text(["nodes"], state, overrides={r: {"enabled": False} for r in (
        "node.unreachable", "node.d_state", "agent.job_unhealthy", "agent.lustre_unhealthy",
        "agent.ib_unhealthy", "agent.bpftrace_unhealthy", "agent.dtn_unhealthy")})
    launcher = "/var/lib/pcp/pmdas/hpcsample/pmdahpcsample"
    try:
        with installed_agent("hpcsample", {"directory": work, "interval": 1}), \
                installed_agent("hpcalarm", {"directory": state, "interval": 1}), running_pmie(text):
            (pid,) = wait_for(lambda: pmcd_agents("hpcsample"), 30, what="the hpcsample agent pmcd runs")
            os.rename(launcher, launcher + ".away")
            try:
                os.kill(pid, signal.SIGKILL)
                # pmcd notices at its next request to the agent (on a node: pmlogger's next sample)
                run_pcp("pminfo", "-f", "hpc.sample.agent.up")
                wait_alarms({"node.agent_down|hpcsample": 1})
                assert not pmcd_agents("hpcsample")
            finally:
                os.rename(launcher + ".away", launcher)
            assert run_pcp("pmsignal", "-a", "-s", "HUP", "pmcd").returncode == 0
            wait_for(lambda: pmcd_agents("hpcsample"), 30, what="pmcd to restart hpcsample")
            wait_alarms({"node.agent_down": 0})
    finally:
        shutil.rmtree(work, ignore_errors=True)
