"""Local GridFTP servers standing in for DTN nodes (tests, benchmarks, demos).

Each is a real ``globus-gridftp-server`` on 127.0.0.1, detached (-S), with a pid file so
it is stopped by its pid and nothing else, and optionally a transfer log in the format
hpcdtn reads.  GSI-only when given ``gsi`` (the environment naming its host certificate,
CA directory and grid-mapfile: ``X509_USER_CERT``, ``X509_USER_KEY``, ``X509_CERT_DIR``,
``GRIDMAP``); otherwise anonymous (mapped to an unprivileged user), which accepts no GSI.
Needs root (the server switches to the mapped or anonymous user).
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass

GRIDFTP_SERVER = os.environ.get("DTN_TRANSFER_GRIDFTP_SERVER", "globus-gridftp-server")


@dataclass
class GridftpServer:
    port: int
    work_dir: str
    anonymous_user: str = "nobody"
    transfer_log: str | None = None
    pid: int | None = None
    gsi: dict[str, str] | None = None      # server environment for GSI; None: anonymous

    @property
    def node(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> GridftpServer:
        pidfile = os.path.join(self.work_dir, f"gridftp-{self.port}.pid")
        if os.path.exists(pidfile):
            os.unlink(pidfile)
        access = [] if self.gsi else ["-aa", "-anonymous-user", self.anonymous_user]
        argv = [GRIDFTP_SERVER, *access, "-disable-usage-stats",
                "-p", str(self.port), "-control-interface", "127.0.0.1",
                "-data-interface", "127.0.0.1", "-S", "-pidfile", pidfile,
                "-logfile", os.path.join(self.work_dir, f"gridftp-{self.port}.log")]
        if self.transfer_log:
            argv += ["-log-transfer", self.transfer_log]
        subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, timeout=timeout,
                       env={**os.environ, **(self.gsi or {})})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with open(pidfile, encoding="ascii") as f:
                    self.pid = int(f.read().strip())
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except (OSError, ValueError):
                time.sleep(0.05)
        raise RuntimeError(f"GridFTP server on port {self.port} did not start")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Signal the daemon and its per-session children by pid (SIGKILL = node crash).

        The daemon forks one process per client session; killing only the listener
        would leave running transfers alive, which is not what a crashed node does.
        """
        if self.pid is None:
            return
        for pid in [self.pid, *_children(self.pid)]:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        self.pid = None


def _children(parent: int) -> list[int]:
    """Pids whose parent is ``parent`` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdecimal():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 1 and fields[1] == str(parent):
            found.append(int(entry))
    return found
