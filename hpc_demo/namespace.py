"""A "node" on this machine: a process in its own PID, mount, network, UTS and IPC namespaces.

The first process of the namespaces (PID 1 inside, a ``sleep``) holds them; everything the
node runs is entered with ``nsenter`` and becomes part of them.  Killing that first process
ends every process of the node, and with its mount namespace every mount made for it: that
is how a node is stopped with nothing left behind.  Mounts are private (no propagation to
or from the host), so bind-mounting a node's copy over /etc/pcp hides the host's only there.

A node outlives the command that started it (``hpc-demo cluster up`` exits, the nodes run):
``Namespace.adopt`` finds it again from the pid and namespace identity it recorded.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

PATH = "/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"


class NamespaceError(RuntimeError):
    """A node did not come up, or a command in it failed; the message says which."""


def namespace_id(pid: int, kind: str = "pid") -> int:
    """The inode of a process's ``kind`` namespace (0 when the process is gone)."""
    try:
        return os.stat(f"/proc/{pid}/ns/{kind}").st_ino
    except OSError:
        return 0


def members(ns_id: int, kind: str = "pid") -> list[int]:
    """Host pids of every process in the namespace ``ns_id``."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and namespace_id(int(entry.name), kind) == ns_id:
            out.append(int(entry.name))
    return out


class Namespace:
    """One node's namespaces: ``start`` (or ``adopt``), ``run`` inside, ``stop``."""

    def __init__(self, name: str, pid: int = 0, ns_id: int = 0, root: str | None = None):
        """``root``: the node runs in that directory tree (chroot'ed, e.g. another release's
        root); None shares the host's filesystem, with the node's own mounts over it."""
        self.name = name
        self.pid = pid        # the first process inside, as the host sees it
        self.ns_id = ns_id    # its PID namespace's inode: a reused pid is not our node
        self.root = root

    @classmethod
    def adopt(cls, record: Mapping[str, object]) -> Namespace:
        return cls(str(record["name"]), int(record["pid"]), int(record["ns_id"]))

    def record(self) -> dict[str, object]:
        return {"name": self.name, "pid": self.pid, "ns_id": self.ns_id}

    def alive(self) -> bool:
        return self.pid > 0 and namespace_id(self.pid) == self.ns_id != 0

    def start(self, holder: str, *args: str, seconds: float = 20) -> None:
        """Enter new namespaces and run the shell script ``holder`` (with ``args``) as their
        first process; it makes the node's mounts and must end by exec'ing ``sleep`` (in the
        root, if the node has one).  Returns once that exec happened."""
        proc = os.path.join(self.root or "/", "proc")
        unshare = subprocess.Popen(
            ["unshare", "--pid", "--fork", "--kill-child", "--mount", "--net", "--uts", "--ipc",
             "--propagation", "private", f"--mount-proc={proc}", "sh", "-c", holder, self.name, *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            child = self._child_of(unshare.pid)
            if child and os.path.basename(_command(child).split(" ", 1)[0]) == "sleep":
                self.pid, self.ns_id = child, namespace_id(child)
                unshare.stderr.close()
                return
            if unshare.poll() is not None:
                raise NamespaceError(f"{self.name}: namespace ended: {unshare.stderr.read().decode()}")
            time.sleep(0.05)
        unshare.kill()
        raise NamespaceError(f"{self.name}: namespace did not come up in {seconds:g}s")

    @staticmethod
    def _child_of(pid: int) -> int:
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            return 0
        return int(children[0]) if children else 0

    def stop(self, seconds: float = 10) -> bool:
        """SIGKILL the first process (the kernel then kills every process in the PID
        namespace) and wait until none is left; False if some remained."""
        if not self.alive():
            return True
        os.kill(self.pid, signal.SIGKILL)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not members(self.ns_id):
                return True
            time.sleep(0.05)
        return False

    def processes(self) -> list[int]:
        return members(self.ns_id) if self.ns_id else []

    def command(self, argv: Sequence[str], env: Mapping[str, str] | None = None) -> list[str]:
        """``argv`` as a host command line that runs it inside the node, clean environment."""
        environ = {"PATH": PATH, "HOME": "/root", "LANG": "C.UTF-8", **(env or {})}
        chroot = ["-r", "-w"] if self.root else []
        return ["nsenter", "-t", str(self.pid), "-p", "-m", "-n", "-u", "-i", *chroot, "--",
                "env", "-i", *[f"{k}={v}" for k, v in environ.items()], *argv]

    def run(self, *argv: str, check: bool = True, timeout: float = 60,
            env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess:
        done = subprocess.run(self.command(argv, env), capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
        if check and done.returncode != 0:
            raise NamespaceError(f"{self.name}: {' '.join(argv)} exited {done.returncode}:\n"
                                 f"{done.stdout}{done.stderr}")
        return done

    def sh(self, script: str, **kwargs) -> subprocess.CompletedProcess:
        return self.run("sh", "-c", script, **kwargs)

    def daemon(self, log: str, *argv: str, env: Mapping[str, str] | None = None) -> None:
        """Start ``argv`` in the background inside the node, in its own session, output to
        ``log``; it ends with the node."""
        quoted = " ".join("'" + a.replace("'", "'\\''") + "'" for a in argv)
        self.sh(f"setsid {quoted} >>'{log}' 2>&1 </dev/null &", env=env)


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
