"""Benchmark: one cluster-view refresh of hpcjob against a real slurmctld loaded to scale.

The bare cost of "running the source commands themselves" is what a real squeue, sinfo and
sdiag cost against a controller holding that many jobs and nodes, not what ``cat`` costs
(bench/job_refresh.py keeps that comparison).  This starts a private munge + slurmctld +
slurmd (tests/services/slurm.py) whose slurm.conf also defines ``--nodes`` nodes that no
slurmd answers for (they show as idle*, then down*; some are drained or set down by
scontrol), and submits jobs until ``squeue -r`` lists ``--jobs`` lines:

  - most are single jobs kept pending: held (JobHeldUser), deferred (BeginTime) or waiting
    on a held job (Dependency), with varied CPUs, memory, time limits, names, accounts;
  - some are held job arrays of 1,000 tasks: one record in slurmctld, one line per task
    with ``squeue -r`` (the agent's instances are per task);
  - two run on the one real node, a few have finished (failed or completed).

Nothing can run on nodes without slurmd, so the queue is almost all pending: its lines
lack node lists and start times, which makes each line cheaper for squeue to print, and
they do not change between refreshes, so after the first refresh the agent's parser
finds nearly all of them already known (a real queue has running jobs whose clocks move:
bench/job_refresh.py has 55 %).  The first refresh after start, every line new, is
reported apart.

Then it measures, interleaved round by round:

  bare     the agent's own squeue/sinfo/sdiag argv (same options, same SLURM_CONF), run
           concurrently as the agent's refresh runs them, output read in full
  refresh  Refresher(JobAgent).refresh_once() against the same controller
  + glue   refresh_once followed by the PCP glue's prepare (when PCP's Python is here)

and the fetch latency while refreshes run, with a refresh thread and with the refresh process
(bench/job_refresh.py explains how).

Prints a table and writes bench/results/slurm_scale.json.  Usage:
    .venv/bin/python bench/slurm_scale.py [--jobs 50000] [--nodes 5000] [--rounds 15]
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.harness import interleaved, report  # noqa: E402
from bench.job_refresh import (  # noqa: E402
    clear_parse_caches,
    fetch_latency,
    fetch_latency_process,
    make_pmda,
    print_fetch,
)
from hpc_demo.localslurm import SLURMCTLD, LocalSlurm, free_port  # noqa: E402
from pmdas.common.config import COMMON_OPTIONS, Config, validate  # noqa: E402
from pmdas.common.refresh import Refresher  # noqa: E402
from pmdas.hpcjob.collector import JobAgent  # noqa: E402

PARTITIONS = ("batch", "gpu", "bigmem", "short")
ARRAY_TASKS = 1000


def scale_conf(nodes: int, max_jobs: int) -> str:
    """slurm.conf lines for ``nodes`` slurmd-less nodes in four partitions.

    The nodes point at a port nothing listens on, so slurmctld's pings fail at once
    instead of waiting for timeouts."""
    dead_port = free_port()
    per = max(1, nodes // len(PARTITIONS))
    lines = [f"MaxJobCount={max_jobs}", f"MaxArraySize={ARRAY_TASKS + 1}"]
    for k, name in enumerate(PARTITIONS):
        first, last = k * per + 1, nodes if k == len(PARTITIONS) - 1 else (k + 1) * per
        hosts = f"cn[{first:04d}-{last:04d}]"
        gres = " Gres=gpu:4" if name == "gpu" else ""
        lines += [f"NodeName={hosts} NodeAddr=127.0.0.1 Port={dead_port} CPUs=64 RealMemory=256000"
                  f"{gres} State=UNKNOWN",
                  f"PartitionName={name} Nodes={hosts} MaxTime=7-00:00:00 State=UP"]
    return "\n".join(lines) + "\n"


def start_cluster(directory: str, nodes: int, jobs: int) -> LocalSlurm:
    cluster = LocalSlurm(directory, extra_conf=scale_conf(nodes, jobs + 10_000))
    cluster.start()
    # A few node states beyond "not responding": drained and down by an admin.
    tenth = max(1, nodes // 10)
    cluster.run("scontrol", "update", f"nodename=cn[0001-{tenth:04d}]", "state=drain",
                "reason=bench drain")
    cluster.run("scontrol", "update", f"nodename=cn[{tenth + 1:04d}-{tenth + tenth // 2:04d}]",
                "state=down", "reason=bench down")
    return cluster


def _sbatch_args(k: int, rng: random.Random, held_ids: list[str]) -> list[str]:
    """Options of the k-th single job: pending for one of three reasons, varied shape."""
    partition = PARTITIONS[k % len(PARTITIONS)]
    cpus = rng.choice((1, 1, 2, 4, 8, 16, 64))
    args = ["-p", partition, "-n", str(cpus), f"--mem-per-cpu={rng.choice((500, 2000, 4000))}",
            "-t", rng.choice(("30", "2:00:00", "1-00:00:00", "3-00:00:00")),
            "-J", f"sim-{k % 997}-é", f"--account=acct{k % 90:02d}"]
    why = k % 10
    if why < 6 or not held_ids:
        args.append("--hold")
    elif why < 9:
        args.append("--begin=now+1day")
    else:
        args.append(f"--dependency=afterok:{rng.choice(held_ids)}")
    if partition == "gpu":
        args.append("--gres=gpu:1")
    return args


def submit_jobs(cluster: LocalSlurm, lines: int, workers: int = 4,
                progress: Callable[[str], None] = print) -> dict[str, int]:
    """Submit until ``squeue -r`` lists about ``lines`` lines; returns what was submitted."""
    arrays = lines // 10 // ARRAY_TASKS          # about a tenth of the lines are array tasks
    # Finished and running jobs on the one real node first (it has 2 CPUs).
    cluster.sbatch("-J", "done-fail", "-p", "debug", "--wrap", "exit 3")
    cluster.sbatch("-J", "done-ok", "-p", "debug", "--wrap", "true")
    cluster.wait_for(lambda: not cluster.run("squeue", "-h", "-t", "PD,R,CG", "-o", "%i"), 60,
                     "the short jobs did not finish")
    for _ in range(2):
        cluster.sbatch("-J", "running", "-p", "debug", "--mem=100", "--wrap", "sleep 100000")
    for a in range(arrays):
        cluster.sbatch("-J", f"sweep-{a}", "-p", PARTITIONS[a % len(PARTITIONS)], "--hold",
                       f"--array=0-{ARRAY_TASKS - 1}", "--wrap", "true")
    held_ids = [cluster.sbatch("-p", "batch", "--hold", "-J", "parent", "--wrap", "true")
                for _ in range(20)]
    singles = max(0, lines - arrays * ARRAY_TASKS - 4 - len(held_ids))
    started = time.monotonic()

    def one(k: int) -> None:
        cluster.sbatch(*_sbatch_args(k, random.Random(k), held_ids), "--wrap", "true")

    with ThreadPoolExecutor(workers) as pool:
        for done, _ in enumerate(pool.map(one, range(singles)), 1):
            if done % 5000 == 0:
                progress(f"  {done} single jobs submitted ({done / (time.monotonic() - started):.0f}/s)")
    return {"array_tasks": arrays * ARRAY_TASKS, "arrays": arrays, "single_jobs": singles + len(held_ids),
            "running": 2, "finished": 2}


def agent_options(cluster: LocalSlurm, timeout: float = 120.0) -> dict:
    return dict(scheduler="slurm", cluster_view=True, slurm_conf=cluster.conf,
                node_name=cluster.host, timeout=timeout, root=cluster.dir,
                squeue_command=[shutil.which("squeue")], sinfo_command=[shutil.which("sinfo")],
                sdiag_command=[shutil.which("sdiag")])


def make_agent(cluster: LocalSlurm, timeout: float = 120.0) -> JobAgent:
    options = agent_options(cluster, timeout)
    return JobAgent(Config(validate(options, {**COMMON_OPTIONS, **JobAgent.options}, "bench"), None))


def bare_commands(agent: JobAgent) -> Callable[[], list[bytes]]:
    """The agent's own source commands, run concurrently the way its refresh runs them."""
    argvs = list(agent.scheduler_commands().values())
    env = {**os.environ, "SLURM_CONF": agent.config.slurm_conf}

    def run() -> list[bytes]:
        with ThreadPoolExecutor(len(argvs)) as pool:
            return list(pool.map(lambda argv: subprocess.run(
                argv, capture_output=True, env=env, stdin=subprocess.DEVNULL, check=True).stdout,
                argvs))
    return run


