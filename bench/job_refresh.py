"""Benchmark: one cluster-view refresh of hpcjob on 50,000 jobs and 5,000 nodes (fake commands).

Generates squeue/sinfo/sdiag output in Slurm 22.05's exact formats and serves it by fake
commands (shell scripts that cat files).  The queue moves between refreshes as a real one
does: running jobs' used and left times advance by one interval, 100 jobs leave and 100
new ones arrive; pending and finished jobs' lines stay the same.  Compared in one run,
round by round:

  bare (cat)       the same three commands run concurrently, output read in full.
                   This is what cat costs, not what squeue costs: bench/slurm_scale.py
                   measures against a real slurmctld holding as many jobs.
  refresh_once     Refresher(JobAgent).refresh_once(): commands + parsing + tallies +
                   metric table + stable instance numbering (saved to a state dir)
  pmda prepare     what the PCP glue adds on every refresh (values by instance id,
                   instance arrays, label JSON); measured when PCP's Python is installed

It also reports the first refresh after start (every line and every instance new) and
the fetch latency while refreshes run back to back (see fetch_latency below), at Python's
default GIL switch interval (5 ms), at hpcjob's (switch_interval, 1 ms) and at 0.2 ms.

Prints a table and writes bench/results/job_refresh.json.  Usage:
    .venv/bin/python bench/job_refresh.py [--jobs 50000] [--nodes 5000] [--rounds 5]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import yaml

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pmdas.common.config import COMMON_OPTIONS, Config, validate  # noqa: E402
from pmdas.common.refresh import Refresher  # noqa: E402
from pmdas.hpcjob import model, slurm  # noqa: E402
from pmdas.hpcjob.collector import JobAgent  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE_SDIAG = os.path.join(HERE, "..", "tests", "fixtures", "slurm", "sdiag-22.05.txt")
PARTITIONS = ("cpu", "gpu", "long", "debug")
REASONS = ("Priority", "Resources", "Dependency", "QOSMaxJobsPerUserLimit", "BeginTime",
           "JobHeldUser", "ReqNodeNotAvail, UnavailableNodes:cn[0001-0004]")
CHURN = 100          # jobs leaving and arriving per refresh
INTERVAL = 30        # seconds between refreshes, for the running jobs' clocks


def _clock(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    text = f"{rest // 3600}:{rest // 60 % 60:02d}:{rest % 60:02d}"
    return f"{days}-{text}" if days else text


class FakeQueue:
    """A queue of jobs in squeue -O format whose clocks and membership move per tick."""

    def __init__(self, jobs: int, nodes: int):
        self.jobs, self.nodes = jobs, nodes
        self._shapes: dict[int, tuple] = {}

    def _shape(self, i: int) -> tuple:
        shape = self._shapes.get(i)
        if shape is None:
            shape = self._shapes[i] = self._new_shape(i)
        return shape

    def _new_shape(self, i: int) -> tuple:
        rng = random.Random(i)
        state = rng.choices(("RUNNING", "PENDING", "COMPLETED", "FAILED", "CANCELLED"),
                            (55, 35, 5, 3, 2))[0]
        n = rng.choice((1, 1, 1, 2, 4, 16))
        first = rng.randrange(1, max(2, self.nodes - n))
        node_list = "" if state == "PENDING" else (
            f"cn{first:04d}" if n == 1 else f"cn[{first:04d}-{first + n - 1:04d}]")
        cpus = n * rng.choice((1, 8, 64))
        gpus = rng.choice((0, 0, 0, 4))
        alloc = f"cpu={cpus},mem={cpus * 4000}M,node={n},billing={cpus}" + (
            f",gres/gpu={gpus * n}" if gpus else "")
        reason = rng.choice(REASONS) if state == "PENDING" else "None"
        return (state, n, cpus, gpus, alloc, reason, node_list, rng.randrange(60, 80000),
                rng.choice(PARTITIONS))

    def squeue_text(self, tick: int) -> str:
        lines = []
        for i in range(tick * CHURN, tick * CHURN + self.jobs):
            state, n, cpus, gpus, alloc, reason, node_list, used, partition = self._shape(i)
            job_id = str(1_000_000 + i)
            if state == "RUNNING":
                used += tick * INTERVAL
                times = ("2026-11-20T08:05:00", _clock(used), _clock(max(0, 86400 - used)))
            elif state == "PENDING":
                times = ("N/A", "0:00", "1-00:00:00")
            else:
                times = ("2026-11-20T08:05:00", _clock(used), "0:00")
            lines.append("|".join((
                job_id, job_id, job_id, "N/A", state, f"user{i % 700:03d}", f"acct{i % 90:02d}",
                partition, str(n), str(cpus), alloc, f"gres:gpu:{gpus}" if gpus else "N/A",
                "2026-11-20T08:00:00", times[0], "2026-11-21T08:05:00", times[1], "1-00:00:00",
                times[2], reason, "256" if state == "FAILED" else "0", node_list, f"job-{i}-é")))
        return "\n".join(lines) + "\n"

    def sinfo_text(self) -> str:
        rng = random.Random(42)
        lines = []
        for i in range(1, self.nodes + 1):
            state = rng.choices(("allocated", "mixed", "idle", "down*", "drained", "draining"),
                                (60, 20, 12, 3, 3, 2))[0]
            gres = "gpu:a100:4(S:0-1)" if i % 5 == 0 else "(null)"
            used = "gpu:a100:2(IDX:0-1)" if i % 5 == 0 else "(null)"
            lines.append(f"cn{i:04d}|{PARTITIONS[i % 4]}|{state}|32/32/0/64|{gres}|{used}|256000|"
                         "128000|none")
        return "\n".join(lines) + "\n"


def write_command(directory: str, name: str, text: str) -> str:
    data = os.path.join(directory, f"{name}.txt")
    with open(data, "w", encoding="utf-8") as f:
        f.write(text)
    script = os.path.join(directory, name)
    with open(script, "w") as f:
        f.write(f"#!/bin/sh\nexec cat '{data}'\n")
    os.chmod(script, 0o755)
    return script


def bare(commands: list[list[str]], env: dict | None = None) -> float:
    """Run the commands concurrently, as the agent's sources do, and read all their output."""
    started = time.perf_counter()
    with ThreadPoolExecutor(len(commands)) as pool:
        list(pool.map(lambda argv: subprocess.run(argv, capture_output=True, env=env, check=True,
                                                  stdin=subprocess.DEVNULL).stdout, commands))
    return time.perf_counter() - started


