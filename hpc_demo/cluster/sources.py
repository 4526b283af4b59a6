"""Each node's moving sources (InfiniBand and Lustre trees, its Slurm jobs' cgroups), its
agents' settings, and the faults an admin can inject on one compute node.

The trees are in the formats the demo node uses (hpc_demo.hpcib, hpc_demo.hpclustre), one
per node with the node's own seed.  A compute node is a Lustre client only; the Lustre
server nodes' job_stats follow the Slurm jobs running on the compute nodes, with the
host-suffixed job ids of ``jobid_name=%j:%u:%H`` (hpc_demo.cluster.lustre).

Slurm puts each compute node's jobs in cgroups of its own, ``<ctrl>/slurm_<node>`` in the
host's v1 hierarchies, which every node sees (cgroups are the host's).  A node's hpcjob
reads a view holding only its own (``cgroup_view``): what a real node's /sys/fs/cgroup shows.
"""
from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Iterable, Mapping

from hpc_demo import hpcib, hpclustre
from hpc_demo.localslurm import CGROUP_V1
from pmdas.hpcib.sysfs import CLASS_DIR

from . import lustre
from .layout import Node
from .slurm import CONF

AGENTS = ("hpcib", "hpclustre", "hpcjob")
BPFTRACE = "hpcbpftrace"     # with ``up(bpftrace=True)``: scripts added live, none running at start
FAULTS = {
    "ib-errors": "symbol and receive errors climb on mlx5_0 port 1",
    "port-down": "mlx5_0 port 1 goes DOWN (link downed once)",
    "ost-slow": "the node's RPCs to scratch-OST0000 wait seconds each",
    "d-state": "a Slurm job on the node is frozen in uninterruptible sleep (D)",
}
IB_PORT = ("mlx5_0", "1")
SLOW_OST = "scratch-OST0000"


def _dir(node: Node, agent: str) -> str:
    return os.path.join(node.directory, "demo", agent)


def _lustre_root(node: Node) -> str:
    return os.path.join(_dir(node, "hpclustre"), "tree")


def prepare(node: Node, index: int) -> dict[str, dict]:
    """Build the compute node's trees and cgroup view; return each agent's settings."""
    ib = _dir(node, "hpcib")
    hpcib.build(ib, hcas=2, ports=1, seed=index)
    _save_lustre(_lustre_root(node), lustre.new_client(seed=index))
    return {"hpcib": {"root": ib},
            "hpclustre": {"root": _lustre_root(node), "interval": 5, "job_limit": 50},
            "hpcjob": {"scheduler": "slurm", "slurm_conf": CONF, "node_name": node.name,
                       "cluster_view": False, "interval": 2, "root": cgroup_view(node)},
            # No curated script runs at start: N nodes share one kernel and 2 cores, and every
            # bpftrace would see the whole machine; an admin adds or enables one live (pmstore).
            BPFTRACE: {"script_dir": script_dir(node), "enabled": [], "interval": 2}}


def prepare_server(node: Node, index: int, servers: int) -> dict[str, dict]:
    """Build a Lustre server's tree (its OSTs, the MDTs on the first); its agent's settings."""
    _save_lustre(_lustre_root(node), lustre.new_server(index, servers, seed=100 + index))
    return {"hpclustre": {"root": _lustre_root(node), "interval": 5, "job_limit": 50}}


def cgroup_view(node: Node, hierarchies: str = CGROUP_V1) -> str:
    """A root for the node's hpcjob whose /sys/fs/cgroup holds only this node's Slurm
    cgroups: in each v1 hierarchy of the host, ``slurm_<node>`` links to the real one (which
    slurmd creates with the node's first job).  The kernel's figures, the node's jobs only."""
    view = os.path.join(node.directory, "cgroup-view")
    for ctrl in sorted(os.listdir(hierarchies)) if os.path.isdir(hierarchies) else []:
        if os.path.exists(os.path.join(hierarchies, ctrl, "cgroup.procs")):
            os.makedirs(os.path.join(view, "sys", "fs", "cgroup", ctrl), exist_ok=True)
            link = os.path.join(view, "sys", "fs", "cgroup", ctrl, f"slurm_{node.name}")
            if not os.path.islink(link):
                os.symlink(os.path.join(hierarchies, ctrl, f"slurm_{node.name}"), link)
    os.makedirs(view, exist_ok=True)
    return view


def script_dir(node: Node) -> str:
    """The node's admin-added bpftrace scripts (the host's default directory is not the node's)."""
    return os.path.join(node.directory, "bpftrace")


