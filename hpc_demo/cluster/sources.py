"""Each compute node's moving sources (Lustre, InfiniBand trees, its Slurm jobs), its
agents' settings, and the faults an admin can inject on one node.

The trees are the ones the demo node uses (hpc_demo.hpcib, hpc_demo.hpclustre), one per
node with the node's own seed; Lustre job_stats follow the Slurm jobs running on that
node, with the host-suffixed job ids of ``jobid_name=%j:%u:%H``.
"""
from __future__ import annotations

import json
import os
import random

from hpc_demo import hpcib, hpclustre
from pmdas.hpcib.sysfs import CLASS_DIR

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


def prepare(node: Node, index: int) -> dict[str, dict]:
    """Build the node's trees; return each agent's settings."""
    ib, lustre = _dir(node, "hpcib"), os.path.join(_dir(node, "hpclustre"), "tree")
    hpcib.build(ib, hcas=2, ports=1, seed=index)
    state = hpclustre.new_state(2, 4, 2, 10, "2.15", seed=index)
    _save_lustre(lustre, state)
    return {"hpcib": {"root": ib},
            "hpclustre": {"root": lustre, "interval": 5, "job_limit": 50},
            "hpcjob": {"scheduler": "slurm", "slurm_conf": CONF, "node_name": node.name,
                       "cluster_view": False, "interval": 2},
            # No curated script runs at start: N nodes share one kernel and 2 cores, and every
            # bpftrace would see the whole machine; an admin adds or enables one live (pmstore).
            BPFTRACE: {"script_dir": script_dir(node), "enabled": [], "interval": 2}}


def script_dir(node: Node) -> str:
    """The node's admin-added bpftrace scripts (the host's default directory is not the node's)."""
    return os.path.join(node.directory, "bpftrace")


def _save_lustre(root: str, state: dict) -> None:
    hpclustre.write_tree(root, state)
    with open(os.path.join(root, hpclustre.STATE), "w", encoding="utf-8") as f:
        json.dump(state, f)


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


def advance(node: Node, jobs: list[str]) -> None:
    """One period on the node: traffic on its ports, Lustre I/O (``jobs`` are the Slurm jobs
    running on it), and the injected fault's symptom."""
    fault = current_fault(node)
    _advance_ib(_dir(node, "hpcib"), random.Random())
    if fault == "ib-errors":
        for counter in ("symbol_error", "port_rcv_errors"):
            _add(os.path.join(_port(node), "counters", counter), 50)
    root = os.path.join(_dir(node, "hpclustre"), "tree")
    with open(os.path.join(root, hpclustre.STATE), encoding="utf-8") as f:
        state = json.load(f)
    before = {name: fs["osc"][SLOW_OST]["stats"]["req_waittime"][0]
              for name, fs in state["fs"].items() if SLOW_OST in fs["osc"]}
    hpclustre.step(state, tuple(jobs), node.name)
    if fault == "ost-slow":
        for name, fs in state["fs"].items():
            if SLOW_OST in fs["osc"]:   # every RPC of the period waited 3-6 s, the step's own too
                waits = fs["osc"][SLOW_OST]["stats"]["req_waittime"]
                n = random.randrange(50, 100)
                waits[0] += n
                rpcs = waits[0] - before.get(name, waits[0] - n)
                waits[2] += rpcs * random.randrange(3_000_000, 6_000_000)
    _save_lustre(root, state)
