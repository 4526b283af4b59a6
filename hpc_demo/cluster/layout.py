"""Who is in the cluster and where (pure): names, roles, addresses, file locations."""
from __future__ import annotations

import os
from dataclasses import dataclass

BASE = os.environ.get("HPC_DEMO_CLUSTER_DIR", "/var/lib/pcp-hpc/cluster")
BRIDGE = "hpcbr0"
NETWORK = "10.77.0"          # a private /24 on a bridge of our own; no other range is touched
PREFIX = 24
HEAD, LOGGER = "head", "logger"
DEFAULT_NODES = 3            # compute nodes that fit 2 cores beside the head and logger
DEFAULT_SERVERS = 1          # Lustre server nodes (one serves every OST and the MDTs)
MAX_SERVERS = 4
REDIS_PORTS = (7001, 7002, 7003)   # the logger node's 3-shard Valkey/Redis cluster


@dataclass(frozen=True)
class Node:
    name: str
    role: str        # "head", "compute", "lustre" (an OSS, the first also the MDS) or "logger"
    address: str

    @property
    def directory(self) -> str:
        """The node's own files on the host: PCP directories, demo sources, logs."""
        return os.path.join(BASE, self.name)

    @property
    def veth(self) -> str:
        """The host end of the node's link to the bridge (interface names: 15 bytes at most)."""
        return f"hv-{self.name}"[:15]


def compute_name(index: int) -> str:
    return f"node{index:02d}"


def server_name(index: int) -> str:
    return f"oss{index:02d}"


def plan(nodes: int = DEFAULT_NODES, servers: int = DEFAULT_SERVERS) -> list[Node]:
    """Head first (slurmctld must be up before slurmd registers), then compute, then the
    Lustre servers, then logger."""
    if not 1 <= nodes <= 99:
        raise ValueError("a cluster on one machine has 1 to 99 compute nodes")
    if not 1 <= servers <= MAX_SERVERS:
        raise ValueError(f"a cluster on one machine has 1 to {MAX_SERVERS} Lustre servers")
    return ([Node(HEAD, "head", f"{NETWORK}.1")]
            + [Node(compute_name(i), "compute", f"{NETWORK}.{10 + i}") for i in range(1, nodes + 1)]
            + [Node(server_name(i), "lustre", f"{NETWORK}.{2 + i}") for i in range(1, servers + 1)]
            + [Node(LOGGER, "logger", f"{NETWORK}.2")])


def computes(nodes: list[Node]) -> list[Node]:
    return [n for n in nodes if n.role == "compute"]


def servers(nodes: list[Node]) -> list[Node]:
    """The Lustre server nodes: OSSs, the first one also the MDS."""
    return [n for n in nodes if n.role == "lustre"]


def monitored_set(nodes: list[Node]) -> str:
    """What the logger records: the compute nodes' node set and every Lustre server."""
    return ",".join([node_set(nodes)] + [n.name for n in servers(nodes)])


def node_set(nodes: list[Node]) -> str:
    """The compute nodes as a Slurm/ClusterShell node set: node[01-03]."""
    names = [n.name for n in computes(nodes)]
    if len(names) == 1:
        return names[0]
    return f"node[{names[0][4:]}-{names[-1][4:]}]"


def hosts_file(nodes: list[Node]) -> str:
    """/etc/hosts of every node: every node by name, so Slurm and pmlogger resolve them."""
    return ("127.0.0.1 localhost\n::1 localhost\n"
            + "".join(f"{n.address} {n.name}\n" for n in nodes))


def redis_seeds(logger: Node) -> str:
    return ",".join(f"{logger.address}:{p}" for p in REDIS_PORTS)


def state_file() -> str:
    return os.path.join(BASE, "cluster.json")
