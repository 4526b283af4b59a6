"""Tier 2: node.unreachable through real pmie: pmcd reached through a TCP relay that the
test cuts (the node 'goes away') and restores, with the state shown by hpcalarm."""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading

import pytest

from tests.harness.pcp import installed_agent, run_pcp, wait_for

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
                          "node.agent_down", "agent.job_unhealthy", "agent.lustre_unhealthy",
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


def _agent_pid(module: str) -> int | None:
    """The pid of the agent pmcd runs as ``python -m <module>`` (pmdaroot starts agents for
    pmcd), not a leftover of another test."""
    pmcd = subprocess.run(["pgrep", "-x", "pmcd|pmdaroot"], capture_output=True, text=True).stdout.split()
    for entry in os.listdir("/proc"):
        if not entry.isdecimal():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                ppid = f.read().rsplit(")", 1)[1].split()[1]
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except (OSError, IndexError):
            continue
        if ppid in pmcd and module.encode() in argv:
            return int(entry)
    return None


def test_agent_down_fires_and_clears():
    """An agent process killed under pmcd → node.agent_down; pmcd restarts it on SIGHUP → clears."""
    work = tempfile.mkdtemp(prefix="alarm-agent-")
    os.chmod(work, 0o755)
    state = os.path.join(work, "state")
    text = rules_text(["nodes"], state, overrides={r: {"enabled": False} for r in (
        "node.unreachable", "agent.job_unhealthy", "agent.lustre_unhealthy", "agent.ib_unhealthy",
        "agent.bpftrace_unhealthy", "agent.dtn_unhealthy")})
    try:
        with installed_agent("hpcsample", {"directory": work, "interval": 1}), \
                installed_agent("hpcalarm", {"directory": state, "interval": 1}), running_pmie(text):
            pid = _agent_pid("pmdas.hpcsample")
            assert pid, "hpcsample's process not found"
            os.kill(pid, signal.SIGKILL)
            # pmcd notices at its next request to the agent (on a node, pmlogger's next sample).
            def noticed() -> bool:
                run_pcp("pminfo", "-f", "hpc.sample.agent.up")
                status = run_pcp("pminfo", "-f", "pmcd.agent.status").stdout
                return any('"hpcsample"' in line and not line.rstrip().endswith(" 0")
                           for line in status.splitlines())
            wait_for(noticed, 30, 0.5, what="pmcd to notice the dead agent")
            wait_alarms({"node.agent_down|hpcsample": 1})
            assert run_pcp("pmsignal", "-a", "-s", "HUP", "pmcd").returncode == 0  # pmcd restarts dead agents
            wait_for(lambda: _agent_pid("pmdas.hpcsample") not in (None, pid), 30, what="hpcsample restarted")
            wait_alarms({"node.agent_down": 0})
    finally:
        shutil.rmtree(work, ignore_errors=True)
