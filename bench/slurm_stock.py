"""Benchmark: hpcjob against PCP's stock ``slurm`` agent (Perl, libslurm-perl) on one real Slurm.

Both agents run under the real pmcd and watch the same private slurmctld (bench/slurm_scale.py
builds it: ``--nodes`` slurmd-less nodes plus this host, ``--jobs`` squeue lines, two jobs
running on this host).  The stock agent offers a node view only (the running jobs on this host
and the node count), so hpcjob runs its node view too, with the stock agent's period (9 s).

  fetch    round trip through pmcd, interleaved: pmcd.version (the floor), every metric of
           the stock agent, the same number of hpcjob's per-job metrics, all of hpcjob's
  refresh  CPU of each agent process per refresh (user + system, children included: hpcjob's
           squeue runs as a child, the stock agent calls libslurm in-process), each agent
           measured alone over ``--window`` seconds.  hpcjob's refreshes are its own counter
           (hpc.job.agent.refreshes); the stock agent's are the REQUEST_JOB_INFO RPCs that
           slurmctld counted in the window (sdiag), one per poll.

The stock agent needs SLURM_CONF, which pmcd does not pass on: its pmcd.conf line is run
through ``/usr/bin/env SLURM_CONF=...``.  If the stock agent is already installed here the
benchmark refuses to touch it.  Needs root and a running pmcd.  Writes
bench/results/slurm_stock.json.

    .venv/bin/python bench/run.py slurm_stock [--jobs 10000] [--nodes 1000] [--window 60]
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import yaml  # noqa: E402

from bench.harness import interleaved, process_argvs, process_cpu, report  # noqa: E402
from bench.slurm_scale import start_cluster, submit_jobs  # noqa: E402
from hpc_demo.localslurm import LocalSlurm  # noqa: E402
from hpc_pcp import install as installer  # noqa: E402
from tests.harness.pcp import run_pcp, wait_for, wait_refreshed  # noqa: E402

STOCK_DIR = "/var/lib/pcp/pmdas/slurm"
PMCD_CONF = "/etc/pcp/pmcd/pmcd.conf"
STOCK_PERIOD = 9  # seconds: pmdaslurm.pl's poll thread sleeps 9 s between polls


def _stock_installed() -> bool:
    with open(PMCD_CONF, encoding="utf-8") as f:
        return any(line.split()[:1] == ["slurm"] for line in f)


def install_stock(conf: str) -> None:
    env = {**os.environ, "SLURM_CONF": conf, "PATH": "/usr/bin:/bin:/usr/sbin:/sbin"}
    done = subprocess.run(["./Install"], cwd=STOCK_DIR, env=env, capture_output=True, text=True,
                          timeout=180, stdin=subprocess.DEVNULL)
    if done.returncode != 0 or not _stock_installed():
        raise SystemExit(f"stock slurm Install failed:\n{done.stdout}{done.stderr}")
    with open(PMCD_CONF, encoding="utf-8") as f:
        lines = f.readlines()
    with open(PMCD_CONF, "w", encoding="utf-8") as f:
        for line in lines:
            if line.split()[:1] == ["slurm"] and "SLURM_CONF=" not in line:
                line = re.sub(r"\bperl\b", f"/usr/bin/env SLURM_CONF={conf} perl", line, count=1)
            f.write(line)
    assert run_pcp("pmsignal", "-a", "-s", "HUP", "pmcd").returncode == 0
    wait_for(lambda: "value" in run_pcp("pminfo", "-f", "slurm.numnodes").stdout, 60,
             what="the stock slurm agent to answer slurm.numnodes")


def remove_stock(conf: str) -> None:
    """Remove runs the agent's script too, which needs a Slurm configuration to parse."""
    subprocess.run(["./Remove"], cwd=STOCK_DIR, capture_output=True, text=True, timeout=120,
                   env={**os.environ, "SLURM_CONF": conf, "PATH": "/usr/bin:/bin:/usr/sbin:/sbin"})


def install_ours(cluster: LocalSlurm, tmp: str) -> None:
    config = {"scheduler": "slurm", "slurm_conf": cluster.conf, "node_name": cluster.host,
              "cluster_view": False, "interval": STOCK_PERIOD, "timeout": 60,
              "squeue_command": [shutil.which("squeue")], "sinfo_command": [shutil.which("sinfo")],
              "sdiag_command": [shutil.which("sdiag")]}
    path = os.path.join(tmp, "hpcjob.yaml")
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(config, f)
    result = installer.install("hpcjob", extra_args=f"-c {path}")
    if not result.ok:
        raise SystemExit(f"cannot install hpcjob: {result.output}")
    wait_refreshed("hpc.job", 1)


def leaf_metrics(root: str) -> list[str]:
    return run_pcp("pminfo", root).stdout.split()


def agent_pid(marker: bytes) -> int:
    for pid, argv in process_argvs().items():
        if any(marker in arg for arg in argv):
            return pid
    raise SystemExit(f"no process with {marker!r} in its command line")


def job_info_rpcs(cluster: LocalSlurm) -> int:
    """REQUEST_JOB_INFO RPCs slurmctld has served since it started (sdiag)."""
    text = cluster.run("sdiag")
    match = re.search(r"REQUEST_JOB_INFO\s+\(\s*\d+\)\s+count:(\d+)", text)
    if not match:
        raise SystemExit("sdiag shows no REQUEST_JOB_INFO count")
    return int(match.group(1))