def make_pmda(agent: JobAgent):
    """The PCP glue, built offline (no pmcd), or None when PCP's Python is not installed."""
    try:
        from pmdas.common.pmda import HpcPMDA
    except ImportError:
        return None
    return HpcPMDA(agent)


def clear_parse_caches() -> None:
    """Forget what the parsers cached, as after a restart."""
    for module in (slurm, model):
        for value in vars(module).values():
            if hasattr(value, "cache_clear"):
                value.cache_clear()


# -- fetch latency while a refresh runs ------------------------------------------------
# A pmcd request arrives on a pipe; libpcp_pmda waits for it with the GIL released, takes
# the GIL, runs the Python callbacks (refresh per cluster, then fetch per value) and answers.
# Here a client process plays pmcd: it writes a byte, waits for the answer and times the
# round trip, at random 2-10 ms gaps.  Idle first, then while refreshes run back to back
# in another thread of the agent's process, as the agent's refresh thread runs them.

_CLIENT = r"""
import json, os, random, sys, time
request, answer, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
rng, latencies, end = random.Random(1), [], time.monotonic() + seconds
while time.monotonic() < end:
    time.sleep(rng.uniform(0.002, 0.010))
    started = time.perf_counter()
    os.write(request, b"f")
    os.read(answer, 1)
    latencies.append(time.perf_counter() - started)
os.write(request, b"q")
print(json.dumps(latencies))
"""


