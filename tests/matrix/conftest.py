"""The version matrix: one node per Debian release, each with that release's Slurm, PCP and
bpftrace (tests/matrix/node.py).  ``HPC_PCP_MATRIX=sid`` (comma-separated) runs some only.

Each release's node is started once for the tests of this directory: its Slurm runs a job
mix first (exit codes, a signal, an array, typed GPUs), then pmcd and pmproxy start and the
agents are installed into that pmcd on the root's own Python and PCP bindings.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import pytest

from .node import VersionNode, build_root, versions

RELEASES = ("bookworm", "trixie", "sid")   # Debian 12, 13, unstable
AGENTS_ON_DEFAULTS = ("hpcib", "hpclustre", "hpcsample", "hpcdtn", "hpcalarm")


def chosen() -> list[str]:
    wanted = os.environ.get("HPC_PCP_MATRIX", "")
    names = [r.strip() for r in wanted.split(",") if r.strip()] or list(RELEASES)
    unknown = set(names) - set(RELEASES)
    if unknown:
        raise pytest.UsageError(f"HPC_PCP_MATRIX names unknown releases: {sorted(unknown)}")
    return names


@dataclass
class MatrixNode:
    node: VersionNode
    versions: dict[str, str]
    jobs: dict[str, str] = field(default_factory=dict)   # what the job was → Slurm job id
    install_output: dict[str, str] = field(default_factory=dict)


def _job_mix(node: VersionNode) -> dict[str, str]:
    jobs = {
        "exit3": node.sbatch("--wrap", "exit 3"),
        "signal9": node.sbatch("--wrap", "kill -9 $$"),
        "completed": node.sbatch("--wrap", "true"),
        "array": node.sbatch("--array=0-1", "--wrap", "sleep 600"),
        "gpu": node.sbatch("--gres=gpu:a100:1", "--wrap", "sleep 600"),
        "busy": node.sbatch("--wrap", "exec python3 -c 'while True: pass'"),
    }
    finished = (jobs["exit3"], jobs["signal9"], jobs["completed"])

    def ended() -> bool:
        out = node.run("squeue", "-h", "-t", "all", "-o", "%i %T", check=False).stdout
        states = dict(line.split() for line in out.splitlines() if line.strip())
        return all(states.get(j) in ("FAILED", "COMPLETED") for j in finished)
    node.wait(ended, 60, "the short jobs to end")
    return jobs


@pytest.fixture(scope="module", params=chosen())
def matrix_node(request):
    release = request.param
    started = time.monotonic()
    root = build_root(release)
    node = VersionNode(release, root)
    node.start()
    try:
        node.start_slurm()
        result = MatrixNode(node, versions(root))
        result.jobs = _job_mix(node)
        node.start_pmcd()
        result.install_output["hpcjob"] = node.install_agent("hpcjob", "cluster_view: true\n")
        result.install_output["hpcbpftrace"] = node.install_agent("hpcbpftrace")
        for agent in AGENTS_ON_DEFAULTS:
            result.install_output[agent] = node.install_agent(agent)
        node.start_pmproxy()
        print(f"\n[matrix] {release}: {result.versions} up in {time.monotonic() - started:.0f} s")
        yield result
    finally:
        node.stop()
        left = node.leftovers()
        assert not left, f"{release} left behind: {left}"