def _save_lustre(root: str, state: dict) -> None:
    hpclustre.write_tree(root, state)
    path = os.path.join(root, hpclustre.STATE)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(state, f)
    os.replace(path + ".tmp", path)


def lustre_state(node: Node) -> dict:
    """The node's Lustre counters as last written (a client's has its ledger)."""
    with open(os.path.join(_lustre_root(node), hpclustre.STATE), encoding="utf-8") as f:
        return json.load(f)


def fault_path(node: Node) -> str:
    return os.path.join(node.directory, "fault")


def current_fault(node: Node) -> str | None:
    try:
        with open(fault_path(node), encoding="utf-8") as f:
            return f.read().strip() or None
    except OSError:
        return None


def _port(node: Node) -> str:
    return os.path.join(_dir(node, "hpcib"), CLASS_DIR.lstrip("/"), IB_PORT[0], "ports", IB_PORT[1])


def _advance_ib(root: str, rng: random.Random) -> None:
    """A healthy fabric: data and packets move, ports seldom wait for credits and never
    count errors (the demo node's advance adds the odd error, which on a cluster would fire
    alarms on every node; here errors come from an injected fault only)."""
    class_dir = os.path.join(root, CLASS_DIR.lstrip("/"))
    for ca in sorted(os.listdir(class_dir)):
        ports = os.path.join(class_dir, ca, "ports")
        for port in sorted(os.listdir(ports)):
            for relative in hpcib.TRAFFIC_FILES:
                wait = relative.endswith("xmit_wait")
                _add(os.path.join(ports, port, relative),
                     rng.randrange(0, 100) if wait else rng.randrange(10**6, 10**8))


def _add(path: str, n: int) -> None:
    with open(path, encoding="utf-8") as f:
        value = int(f.read().split()[0])
    hpcib.write_value(path, value + n)


def set_fault(node: Node, kind: str | None) -> None:
    """Inject ``kind`` on the node (None clears); what is instant happens now, the rest at
    every advance."""
    if kind is not None and kind not in FAULTS:
        raise ValueError(f"unknown fault {kind!r}; one of {', '.join(FAULTS)}")
    port = _port(node)
    if kind == "port-down":
        hpcib.write_value(os.path.join(port, "state"), "1: DOWN")
        hpcib.write_value(os.path.join(port, "phys_state"), "3: Disabled")
        _add(os.path.join(port, "counters", "link_downed"), 1)
    else:
        hpcib.write_value(os.path.join(port, "state"), "4: ACTIVE")
        hpcib.write_value(os.path.join(port, "phys_state"), "5: LinkUp")
    if kind is None:
        if os.path.exists(fault_path(node)):
            os.unlink(fault_path(node))
        return
    with open(fault_path(node), "w", encoding="utf-8") as f:
        f.write(kind + "\n")


def advance(node: Node, jobs: Mapping[str, int] | Iterable[str], now: float | None = None) -> lustre.Sent:
    """One period on a compute node: traffic on its ports, Lustre I/O of ``jobs`` (the Slurm
    jobs running on it: id → uid, or ids of root's jobs), the injected fault's symptom.
    Returns what its Lustre client sent, for the servers (``advance_server``)."""
    fault = current_fault(node)
    _advance_ib(_dir(node, "hpcib"), random.Random())
    if fault == "ib-errors":
        for counter in ("symbol_error", "port_rcv_errors"):
            _add(os.path.join(_port(node), "counters", counter), 50)
    state = lustre_state(node)
    before = {name: fs["osc"][SLOW_OST]["stats"]["req_waittime"][0]
              for name, fs in state["fs"].items() if SLOW_OST in fs["osc"]}
    running = dict(jobs) if isinstance(jobs, Mapping) else dict.fromkeys(jobs, 0)
    sent = lustre.client_step(state, running, node.name, time.time() if now is None else now)
    if fault == "ost-slow":
        for name, fs in state["fs"].items():
            if SLOW_OST in fs["osc"]:   # every RPC of the period waited 3-6 s, the step's own too
                waits = fs["osc"][SLOW_OST]["stats"]["req_waittime"]
                n = random.randrange(50, 100)
                waits[0] += n
                rpcs = waits[0] - before.get(name, waits[0] - n)
                waits[2] += rpcs * random.randrange(3_000_000, 6_000_000)
    _save_lustre(_lustre_root(node), state)
    return sent


def advance_server(node: Node, sent_by_clients: Iterable[lustre.Sent], now: float | None = None) -> None:
    """One period on a Lustre server: what the clients sent to its targets."""
    state = lustre_state(node)
    lustre.server_step(state, sent_by_clients, time.time() if now is None else now)
    _save_lustre(_lustre_root(node), state)
