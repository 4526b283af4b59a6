"""Thin wrappers over `ip` and `tc`: namespaces, veth links, bridge, routes, processes.

Every call is an argv list (no shell).  Failures raise ``NetError`` with the command and
its stderr, so ``Testbed.up`` can tear down what it built and say what went wrong.
Per-namespace ``/etc/netns/<ns>/hosts`` and ``resolv.conf`` are written because the
GridFTP server resolves its own address and host name: without them it asks the host's
DNS server, which a namespace cannot reach, and fails ("Temporary failure in name
resolution").  ``ip netns exec`` bind-mounts those files over ``/etc``.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

IP = os.environ.get("DTN_TESTBED_IP", "ip")
TC = os.environ.get("DTN_TESTBED_TC", "tc")
NETNS_ETC = "/etc/netns"


class NetError(RuntimeError):
    """An `ip`/`tc` command failed; the message names the command and its error."""


def run(argv: list[str], stdin: str | None = None, check: bool = True, timeout: float = 30.0) -> str:
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise NetError(f"{' '.join(argv[:8])}{' ...' if len(argv) > 8 else ''}: "
                       f"{(done.stderr or done.stdout).strip() or f'exit {done.returncode}'}")
    return done.stdout


def in_ns(namespace: str, argv: list[str]) -> list[str]:
    return [IP, "netns", "exec", namespace, *argv]


def namespaces() -> list[str]:
    out = run([IP, "netns", "list"], check=False)
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def add_namespace(namespace: str, hosts: dict[str, str], sysctls: dict[str, str] | None = None) -> None:
    """A namespace with loopback up, IPv6 off, its own hosts file (``{address: name}``) and sysctls."""
    etc = os.path.join(NETNS_ETC, namespace)
    os.makedirs(etc, exist_ok=True)
    with open(os.path.join(etc, "hosts"), "w", encoding="ascii") as f:
        f.write("127.0.0.1 localhost\n" + "".join(f"{a} {n}\n" for a, n in hosts.items()))
    with open(os.path.join(etc, "resolv.conf"), "w", encoding="ascii") as f:
        f.write("# testbed namespace: no DNS\n")
    run([IP, "netns", "add", namespace])
    run([IP, "-n", namespace, "link", "set", "lo", "up"])
    run(in_ns(namespace, ["sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1",
                          "net.ipv6.conf.default.disable_ipv6=1"]), check=False)
    for key, value in (sysctls or {}).items():
        run(in_ns(namespace, ["sysctl", "-q", "-w", f"{key}={value}"]))


def pids_in(namespace: str) -> list[int]:
    out = run([IP, "netns", "pids", namespace], check=False)
    return [int(p) for p in out.split() if p.isdecimal()]


def kill_all_in(namespace: str, grace: float = 3.0) -> list[int]:
    """SIGTERM every process in the namespace, SIGKILL what is left after ``grace`` seconds."""
    victims = pids_in(namespace)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in victims:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and pids_in(namespace):
            time.sleep(0.05)
        victims = pids_in(namespace)
        if not victims:
            break
    return victims


def delete_namespace(namespace: str) -> None:
    """Kill its processes, delete it (its veth ends go with it), remove its /etc/netns files."""
    if namespace in namespaces():
        kill_all_in(namespace)
        run([IP, "netns", "delete", namespace], check=False)
    shutil.rmtree(os.path.join(NETNS_ETC, namespace), ignore_errors=True)


def veth(name: str, namespace: str | None, peer: str, peer_namespace: str, mtu: int) -> None:
    """A veth pair created directly in its namespaces (never both ends in the root one)."""
    argv = [IP, "link", "add", name]
    if namespace:
        argv += ["netns", namespace]
    argv += ["mtu", str(mtu), "type", "veth", "peer", "name", peer, "netns", peer_namespace, "mtu", str(mtu)]
    run(argv)


def link_exists(name: str) -> bool:
    return run([IP, "link", "show", "dev", name], check=False).strip() != ""


def tc_batch(namespace: str, lines: list[str]) -> None:
    run(in_ns(namespace, [TC, "-batch", "-"]), stdin="\n".join(lines) + "\n")


def shape_link(namespace: str, dev: str, lines: list[str]) -> None:
    """Replace whatever root qdisc ``dev`` has with the tree in ``lines``."""
    run(in_ns(namespace, [TC, "qdisc", "del", "dev", dev, "root"]), check=False)
    tc_batch(namespace, lines)


def qdisc_show(namespace: str, dev: str) -> str:
    return run(in_ns(namespace, [TC, "qdisc", "show", "dev", dev]), check=False)
