"""Demo node hook: hpcjob against a real, private one-node Slurm with a moving job mix.

``prepare`` starts munge, slurmctld and slurmd under the demo directory (see
:mod:`hpc_demo.localslurm`) and submits a mix of jobs: running, pending on
resources, held, an array, one that fails.  Where cgroup v1 controllers are
mounted, jobs run in their cgroups (proctrack/cgroup) and the agent reports their
real CPU time and memory.  ``advance`` keeps the queue moving
(new jobs as old ones end), ``teardown`` cancels the jobs and stops the daemons.
"""
from __future__ import annotations

import os
import random
import subprocess

from hpc_demo.localslurm import LocalSlurm, SlurmError, cgroup_v1_available

QUEUE_DEPTH = 6  # jobs the demo keeps queued or running


def cluster(directory: str) -> LocalSlurm:
    """The demo's private Slurm under the hpcjob demo directory."""
    return LocalSlurm(os.path.join(directory, "slurm"), cluster="demo", cgroups=cgroup_v1_available())


def _submit(cluster: LocalSlurm, rng: random.Random, k: int) -> None:
    seconds = rng.randint(20, 120)
    args = ["-J", rng.choice(("cfd-mesh", "md-run", "climate-ens", "qc-scf", "genome-align")),
            "-p", rng.choice(("debug", "debug", "long")), "-n", "1",
            f"--mem-per-cpu={rng.choice((100, 200, 400))}", "-t", "10"]
    if k % 5 == 4:  # a job that fails, so exit states show up
        args += ["--wrap", f"sleep {seconds // 4}; exit 3"]
    else:  # holds some memory and uses a little CPU, so the job's cgroup has something to show
        mib = rng.choice((16, 32, 64))
        args += ["--wrap", f"python3 -c 'import time; b = b\"x\" * ({mib} << 20); "
                 f"sum(range(3_000_000)); time.sleep({seconds})'"]
    cluster.sbatch(*args)


def prepare(directory: str) -> dict:
    slurm = cluster(directory)
    fresh = not slurm.running()
    slurm.start()
    if fresh:
        rng = random.Random(7)
        for k in range(QUEUE_DEPTH):
            _submit(slurm, rng, k)
        slurm.sbatch("-J", "post-process", "--hold", "--wrap", "sleep 60")
        slurm.sbatch("-J", "param-sweep", "--array=0-3", "-n", "1", "--wrap", "sleep 45")
        slurm.sbatch("-J", "next-week", "--begin=now+7days", "--wrap", "sleep 60")
    return {"scheduler": "slurm", "slurm_conf": slurm.conf, "node_name": slurm.host,
            "cluster_view": True, "interval": 2}


def advance(directory: str) -> None:
    slurm = cluster(directory)
    if not slurm.running():
        return
    active = slurm.run("squeue", "-h", "-t", "R,PD", "-o", "%i").split()
    rng = random.Random()
    for _ in range(max(0, QUEUE_DEPTH + 3 - len(active))):
        _submit(slurm, rng, rng.randrange(10))


def running_jobs(directory: str) -> list[str]:
    """Ids of the jobs running in the demo's Slurm now; none if it is not running."""
    slurm = cluster(directory)
    try:
        return slurm.run("squeue", "-h", "-t", "R", "-o", "%i", timeout=10).split() \
            if slurm.running() else []
    except (SlurmError, OSError, subprocess.SubprocessError):
        return []


def teardown(directory: str) -> None:
    cluster(directory).stop()
