"""What a testbed is made of: names, addresses, links, rates, directories (pure, JSON-able).

``<name>-wan`` holds the bridge that stands for the WAN; each DTN node is a namespace
``<name>-s<i>`` (source cluster) or ``<name>-d<i>`` (destination cluster) whose ``eth0`` is
a veth into the bridge; the root namespace reaches the bridge through ``<name>-h`` (no
shaping there: it carries only control channels, since transfers are third-party).
Addresses come from one /24: sources ``.11…``, destinations ``.21…``, the host ``.254``.

With a round-trip time or loss (``rtt_ms``/``loss``) the WAN namespace has two bridges
instead of one: ``br0`` holds the source nodes and the host, ``br1`` the destination nodes,
and the only way between them is the delay line (``delayline``) between TAP devices
``dls`` (on br0) and ``dld`` (on br1).  Every node then also gets TCP buffer limits
(``tcp_buffer``) and a congestion control (``congestion``), as real DTNs are tuned.
"""
from __future__ import annotations

import ipaddress
import json
import os
import re
from dataclasses import asdict, dataclass, field

from dtn_transfer.state import state_dir, write_json_atomic

from .shaping import Shape

NAME = re.compile(r"^[a-z][a-z0-9]{1,9}$")
MAX_NODES = 4
GRIDFTP_PORT = 2811
SOURCE, DEST = "source", "dest"


class LayoutError(ValueError):
    """A testbed request that cannot be built; one sentence for the user."""


@dataclass(frozen=True, kw_only=True)
class Node:
    """One DTN node of the testbed: its namespace, address and bridge port."""

    role: str            # SOURCE or DEST
    index: int           # 1-based within its cluster
    namespace: str
    address: str
    port: int
    wan_port: str        # the node's link as seen in the WAN namespace (bridge port)

    @property
    def endpoint(self) -> str:
        return f"{self.address}:{self.port}"

    @property
    def label(self) -> str:
        return f"{'s' if self.role == SOURCE else 'd'}{self.index}"


@dataclass(kw_only=True)
class Layout:
    """A whole testbed as planned and saved (``$DTN_TRANSFER_STATE_DIR/testbeds/<name>.json``)."""

    name: str
    subnet: str
    source_nodes: int
    dest_nodes: int
    node_rate: int
    flow_rate: int | None
    buckets: int
    mtu: int
    root: str                                  # data directories live below it
    nodes: list[Node] = field(default_factory=list)
    datasets: dict[str, dict] = field(default_factory=dict)    # shape → {files, bytes, source, dest}
    state: str = "planned"                     # planned, up, failed
    anonymous: bool = False                    # servers anonymous ftp:// instead of GSI gsiftp://
    rtt_ms: float = 0.0                        # round-trip time of the delay line (0: no delay line)
    loss: float = 0.0                          # drop probability per frame, each way
    tcp_buffer: int | None = None              # per-node TCP buffer maximum (tcp_rmem/tcp_wmem)
    congestion: str | None = None              # per-node TCP congestion control
    delay_line: dict = field(default_factory=dict)     # pid, log, measured RTT (filled by ``up``)

    @property
    def wan(self) -> str:
        return f"{self.name}-wan"

    @property
    def delayed(self) -> bool:
        """True when the clusters are joined by the delay line rather than one bridge."""
        return self.rtt_ms > 0 or self.loss > 0

    def bridge(self, role: str) -> str:
        """The WAN bridge a node of ``role`` (or the host: SOURCE) is plugged into."""
        return "br1" if self.delayed and role == DEST else "br0"

    @property
    def host_link(self) -> str:
        return f"{self.name}-h"

    @property
    def host_address(self) -> str:
        return str(ipaddress.ip_network(self.subnet)[254])

    @property
    def prefix_len(self) -> int:
        return ipaddress.ip_network(self.subnet).prefixlen

    @property
    def shape(self) -> Shape:
        return Shape(self.node_rate, self.flow_rate, self.buckets)

    @property
    def namespaces(self) -> list[str]:
        return [self.wan] + [n.namespace for n in self.nodes]

    @property
    def scheme(self) -> str:
        return "ftp" if self.anonymous else "gsiftp"

    @property
    def gsi_root(self) -> str:
        """The testbed's CA, certificates, grid-mapfile and proxy (``gsi.GsiFiles``), beside its
        data and server files: the servers read the CA directory after switching to the mapped
        account, which the (possibly private) state directory would not let them."""
        return os.path.join(self.root, "gsi")

    def cluster(self, role: str) -> list[Node]:
        return [n for n in self.nodes if n.role == role]

    def source_dir(self, dataset: str = "") -> str:
        return os.path.join(self.root, "source", dataset) if dataset else os.path.join(self.root, "source")

    def dest_dir(self, dataset: str = "") -> str:
        return os.path.join(self.root, "dest", dataset) if dataset else os.path.join(self.root, "dest")

    def to_json(self) -> dict:
        doc = asdict(self)
        doc["nodes"] = [asdict(n) for n in self.nodes]
        return doc

    @classmethod
    def from_json(cls, doc: dict) -> Layout:
        nodes = [Node(**n) for n in doc.pop("nodes", [])]
        return cls(**doc, nodes=nodes)


