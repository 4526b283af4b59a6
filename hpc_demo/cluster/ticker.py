"""The cluster's clock, run on the head node: every few seconds the job mix is topped up
(single-node jobs, and jobs spanning two nodes with a task on each through srun), each
compute node's sources move on with the jobs running there, then each Lustre server counts
what the compute nodes' clients sent it in that period.

    python -m hpc_demo.cluster.ticker --nodes 3 --servers 1 --every 5
"""
from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time

from ClusterShell.NodeSet import NodeSet

from . import sources
from .layout import DEFAULT_SERVERS, computes, plan, servers
from .slurm import CONF

JOBS_PER_NODE = 2   # running or pending at a time (they sleep: nothing for the 2 cores)


def slurm(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, timeout=20, check=True,
                          env={**os.environ, "SLURM_CONF": CONF}).stdout


def running_by_node() -> tuple[dict[str, dict[str, int]], int]:
    """The jobs running on each node (job id → its user's uid), and how many jobs are
    active (running or pending)."""
    by_node: dict[str, dict[str, int]] = {}
    active = 0
    for line in slurm("squeue", "-h", "-t", "R,PD", "-o", "%i %t %U %N").splitlines():
        job, state, uid, *nodes = line.split()
        active += 1
        if state == "R" and nodes:
            for name in NodeSet(nodes[0]):
                by_node.setdefault(name, {})[job] = int(uid)
    return by_node, active


def top_up(active: int, nodes: int, rng: random.Random) -> None:
    for _ in range(max(0, JOBS_PER_NODE * nodes - active)):
        span = 2 if nodes >= 2 and rng.random() < 0.4 else 1
        name = rng.choice(("cfd-mesh", "md-run", "climate-ens", "qc-scf"))
        seconds = rng.randint(30, 120)
        slurm("sbatch", "-J", name, "-N", str(span), "-n", str(span), "-o", "/dev/null",
              "--wrap", f"srun sleep {seconds}" if span > 1 else f"sleep {seconds}")


def tick(nodes: int, rng: random.Random, lustre_servers: int = DEFAULT_SERVERS) -> None:
    by_node, active = running_by_node()
    top_up(active, nodes, rng)
    layout = plan(nodes, lustre_servers)
    now = time.time()
    sent = [sources.advance(node, by_node.get(node.name, {}), now) for node in computes(layout)]
    for server in servers(layout):
        sources.advance_server(server, sent, now)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hpc_demo.cluster.ticker")
    parser.add_argument("--nodes", type=int, required=True)
    parser.add_argument("--servers", type=int, default=DEFAULT_SERVERS)
    parser.add_argument("--every", type=float, default=5)
    args = parser.parse_args(argv)
    rng = random.Random()
    while True:   # ends with the head node
        try:
            tick(args.nodes, rng, args.servers)
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            print(f"tick failed: {exc}", file=sys.stderr, flush=True)
        time.sleep(args.every)


if __name__ == "__main__":
    raise SystemExit(main())