def fetch_request(pmda, values_per_metric: int = 20) -> tuple[Callable[[], None], int]:
    """A typical pmval/pmlogger fetch: every scalar metric, and up to 20 instances of each
    per-instance metric, through the same callbacks libpcp_pmda calls; and its size."""
    pmda._apply_pending()
    wanted = []
    for pmid, entry in pmda._served.values.items():
        cluster, item = (pmid >> 10) & 0xFFF, pmid & 0x3FF
        insts = [0] if not isinstance(entry, dict) else list(entry)[:values_per_metric]
        wanted += [(cluster, item, inst) for inst in insts]
    clusters = sorted({c for c, _, _ in wanted})

    def fetch() -> None:
        for cluster in clusters:
            pmda._refresh(cluster)
        for cluster, item, inst in wanted:
            pmda._fetch(cluster, item, inst)
    return fetch, len(wanted)


def client_latencies(fetch: Callable[[], None], seconds: float) -> list[float]:
    request_r, request_w = os.pipe()
    answer_r, answer_w = os.pipe()

    def serve() -> None:
        while os.read(request_r, 1) == b"f":
            fetch()
            os.write(answer_w, b"k")
    server = threading.Thread(target=serve, daemon=True)
    server.start()
    done = subprocess.run([sys.executable, "-c", _CLIENT, str(request_w), str(answer_r), str(seconds)],
                          pass_fds=(request_w, answer_r), capture_output=True, text=True, check=True)
    server.join(5)
    for fd in (request_r, request_w, answer_r, answer_w):
        os.close(fd)
    return json.loads(done.stdout)


def fetch_latency(refresher: Refresher, pmda, seconds: float = 10.0,
                  between: Callable[[], None] = lambda: None) -> dict:
    """Fetch round trips idle and while refreshes run back to back; milliseconds.

    ``between`` runs before each of those refreshes (it moves the queue on; keep it cheap:
    it runs in the agent's process too)."""
    refresher.refresh_once()
    fetch, size = fetch_request(pmda)
    idle = client_latencies(fetch, seconds)
    stop = threading.Event()
    refreshes = []

    def refresh_loop() -> None:
        while not stop.is_set():
            between()
            started = time.perf_counter()
            refresher.refresh_once()
            refreshes.append(time.perf_counter() - started)
    loop = threading.Thread(target=refresh_loop, daemon=True)
    loop.start()
    time.sleep(0.2)
    busy = client_latencies(fetch, seconds)
    stop.set()
    loop.join(120)

    result = {"mode": "refresh thread", "values_per_fetch": size,
              "switch_interval_ms": round(sys.getswitchinterval() * 1e3, 3),
              "idle": ms(idle), "during_refresh": ms(busy),
              "refreshes_during": len(refreshes),
              "refresh_seconds_during": round(statistics.median(refreshes), 3) if refreshes else None}
    result["ratio_median"] = round(result["during_refresh"]["median_ms"] / result["idle"]["median_ms"], 2)
    result["ratio_p90"] = round(result["during_refresh"]["p90_ms"] / result["idle"]["p90_ms"], 2)
    return result


def fetch_latency_process(agent: JobAgent, options: dict, pmda, directory: str, seconds: float,
                          between: Callable[[], None]) -> dict:
    """As fetch_latency, with hpcjob's default refresh_process: true.  The refreshes run back
    to back in a refresh process (pmdas.common.worker, interval 0.05 s); this process only
    receives each result in pieces and installs it, as the agent's process does under pmcd.
    The queue moves every 0.5 s (a symlink swap here; the child sees it at its next refresh)."""
    from pmdas.common.worker import RefreshProcess
    config = os.path.join(directory, "hpcjob-process.yaml")
    with open(config, "w", encoding="utf-8") as f:
        yaml.safe_dump({**options, "interval": 0.05}, f)
    fetch, size = fetch_request(pmda)
    cpu = time.process_time()
    idle = client_latencies(fetch, seconds)
    cpu_idle = time.process_time() - cpu
    installs = []

    def install(plain) -> None:
        pmda.install(plain)
        installs.append(time.perf_counter())
    worker = RefreshProcess(agent, install, config, os.path.join(directory, "state-process"))
    worker.start()
    stop = threading.Event()

    def move() -> None:
        while not stop.wait(0.5):
            between()
    mover = threading.Thread(target=move, daemon=True)
    try:
        assert worker.first.wait(120), "the refresh process sent nothing"
        while len(installs) < 2:     # past the first (all new) refresh
            time.sleep(0.05)
        mover.start()
        first, cpu = len(installs), time.process_time()
        busy = client_latencies(fetch, seconds)
        cpu_busy = time.process_time() - cpu
        during = installs[first:]
    finally:
        stop.set()
        worker.stop()
    result = {"mode": "refresh process", "values_per_fetch": size,
              "switch_interval_ms": round(sys.getswitchinterval() * 1e3, 3),
              "idle": ms(idle), "during_refresh": ms(busy), "refreshes_during": len(during),
              "refresh_seconds_during": round(seconds / len(during), 3) if during else None,
              # CPU of the agent's process (fetches served + results installed) per second
              "agent_cpu_per_second_idle": round(cpu_idle / seconds, 3),
              "agent_cpu_per_second_during": round(cpu_busy / seconds, 3)}
    result["ratio_median"] = round(result["during_refresh"]["median_ms"] / result["idle"]["median_ms"], 2)
    result["ratio_p90"] = round(result["during_refresh"]["p90_ms"] / result["idle"]["p90_ms"], 2)
    return result