def plan_layout(name: str = "dtnb", source_nodes: int = 3, dest_nodes: int = 3,
                subnet: str = "10.213.0.0/24", node_rate: int = 4 << 20, flow_rate: int | None = 256 << 10,
                buckets: int = 256, mtu: int = 9000, root: str | None = None,
                anonymous: bool = False, rtt_ms: float = 0.0, loss: float = 0.0,
                tcp_buffer: int | None = None, congestion: str | None = None) -> Layout:
    """Validate a request and assign namespaces and addresses."""
    if not NAME.match(name):
        raise LayoutError(f"testbed name {name!r} must be 2-10 lowercase letters or digits, "
                          f"starting with a letter")
    for count, what in ((source_nodes, "source"), (dest_nodes, "destination")):
        if not 1 <= count <= MAX_NODES:
            raise LayoutError(f"{what} cluster must have 1 to {MAX_NODES} nodes, not {count}")
    try:
        net = ipaddress.ip_network(subnet)
    except ValueError as exc:
        raise LayoutError(f"subnet {subnet!r}: {exc}") from None
    if net.version != 4 or net.prefixlen != 24 or not net.is_private:
        raise LayoutError(f"subnet {subnet} must be a private IPv4 /24")
    Shape(node_rate, flow_rate, buckets)            # raises ValueError on nonsense
    if not 0 <= rtt_ms <= 2000:
        raise LayoutError(f"round-trip time {rtt_ms} ms must be between 0 and 2000 ms")
    if not 0 <= loss < 0.5:
        raise LayoutError(f"loss {loss:.4%} must be below 50%")
    if tcp_buffer is not None and not 4096 <= tcp_buffer <= 1 << 30:
        raise LayoutError(f"TCP buffer {tcp_buffer} must be between 4 KiB and 1 GiB")
    if congestion is not None and not re.fullmatch(r"[a-z0-9_]{2,16}", congestion):
        raise LayoutError(f"congestion control {congestion!r} is not a name")
    layout = Layout(name=name, subnet=str(net), source_nodes=source_nodes, dest_nodes=dest_nodes,
                    node_rate=node_rate, flow_rate=flow_rate, buckets=buckets, mtu=mtu,
                    root=root or os.path.join("/tmp", f"{name}-data"), anonymous=anonymous,
                    rtt_ms=float(rtt_ms), loss=float(loss), tcp_buffer=tcp_buffer, congestion=congestion)
    for role, count, first, letter in ((SOURCE, source_nodes, 11, "s"), (DEST, dest_nodes, 21, "d")):
        for i in range(1, count + 1):
            layout.nodes.append(Node(role=role, index=i, namespace=f"{name}-{letter}{i}",
                                     address=str(net[first + i - 1]), port=GRIDFTP_PORT,
                                     wan_port=f"{letter}{i}"))
    return layout


def layouts_dir() -> str:
    return os.path.join(state_dir(), "testbeds")


def layout_path(name: str) -> str:
    return os.path.join(layouts_dir(), f"{name}.json")


def save(layout: Layout) -> str:
    os.makedirs(layouts_dir(), exist_ok=True)
    path = layout_path(layout.name)
    write_json_atomic(path, layout.to_json())
    return path


def load(name: str) -> Layout | None:
    try:
        with open(layout_path(name), encoding="utf-8") as f:
            return Layout.from_json(json.load(f))
    except FileNotFoundError:
        return None


def forget(name: str) -> None:
    try:
        os.unlink(layout_path(name))
    except FileNotFoundError:
        pass


def known() -> list[str]:
    try:
        return sorted(f[:-5] for f in os.listdir(layouts_dir()) if f.endswith(".json"))
    except FileNotFoundError:
        return []
