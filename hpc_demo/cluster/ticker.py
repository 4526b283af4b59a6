"""The cluster's clock, run on the head node: every few seconds each compute node's sources
move on and the job mix is topped up (single-node jobs and jobs spanning two nodes).

    python -m hpc_demo.cluster.ticker --nodes 3 --every 5
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
from .layout import computes, plan
from .slurm import CONF

JOBS_PER_NODE = 2   # running or pending at a time (they sleep: nothing for the 2 cores)


def slurm(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, timeout=20, check=True,
                          env={**os.environ, "SLURM_CONF": CONF}).stdout


def running_by_node() -> tuple[dict[str, list[str]], int]:
    """Job ids running on each node, and how many jobs are active (running or pending)."""
    by_node: dict[str, list[str]] = {}
    active = 0
    for line in slurm("squeue", "-h", "-t", "R,PD", "-o", "%i %t %N").splitlines():
        job, state, *nodes = line.split()
        active += 1
        if state == "R" and nodes:
            for name in NodeSet(nodes[0]):
                by_node.setdefault(name, []).append(job)
    return by_node, active


def top_up(active: int, nodes: int, rng: random.Random) -> None:
    for _ in range(max(0, JOBS_PER_NODE * nodes - active)):
        span = 2 if nodes >= 2 and rng.random() < 0.4 else 1
        name = rng.choice(("cfd-mesh", "md-run", "climate-ens", "qc-scf"))
        slurm("sbatch", "-J", name, "-N", str(span), "-n", str(span), "-o", "/dev/null",
              "--wrap", f"sleep {rng.randint(30, 120)}")


def tick(nodes: int, rng: random.Random) -> None:
    by_node, active = running_by_node()
    top_up(active, nodes, rng)
    for node in computes(plan(nodes)):
        sources.advance(node, by_node.get(node.name, []))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hpc_demo.cluster.ticker")
    parser.add_argument("--nodes", type=int, required=True)
    parser.add_argument("--every", type=float, default=5)
    args = parser.parse_args(argv)
    rng = random.Random()
    while True:   # ends with the head node
        try:
            tick(args.nodes, rng)
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            print(f"tick failed: {exc}", file=sys.stderr, flush=True)
        time.sleep(args.every)


if __name__ == "__main__":
    raise SystemExit(main())
