"""GridFTP servers inside the testbed's node namespaces.

Each node runs a real ``globus-gridftp-server``: GSI-only (the node's host certificate,
the testbed's CA and grid-mapfile from ``gsi.GsiFiles``; no anonymous login), or, on a
testbed built ``--anonymous``, anonymous (mapped to an unprivileged user), bound to the
node's own address for
control and data channels, started with ``ip netns exec`` so its data connections go
through the node's shaped link.  ``GLOBUS_HOSTNAME`` is the node's address: the server
puts its host name into PASV replies and contact strings.  Usage statistics are off, so
nothing tries to leave the namespaces.  Stopping is done by killing every process in the
node's namespace, which also ends the per-session children the daemon forks.
"""
from __future__ import annotations

import os
import socket
import subprocess
import time

from dtn_transfer.servers import GRIDFTP_SERVER

from .gsi import GsiFiles
from .layout import Layout, Node
from .netns import in_ns, kill_all_in

ANONYMOUS_USER = os.environ.get("DTN_TESTBED_ANONYMOUS_USER", "nobody")


def run_dir(layout: Layout) -> str:
    return os.path.join(layout.root, "run")


def transfer_log(layout: Layout, node: Node) -> str:
    """The node's GridFTP transfer log (the format hpcdtn parses)."""
    return os.path.join(run_dir(layout), f"{node.label}-transfer.log")


def server_argv(layout: Layout, node: Node) -> list[str]:
    base = os.path.join(run_dir(layout), node.label)
    access = ["-aa", "-anonymous-user", ANONYMOUS_USER] if layout.anonymous else []
    return in_ns(node.namespace, [
        GRIDFTP_SERVER, *access, "-p", str(node.port),
        "-control-interface", node.address, "-data-interface", node.address,
        "-disable-usage-stats", "-S", "-pidfile", base + ".pid", "-logfile", base + ".log",
        "-log-transfer", transfer_log(layout, node)])


def gsi_files(layout: Layout) -> GsiFiles:
    return GsiFiles(layout.gsi_root, layout.name)


def answers(node: Node, timeout: float = 1.0) -> bool:
    """True if the node's control channel accepts a TCP connection from here (root namespace)."""
    try:
        with socket.create_connection((node.address, node.port), timeout=timeout) as s:
            s.settimeout(timeout)
            return s.recv(4).startswith(b"220")
    except OSError:
        return False


def start(layout: Layout, node: Node, timeout: float = 10.0) -> int:
    """Start the node's server; returns its pid once it greets from the root namespace."""
    os.makedirs(run_dir(layout), exist_ok=True)
    pidfile = os.path.join(run_dir(layout), f"{node.label}.pid")
    if os.path.exists(pidfile):
        os.unlink(pidfile)
    env = {**os.environ, "GLOBUS_HOSTNAME": node.address}
    if not layout.anonymous:
        env.update(gsi_files(layout).server_environment(node.address))
    subprocess.run(server_argv(layout, node), check=True, stdin=subprocess.DEVNULL, env=env,
                   capture_output=True, timeout=timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if answers(node):
            with open(pidfile, encoding="ascii") as f:
                return int(f.read().strip())
        time.sleep(0.05)
    raise RuntimeError(f"GridFTP server of {node.label} ({node.endpoint}) did not answer; "
                       f"see {os.path.join(run_dir(layout), node.label + '.log')}")


def stop(node: Node) -> list[int]:
    """Stop everything running in the node's namespace; returns pids that would not die."""
    return kill_all_in(node.namespace)