def ms(samples: list[float]) -> dict:
    """Quantiles of round trips in milliseconds."""
    ordered = sorted(samples)

    def quantile(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e3, 3)
    return {"n": len(ordered), "median_ms": quantile(0.5), "p90_ms": quantile(0.9),
            "p99_ms": quantile(0.99), "max_ms": round(ordered[-1] * 1e3, 3)}


def print_fetch(result: dict) -> None:
    idle, busy = result["idle"], result["during_refresh"]
    print(f"{result['mode']:<16}{result['switch_interval_ms']:>6g} ms  "
          f"idle {idle['median_ms']:7.3f} {idle['p90_ms']:7.3f}   "
          f"refreshing {busy['median_ms']:7.3f} {busy['p90_ms']:7.3f} {busy['p99_ms']:7.2f} "
          f"{busy['max_ms']:7.1f}   ×{result['ratio_median']:<6} ×{result['ratio_p90']:<6} "
          f"{result['refresh_seconds_during']} s")


def moving_queue(directory: str, queue: FakeQueue, first_tick: int, ticks: int = 6) -> Callable[[], None]:
    """Pre-written squeue outputs of the next ticks, and a cheap step to the next one
    (a symlink swap: no Python work in the agent's process while fetches are timed)."""
    paths = []
    for k in range(ticks):
        path = os.path.join(directory, f"squeue-{k}.txt")
        with open(path, "w", encoding="utf-8") as f:
            f.write(queue.squeue_text(first_tick + k))
        paths.append(path)
    link, step = os.path.join(directory, "squeue.txt"), iter(range(1 << 30))

    def advance() -> None:
        tmp = link + ".new"
        os.symlink(paths[next(step) % ticks], tmp)
        os.replace(tmp, link)
    return advance


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=50_000)
    parser.add_argument("--nodes", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--fetch-seconds", type=float, default=10.0,
                        help="length of each fetch-latency phase (0: skip)")
    parser.add_argument("--switch-intervals", type=float, nargs="*", default=[0.001, 0.0002],
                        help="GIL switch intervals (s) to compare with Python's default (5 ms) "
                             "in the fetch-latency phases; hpcjob's default is 0.001")
    args = parser.parse_args(argv if argv is not None else [])
    queue = FakeQueue(args.jobs, args.nodes)
    with tempfile.TemporaryDirectory(prefix="job-bench-") as tmp:
        squeue = write_command(tmp, "squeue", queue.squeue_text(0))
        sinfo = write_command(tmp, "sinfo", queue.sinfo_text())
        with open(FIXTURE_SDIAG, encoding="utf-8") as f:
            sdiag = write_command(tmp, "sdiag", f.read())
        options = dict(scheduler="slurm", cluster_view=True, node_name="bench", timeout=60.0,
                       root=tmp, squeue_command=[squeue], sinfo_command=[sinfo],
                       sdiag_command=[sdiag])
        agent = JobAgent(Config(validate(options, {**COMMON_OPTIONS, **JobAgent.options}, "bench"), None))
        python_default = sys.getswitchinterval()
        agent.prepare_process()              # as in the agent's own process
        commands = list(agent.scheduler_commands().values())
        refresher = Refresher(agent, state_dir=os.path.join(tmp, "state"))
        pmda = make_pmda(agent)
        clear_parse_caches()
        started = time.perf_counter()
        published = refresher.refresh_once()
        first = time.perf_counter() - started
        first_prepare = None
        if pmda is not None:
            started = time.perf_counter()
            pmda.prepare(published)
            first_prepare = time.perf_counter() - started
        bare_times, refresh_times, prepare_times = [], [], []
        for tick in range(1, args.rounds + 1):
            write_command(tmp, "squeue", queue.squeue_text(tick))      # the queue moves (untimed)
            bare_times.append(bare(commands))
            started = time.perf_counter()
            published = refresher.refresh_once()
            refresh_times.append(time.perf_counter() - started)
            if pmda is not None:
                started = time.perf_counter()
                pmda.prepare(published)
                prepare_times.append(time.perf_counter() - started)
        assert published.values["hpc.job.agent.up"] == 1, published.values["hpc.job.agent.last_error"]
        jobs_seen = len(published.values["hpc.job.job.state"])
        sizes = {n: os.path.getsize(os.path.join(tmp, f"{n}.txt")) for n in ("squeue", "sinfo")}
        fetch = None
        if pmda is not None and args.fetch_seconds > 0:
            fetch = []
            default = sys.getswitchinterval()
            try:
                for interval in (python_default, *args.switch_intervals):
                    sys.setswitchinterval(interval)
                    fetch.append(fetch_latency(
                        Refresher(agent, state_dir=os.path.join(tmp, "state"), on_publish=pmda.prepare),
                        pmda, args.fetch_seconds, moving_queue(tmp, queue, args.rounds + 1)))
                sys.setswitchinterval(0.001)      # hpcjob's default, also in the agent's process
                fetch.append(fetch_latency_process(agent, options, pmda, tmp, args.fetch_seconds,
                                                   moving_queue(tmp, queue, args.rounds + 1)))
            finally:
                sys.setswitchinterval(default)
    b, r = statistics.median(bare_times), statistics.median(refresh_times)
    p = statistics.median(prepare_times) if prepare_times else None
    result = {
        "benchmark": "job_refresh", "jobs": args.jobs, "nodes": args.nodes, "rounds": args.rounds,
        "jobs_published": jobs_seen, "output_bytes": sizes,
        "bare_cat_seconds": round(b, 4), "refresh_seconds": round(r, 4),
        "ratio_refresh_to_cat": round(r / b, 2),
        "pmda_prepare_seconds": None if p is None else round(p, 4),
        "ratio_refresh_and_prepare_to_cat": None if p is None else round((r + p) / b, 2),
        "first_refresh_seconds": round(first, 4),
        "first_prepare_seconds": None if first_prepare is None else round(first_prepare, 4),
        "refresh_us_per_job": round(r / args.jobs * 1e6, 2),
        "fetch_latency": fetch, "target_ratio": 1.3,
        "host": os.uname().nodename, "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "note": "bare = the agent's argv served by scripts that cat files: the cost of cat, not of "
                "squeue; see slurm_scale.json for a real slurmctld. Between rounds running jobs' "
                f"clocks advance and {CHURN} jobs leave and arrive.",
    }
    print(f"{'measure (median of ' + str(args.rounds) + ')':<40}{'seconds':>10}{'× cat':>9}")
    print(f"{'bare commands (cat)':<40}{b:>10.3f}{1:>9.2f}")
    print(f"{'hpcjob refresh_once':<40}{r:>10.3f}{r / b:>9.2f}")
    if p is not None:
        print(f"{'  + PCP glue prepare':<40}{r + p:>10.3f}{(r + p) / b:>9.2f}")
    print(f"{'first refresh after start (all new)':<40}{first:>10.3f}{first / b:>9.2f}")
    print(f"{'per job':<40}{r / args.jobs * 1e6:>9.1f} us")
    if fetch:
        print(f"fetch round trips ({fetch[0]['values_per_fetch']} values), ms: switch interval, idle "
              "median p90, during refreshes median p90 p99 max, ratios median p90, refresh time")
        for row in fetch:
            print_fetch(row)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "job_refresh.json"), "w") as f:
        json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