def ours_refreshes() -> int:
    out = run_pcp("pmprobe", "-v", "hpc.job.agent.refreshes").stdout.split()
    return int(out[2])


def refresh_cpu(window: float, pid: int, count, cluster: LocalSlurm) -> tuple[float, int]:
    """(CPU seconds per refresh, refreshes) of one agent over ``window`` seconds, while the
    queue changes every 2 s (a job submitted held, then cancelled) as a live queue does: the
    stock agent asks slurmctld for jobs changed since its last poll, and on a quiet queue it
    gets nothing back, which no production queue allows for long."""
    cpu0, n0 = process_cpu(pid, children=True), count()
    deadline = time.monotonic() + window
    while time.monotonic() < deadline:
        job = cluster.sbatch("--hold", "-J", "churn", "--wrap", "true")
        cluster.run("scancel", job)
        time.sleep(2)
    cpu1, n1 = process_cpu(pid, children=True), count()
    refreshes = n1 - n0
    return ((cpu1 - cpu0) / refreshes if refreshes else float("nan")), refreshes


def fetcher(ctx, names: list[str]):
    pmids = ctx.pmLookupName(names)

    def fetch():
        ctx.pmFreeResult(ctx.pmFetch(pmids))
    return fetch


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000, help="lines squeue -r should list")
    parser.add_argument("--nodes", type=int, default=1_000)
    parser.add_argument("--window", type=float, default=60.0, help="seconds per CPU window")
    parser.add_argument("--rounds", type=int, default=300, help="fetch rounds")
    args = parser.parse_args(argv if argv is not None else [])
    if _stock_installed():
        raise SystemExit("PCP's slurm agent is installed here; this benchmark will not touch it")
    import cpmapi as c_api
    from pcp import pmapi

    tmp = tempfile.mkdtemp(prefix="bench-slurm-stock-")
    cluster = None
    try:
        cluster = start_cluster(tmp, args.nodes, args.jobs)
        submitted = submit_jobs(cluster, args.jobs)
        print(f"cluster: {args.nodes} nodes, {submitted}")
        cluster.wait_for(lambda: len(cluster.run("squeue", "-h", "-t", "R", "-w", cluster.host,
                                                 "-o", "%i").split()) == 2, 60, "two jobs running")
        install_ours(cluster, tmp)
        install_stock(cluster.conf)
        ctx = pmapi.pmContext(c_api.PM_CONTEXT_HOST, "local:")
        wait_for(lambda: run_pcp("pminfo", "-f", "slurm.node.job.id").stdout.count("inst [") == 2,
                 60, what="the stock agent to list the 2 jobs")
        wait_for(lambda: run_pcp("pminfo", "-f", "hpc.job.job.state").stdout.count('"running"') == 2, 60,
                 what="hpcjob to list the 2 jobs")
        stock = leaf_metrics("slurm")
        ours_all = leaf_metrics("hpc.job.job")
        ours_same = ours_all[:len(stock)]
        samples = interleaved({
            "pmcd (pmcd.version)": fetcher(ctx, ["pmcd.version"]),
            f"stock slurm ({len(stock)} metrics)": fetcher(ctx, stock),
            f"hpcjob ({len(ours_same)} job metrics)": fetcher(ctx, ours_same),
            f"hpcjob ({len(ours_all)} job metrics)": fetcher(ctx, ours_all),
        }, args.rounds)

        # Refresh CPU, one agent at a time (each agent's poll also loads slurmctld).
        stock_pid = agent_pid(b"pmdaslurm.pl")
        ours_pid = agent_pid(b"pmdas.hpcjob")
        os.kill(ours_pid, 19)  # SIGSTOP: hpcjob quiet while the stock agent is measured
        try:
            stock_cpu, stock_n = refresh_cpu(args.window, stock_pid, lambda: job_info_rpcs(cluster),
                                             cluster)
        finally:
            os.kill(ours_pid, 18)  # SIGCONT
        os.kill(stock_pid, 19)
        try:
            ours_cpu, ours_n = refresh_cpu(args.window, ours_pid, ours_refreshes, cluster)
        finally:
            os.kill(stock_pid, 18)
        cpu = {"stock_cpu_per_refresh_s": stock_cpu, "stock_refreshes": stock_n,
               "hpcjob_cpu_per_refresh_s": ours_cpu, "hpcjob_refreshes": ours_n,
               "cpu_ratio_hpcjob_to_stock": ours_cpu / stock_cpu if stock_cpu else None,
               "stock_metrics": stock, "hpcjob_metrics": ours_all}
        print(f"\nrefresh CPU (node view, {args.window:g} s windows): stock {stock_cpu * 1e3:.1f} ms "
              f"over {stock_n} polls, hpcjob {ours_cpu * 1e3:.1f} ms over {ours_n} refreshes: "
              f"ratio {cpu['cpu_ratio_hpcjob_to_stock']}")
        return report("slurm_stock", samples, anchor="pmcd (pmcd.version)", unit="ms",
                      notes=f"same real slurmctld ({args.nodes} nodes, {args.jobs} squeue lines, 2 running "
                            "here); fetch ratio = median round trip / pmcd.version's, interleaved",
                      extra=cpu)
    finally:
        if cluster is not None:
            remove_stock(cluster.conf)
        installer.remove("hpcjob")
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
