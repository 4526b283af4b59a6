"""The cluster's network: one bridge, one veth pair per node, addresses from our /24 only."""
from __future__ import annotations

import re
import subprocess

from hpc_demo.namespace import Namespace

from .layout import BRIDGE, PREFIX, Node

OUR_LINK = re.compile(r"^hv-(head|logger|node\d{2}|oss\d{2})$")   # Node.veth of every node plan() makes


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
    if check and done.returncode:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done


def exists(interface: str) -> bool:
    return _ip("link", "show", "dev", interface, check=False).returncode == 0


def make_bridge() -> None:
    """The bridge has no address: the host takes no part in the cluster's traffic."""
    if not exists(BRIDGE):
        _ip("link", "add", BRIDGE, "type", "bridge")
    _ip("link", "set", BRIDGE, "up")


def attach(node: Node, namespace: Namespace) -> None:
    """A veth pair: the host end on the bridge, the other end as eth0 inside the node."""
    if exists(node.veth):
        _ip("link", "del", node.veth)
    _ip("link", "add", node.veth, "type", "veth", "peer", "name", "eth0", "netns", str(namespace.pid))
    _ip("link", "set", node.veth, "master", BRIDGE, "up")
    namespace.sh(f"ip link set lo up && ip addr add {node.address}/{PREFIX} dev eth0 && ip link set eth0 up")


def ours() -> list[str]:
    """Our interfaces that exist: the nodes' host ends (hv-*) and the bridge."""
    names = [line.split(":", 2)[1].strip().split("@")[0]
             for line in _ip("-o", "link", "show").stdout.splitlines()]
    return [n for n in names if OUR_LINK.match(n)] + ([BRIDGE] if BRIDGE in names else [])


def remove() -> list[str]:
    """Delete what is left of our links and the bridge; return what was deleted.  A veth
    pair normally goes with its node's network namespace already."""
    gone = []
    for interface in ours():   # a veth may vanish between the listing and the delete
        if _ip("link", "del", interface, check=False).returncode == 0:
            gone.append(interface)
        elif exists(interface):
            raise RuntimeError(f"ip link del {interface} failed and it is still there")
    return gone


def leftovers() -> list[str]:
    return [f"interface {i}" for i in ours()]