def first_refresh(agent: JobAgent, directory: str) -> float:
    """A refresh as the first after the agent starts: every line parsed, every instance new."""
    clear_parse_caches()
    fresh = JobAgent(agent.config)
    started = time.perf_counter()
    Refresher(fresh, state_dir=directory).refresh_once()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=50_000, help="lines squeue -r should list")
    parser.add_argument("--nodes", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--workers", type=int, default=4, help="concurrent sbatch processes")
    parser.add_argument("--fetch-seconds", type=float, default=8.0,
                        help="length of each fetch-latency phase (0: skip)")
    args = parser.parse_args(argv if argv is not None else [])
    if not os.path.exists(SLURMCTLD):
        raise SystemExit("slurmctld is not installed (Debian package slurm-wlm)")
    directory = tempfile.mkdtemp(prefix="hpc-slurm-scale-")
    cluster = None
    try:
        started = time.monotonic()
        cluster = start_cluster(directory, args.nodes, args.jobs)
        print(f"controller up with {args.nodes} more nodes in {time.monotonic() - started:.1f} s")
        started = time.monotonic()
        submitted = submit_jobs(cluster, args.jobs, args.workers)
        submit_seconds = time.monotonic() - started
        print(f"submitted {submitted} in {submit_seconds:.0f} s")
        agent = make_agent(cluster)
        agent.prepare_process()              # as in the agent's own process
        bare = bare_commands(agent)
        outputs = bare()
        cold = first_refresh(agent, os.path.join(directory, "cold-state"))
        refresher = Refresher(agent, state_dir=os.path.join(directory, "agent-state"))
        pmda = make_pmda(agent)
        published = refresher.refresh_once()
        values = published.values
        assert values["hpc.job.agent.up"] == 1, values["hpc.job.agent.last_error"]
        variants = {"bare: the agent's squeue+sinfo+sdiag": bare,
                    "hpcjob refresh_once": refresher.refresh_once}
        if pmda is not None:
            variants["refresh_once + PCP glue prepare"] = lambda: pmda.prepare(refresher.refresh_once())
        samples = interleaved(variants, rounds=args.rounds, warmup=1)
        anchor = samples["bare: the agent's squeue+sinfo+sdiag"]
        paired = {name: round(statistics.median(v / b for v, b in zip(values, anchor, strict=True)), 3)
                  for name, values in samples.items()}   # round by round: robust to a drifting load
        print(f"median of per-round ratios: {paired}")
        fetch = None
        if pmda is not None and args.fetch_seconds > 0:
            fetch = [fetch_latency(Refresher(agent, state_dir=os.path.join(directory, "agent-state"),
                                             on_publish=pmda.prepare), pmda, args.fetch_seconds),
                     fetch_latency_process(agent, agent_options(cluster), pmda, directory,
                                           args.fetch_seconds, lambda: None)]
            for row in fetch:
                print_fetch(row)
        extra = {
            "jobs_requested": args.jobs, "nodes": args.nodes, "submitted": submitted,
            "submit_seconds": round(submit_seconds), "squeue_lines": outputs[0].count(b"\n"),
            "output_bytes": dict(zip(agent.scheduler_commands(), map(len, outputs), strict=True)),
            "jobs_published": len(values["hpc.job.job.state"]),
            "job_states": {s: sum((values[f"hpc.job.partition.jobs.{s}"] or {}).values())
                           for s in ("running", "pending", "held", "completed", "failed")},
            "node_states": {s: values[f"hpc.job.nodes.{s}"] for s in
                            ("idle", "allocated", "mixed", "down", "drain", "other")},
            "first_refresh_seconds": round(cold, 3),
            "argv": agent.scheduler_commands(), "fetch_latency": fetch, "target_ratio": 1.3,
            "median_of_round_ratios": paired,
        }
        return report("slurm_scale", samples, anchor="bare: the agent's squeue+sinfo+sdiag", unit="s",
                      notes=f"real slurmctld 22.05 with {extra['squeue_lines']} squeue -r lines and "
                            f"{args.nodes} slurmd-less nodes; nearly every job pending or held; first "
                            f"refresh after start (every line new) {cold:.3f} s",
                      extra=extra)
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
