"""Benchmark: a syscall-heavy workload with hpcbpftrace's default script set running vs. not.

Target (issue 6): the workload is at most 5% slower while the default scripts run.

The workload is a small fixed program run as a subprocess (~0.4 s): open/close of
/dev/null, a pipe ping-pong between two processes (context switches, wakeups), a
few fork+exec of /bin/true (exec/exit), touching fresh anonymous pages (page
faults), TCP connects to a closed loopback port (resets) and a few fsyncs (block
I/O), so that every default script except oomkill has events.  The scripts are
started with the agent's own machinery (ScriptRegistry + Runner, the same limits
and supervisor as the agent; not pmcd).  Starting them takes seconds, so the
variants alternate in phases, each cycle being: N bare runs, then for each variant
(the default set, and any --also sets) start its scripts, wait until all are running
and have printed data, N runs with them, stop them; the order rotates from cycle to
cycle.

The workload is pinned to one CPU (see workload_cpu).  Reported: median wall time of
the workload per variant and the ratio (the target's measure), the ratio of its CPU
time (user+system of it and its children, from wait4: less sensitive to other people's
load), per-section medians, and the CPU of the bpftrace processes themselves during
the timed "with" runs as a fraction of one CPU.  The BPF programs run inside the
traced tasks, so their cost is part of the workload's own time: that is the overhead.
Other people's bpftrace processes present during the run are listed in the result.

    .venv/bin/python bench/bpftrace_overhead.py [--cycles 8] [--runs 5] [--each] [--bpf-stats]
        [--also LABEL=DIR:script,script ...]

--each measures every default script alone instead (bpftrace_overhead_each.json), to
see where the overhead comes from.  --also measures other sets side by side, e.g. the
previous default set saved from git (git show REV:bpftrace_scripts/X.bt > DIR/X.bt).
--bpf-stats turns kernel.bpf_stats_enabled on for the run (and back) and reports the
time the kernel spent in each script's BPF programs as a share of the workload's CPU
time: unlike wall time, it hardly moves with other people's load.  It leaves out the
tracepoint's own dispatch cost, and the accounting adds a little to each program run.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from bench.harness import process_argvs, report  # noqa: E402
from pmdas.hpcbpftrace.collector import DEFAULT_ENABLED  # noqa: E402
from pmdas.hpcbpftrace.procstat import process_cost  # noqa: E402
from pmdas.hpcbpftrace.registry import CURATED_DIR, ScriptRegistry  # noqa: E402
from pmdas.hpcbpftrace.runner import FAILED, RUNNING, UNSUPPORTED, Limits, Runner  # noqa: E402

TARGET_RATIO = 1.05
CPU = "workload_cpu"          # user+system time of the workload and its children, kept with the sections
# Scripts whose events the workload cannot cause (an OOM kill is not something to provoke
# on a shared machine): they must run, but are not expected to print data.
NO_EVENTS_EXPECTED = {"oomkill": "no out-of-memory kill happens during the workload"}

WORKLOAD = r"""
import json, mmap, os, socket, sys, time
port, path = int(sys.argv[1]), sys.argv[2]
os.sched_setaffinity(0, {int(sys.argv[3])})
N_OPEN, N_PING, N_EXEC, PAGES, N_RST, N_SYNC = 20000, 10000, 20, 16384, 200, 4

def open_close():
    for _ in range(N_OPEN):
        os.close(os.open("/dev/null", os.O_RDONLY))

def pipe_pingpong():
    a_r, a_w = os.pipe()
    b_r, b_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        for _ in range(N_PING):
            os.read(a_r, 1)
            os.write(b_w, b"x")
        os._exit(0)
    for _ in range(N_PING):
        os.write(a_w, b"x")
        os.read(b_r, 1)
    os.waitpid(pid, 0)
    for fd in (a_r, a_w, b_r, b_w):
        os.close(fd)

def fork_exec():
    for _ in range(N_EXEC):
        pid = os.fork()
        if pid == 0:
            os.execv("/bin/true", ["true"])
        os.waitpid(pid, 0)

def page_faults():
    m = mmap.mmap(-1, PAGES * 4096)
    for off in range(0, PAGES * 4096, 4096):
        m[off] = 1
    m.close()

def tcp_resets():
    for _ in range(N_RST):
        s = socket.socket()
        try:
            s.connect(("127.0.0.1", port))
        except ConnectionRefusedError:
            pass
        s.close()

def fsync():
    with open(path, "wb") as f:
        for _ in range(N_SYNC):
            f.write(b"x" * 65536)
            f.flush()
            os.fsync(f.fileno())
    os.unlink(path)

sections = {}
for fn in (open_close, pipe_pingpong, fork_exec, page_faults, tcp_resets, fsync):
    started = time.perf_counter()
    fn()
    sections[fn.__name__] = time.perf_counter() - started
print(json.dumps(sections))
"""


def closed_port() -> int:
    """A loopback port nobody listens on (connects to it get a TCP reset)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def workload_cpu() -> int:
    """The CPU the workload is pinned to: the last one this process may use.

    Unpinned, the ping-pong is bimodal (both ends on one CPU, or waking each other
    across CPUs: 60 vs 200 ms here), which buries a few percent of overhead."""
    return max(os.sched_getaffinity(0))


def run_workload(port: int, scratch: str) -> tuple[float, float, dict[str, float]]:
    """(wall seconds, CPU seconds of the workload and its children, seconds per section)."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-I", "-c", WORKLOAD, str(port), os.path.join(scratch, "f"),
                             str(workload_cpu())], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    out = proc.stdout.read()
    proc.stdout.close()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"the workload failed with exit status {proc.returncode}")
    return wall, usage.ru_utime + usage.ru_stime, json.loads(out)


def bpftrace_processes() -> dict[int, str]:
    """Every bpftrace process on the machine: pid → its script argument."""
    return {pid: argv[-2].decode(errors="replace") if len(argv) > 1 else ""
            for pid, argv in process_argvs().items() if os.path.basename(argv[0]) == b"bpftrace"}


def cpu_of(pids: list[int]) -> float:
    costs = [process_cost(pid) for pid in pids]
    return sum(c.cpu_seconds for c in costs if c is not None)


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def start_scripts(registry: ScriptRegistry, start_timeout: float) -> tuple[Runner, dict]:
    """Start the default set as the agent does; wait until each runs or has given up."""
    runner = Runner(Limits())
    started = time.monotonic()

    def settled() -> bool:
        return all(s.state in (RUNNING, UNSUPPORTED, FAILED) for s in runner.statuses().values())

    try:
        problems = runner.sync(registry)
        runner.start_supervisor()
        ok = wait_for(settled, start_timeout)
    except BaseException:        # never leave bpftrace running (Ctrl-C while compiling)
        runner.shutdown()
        raise
    statuses = runner.statuses()
    return runner, {"seconds_to_running": round(time.monotonic() - started, 2), "settled": ok,
                    "refused": problems,
                    "compile_cpu_seconds": round(cpu_of([s.pid for s in statuses.values() if s.pid]), 2),
                    "states": {n: s.state for n, s in statuses.items()},
                    "errors": {n: s.error for n, s in statuses.items() if s.error}}


def scripts_with_data(runner: Runner) -> dict[str, list[str]]:
    """Scripts that have printed a non-empty, non-zero variable: name → those variables."""
    found = {name: sorted(v for v, var in values.items() if var.value not in ({}, (), 0, None))
             for name, values in runner.all_values().items()}
    return {name: variables for name, variables in found.items() if variables}


def timed_runs(runs: int, port: int, scratch: str,
               sections: dict[str, list[float]]) -> list[float]:
    walls = []
    for _ in range(runs):
        wall, cpu, parts = run_workload(port, scratch)
        walls.append(wall)
        for k, v in {**parts, CPU: cpu}.items():
            sections.setdefault(k, []).append(v)
    return walls


def bpf_cost(pids: list[int]) -> tuple[float, int]:
    """(seconds in BPF programs, program runs) of these bpftrace processes so far (needs bpf stats)."""
    costs = [c for c in map(process_cost, pids) if c is not None]
    return sum(c.bpf_seconds for c in costs), sum(c.bpf_events for c in costs)


def with_phase(registry: ScriptRegistry, args: argparse.Namespace, port: int, scratch: str,
               sections: dict[str, list[float]], info: dict) -> list[float]:
    """Start the scripts, check they run and print data, time the workload, stop them."""
    runner, start = start_scripts(registry, args.start_timeout)
    try:
        info["start"] = start
        ours = {s.pid for s in runner.statuses().values() if s.pid}
        info["foreign_bpftrace_with"] = sorted(
            arg for pid, arg in bpftrace_processes().items() if pid not in ours)
        running = {n for n, s in runner.statuses().items() if s.state == RUNNING}
        # Data check: one run to cause events, then wait for the scripts' next print.
        run_workload(port, scratch)
        expected = running - set(NO_EVENTS_EXPECTED)
        wait_for(lambda: expected <= set(scripts_with_data(runner)), 12.0)
        info["data_before_timing"] = scripts_with_data(runner)
        info["no_data"] = sorted(expected - set(info["data_before_timing"]))

        live = {s.name: s.pid for s in runner.statuses().values() if s.state == RUNNING}
        cpu0 = {name: cpu_of([pid]) for name, pid in live.items()}
        bpf0 = {name: bpf_cost([pid]) for name, pid in live.items()}
        workload_cpu0 = len(sections.get(CPU, []))
        t0 = time.monotonic()
        walls = timed_runs(args.runs, port, scratch, sections)
        elapsed = time.monotonic() - t0
        by_script = {name: (cpu_of([pid]) - cpu0[name]) / elapsed for name, pid in live.items()}
        info["timing_seconds"] = round(elapsed, 3)
        info["bpftrace_cpu_seconds"] = round(sum(by_script.values()) * elapsed, 3)
        info["bpftrace_cpu_fraction"] = round(sum(by_script.values()), 4)
        info["bpftrace_cpu_fraction_by_script"] = {n: round(f, 4) for n, f in by_script.items()}
        if args.bpf_stats:
            bpf = {name: bpf_cost([pid]) for name, pid in live.items()}
            info["bpf_seconds_by_script"] = {n: round(bpf[n][0] - bpf0[n][0], 6) for n in live}
            info["bpf_runs_by_script"] = {n: bpf[n][1] - bpf0[n][1] for n in live}
            info["workload_cpu_seconds"] = round(sum(sections[CPU][workload_cpu0:]), 6)
        info["states_after"] = {n: s.state for n, s in runner.statuses().items()}
    finally:
        runner.shutdown()
    left = [s.name for s in runner.statuses().values() if s.pid]
    assert not left, f"bpftrace scripts left running: {left}"
    return walls


def measure(variants: dict[str, ScriptRegistry], args: argparse.Namespace, port: int,
            scratch: str) -> tuple[dict[str, list[float]], dict[str, dict[str, list[float]]], list[dict]]:
    """Alternate bare phases with each variant's phase (the order rotating from cycle to cycle);
    return samples, per-section samples and per-cycle info."""
    samples: dict[str, list[float]] = {"bare": [], **{label: [] for label in variants}}
    sections: dict[str, dict[str, list[float]]] = {v: {} for v in samples}
    cycles = []
    for cycle in range(args.cycles):
        info: dict = {"cycle": cycle, "foreign_bpftrace_bare": sorted(bpftrace_processes().values()),
                      "loadavg_1min_before": round(os.getloadavg()[0], 2), "variants": {}}
        order = list(samples)
        order = order[cycle % len(order):] + order[:cycle % len(order)]
        walls: dict[str, list[float]] = {}
        for label in order:
            if label == "bare":
                walls[label] = timed_runs(args.runs, port, scratch, sections["bare"])
            else:
                info["variants"][label] = {}
                walls[label] = with_phase(variants[label], args, port, scratch, sections[label],
                                          info["variants"][label])
            samples[label] += walls[label]
        bare = statistics.median(walls["bare"])
        info.update(bare_wall_s=walls["bare"], loadavg_1min_after=round(os.getloadavg()[0], 2))
        for label in variants:
            info["variants"][label].update(wall_s=walls[label],
                                           ratio=round(statistics.median(walls[label]) / bare, 4))
        cycles.append(info)
        print(f"cycle {cycle}: bare {bare * 1e3:.0f} ms; " + "; ".join(
            f"{label} {statistics.median(walls[label]) * 1e3:.0f} ms (x{v['ratio']:.3f}, started in "
            f"{v['start']['seconds_to_running']} s, bpftrace CPU {v['bpftrace_cpu_fraction']:.1%}, "
            f"other bpftrace processes: {len(v['foreign_bpftrace_with'])})"
            for label, v in info["variants"].items()) + f"; load {info['loadavg_1min_after']}", flush=True)
    return samples, sections, cycles


def lower_quartile(values: list[float]) -> float:
    return statistics.quantiles(values, n=4)[0]


def section_ratios(sections: dict[str, dict[str, list[float]]], label: str) -> dict[str, float]:
    return {k: round(statistics.median(sections[label][k]) / statistics.median(v), 3)
            for k, v in sections["bare"].items()}


def registry_for(scripts: list[str], curated_dir: str, scratch: str) -> ScriptRegistry:
    admin_dir = os.path.join(scratch, "admin")          # no state.json: enabled_by_default applies
    registry = ScriptRegistry(curated_dir, admin_dir, enabled_by_default=set(scripts))
    found = sorted(s.name for s in registry.enabled())
    if found != sorted(scripts):
        raise SystemExit(f"scripts {sorted(set(scripts) - set(found))} are not in {curated_dir}")
    return registry


def each_script(args: argparse.Namespace, port: int, scratch: str) -> int:
    """--each: every default script alone, to see which ones the overhead comes from."""
    pooled: dict[str, list[float]] = {"bare": []}
    by_script = {}
    for name in DEFAULT_ENABLED:
        samples, sections, cycles = measure({name: registry_for([name], CURATED_DIR, scratch)},
                                            args, port, scratch)
        pooled["bare"] += samples["bare"]
        pooled[name] = samples[name]
        by_script[name] = {"ratio": round(statistics.median(samples[name])
                                          / statistics.median(samples["bare"]), 4),
                           "section_ratios": section_ratios(sections, name), "cycles": cycles}
    loads = [c[k] for r in by_script.values() for c in r["cycles"]
             for k in ("loadavg_1min_before", "loadavg_1min_after")]
    notes = ("each default script alone, with/bare of its own interleaved bare runs (wall; workload "
             f"CPU; sections); 1-min load average {min(loads)}-{max(loads)} on {os.cpu_count()} CPUs:\n"
             + "\n".join(
                 f"  {n:<11} {r['ratio']:.3f}; {r['section_ratios'][CPU]:.3f}; "
                 + ", ".join(f"{k} {v:.2f}" for k, v in r["section_ratios"].items() if k != CPU)
                 for n, r in by_script.items()))
    report("bpftrace_overhead_each", pooled, anchor="bare", unit="ms", notes=notes,
           extra={"by_script": by_script, "runs_per_phase": args.runs, "cycles": args.cycles,
                  "loadavg_1min_range": [min(loads), max(loads)], "workload": WORKLOAD})
    return 0


def parse_variant(text: str) -> tuple[str, str, list[str]]:
    """``LABEL=DIR:script,script`` (see --also)."""
    label, sep, rest = text.partition("=")
    directory, sep2, names = rest.rpartition(":")
    if not (sep and sep2 and label and names) or label == "bare":
        raise argparse.ArgumentTypeError(f"{text!r}: expected LABEL=DIR:script,script")
    return label, os.path.abspath(directory), names.split(",")


@contextlib.contextmanager
def bpf_stats(enable: bool):
    """kernel.bpf_stats_enabled on for the run (BPF run time per program), then as it was."""
    path = "/proc/sys/kernel/bpf_stats_enabled"
    if not enable:
        yield
        return
    with open(path) as f:
        before = f.read().strip()
    with open(path, "w") as f:
        f.write("1")
    try:
        yield
    finally:
        with open(path, "w") as f:
            f.write(before)


def bpf_share(cycles: list[dict], label: str) -> dict | None:
    """Time in the variant's BPF programs as a fraction of the workload's CPU time, pooled."""
    infos = [c["variants"][label] for c in cycles if "bpf_seconds_by_script" in c["variants"][label]]
    if not infos:
        return None
    cpu = sum(i["workload_cpu_seconds"] for i in infos)
    by_script: dict[str, float] = {}
    for i in infos:
        for name, seconds in i["bpf_seconds_by_script"].items():
            by_script[name] = by_script.get(name, 0.0) + seconds
    return {"total": round(sum(by_script.values()) / cpu, 4),
            "by_script": {n: round(v / cpu, 4) for n, v in sorted(by_script.items(), key=lambda kv: -kv[1])}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=8, help="phase cycles (bare + each variant)")
    parser.add_argument("--runs", type=int, default=5, help="workload runs per phase")
    parser.add_argument("--start-timeout", type=float, default=120.0)
    parser.add_argument("--each", action="store_true",
                        help="measure each default script alone instead (bpftrace_overhead_each.json)")
    parser.add_argument("--also", action="append", type=parse_variant, default=[], metavar="LABEL=DIR:S,S",
                        help="also measure these scripts from DIR, interleaved (e.g. an older set "
                             "saved with git show)")
    parser.add_argument("--bpf-stats", action="store_true",
                        help="turn kernel.bpf_stats_enabled on for the run and report the time spent "
                             "in the scripts' BPF programs (load-independent; adds a little to it)")
    args = parser.parse_args(argv if argv is not None else [])
    if os.geteuid() != 0 or shutil.which("bpftrace") is None:
        print("bpftrace_overhead: needs root and bpftrace; not run", file=sys.stderr)
        return 2

    label = "default scripts"
    port = closed_port()
    with tempfile.TemporaryDirectory(prefix="bpftrace-bench-", dir="/var/tmp") as scratch, \
            bpf_stats(args.bpf_stats):
        run_workload(port, scratch)                      # warm the page cache
        if args.each:
            return each_script(args, port, scratch)
        variants = {label: registry_for(DEFAULT_ENABLED, CURATED_DIR, scratch)}
        sets = {label: f"{', '.join(sorted(DEFAULT_ENABLED))} (curated)"}
        for other, directory, names in args.also:
            variants[other] = registry_for(names, directory, scratch)
            sets[other] = f"{', '.join(sorted(names))} from {directory}"
        samples, sections, cycles = measure(variants, args, port, scratch)

    ratios = {v: statistics.median(samples[v]) / statistics.median(samples["bare"]) for v in variants}
    ratio = ratios[label]
    medians = {v: {k: statistics.median(x) for k, x in s.items()} for v, s in sections.items()}
    per_section = {v: section_ratios(sections, v) for v in variants}
    cpu_ratios = {v: per_section[v].pop(CPU) for v in variants}
    # Other people's load only ever adds time: the lower quartiles are the least disturbed runs.
    q_ratios = {v: {"wall": round(lower_quartile(samples[v]) / lower_quartile(samples["bare"]), 4),
                    "cpu": round(lower_quartile(sections[v][CPU]) / lower_quartile(sections["bare"][CPU]), 4)}
                for v in variants}
    bpf_shares = {v: bpf_share(cycles, v) for v in variants}
    loads = [c[k] for c in cycles for k in ("loadavg_1min_before", "loadavg_1min_after")]
    lines = [f"target: wall with/bare <= {TARGET_RATIO} for the default set: "
             f"{'met' if ratio <= TARGET_RATIO else 'NOT met'} ({ratio:.3f}); 1-min load average "
             f"{min(loads)}-{max(loads)} on {os.cpu_count()} CPUs"]
    for v in variants:
        infos = [c["variants"][v] for c in cycles]
        # /proc/<pid>/stat counts 10 ms ticks: pooled over every timed phase, not per phase.
        fraction = sum(i["bpftrace_cpu_seconds"] for i in infos) / sum(i["timing_seconds"] for i in infos)
        unsupported = {n: e for i in infos for n, e in i["start"]["errors"].items()
                       if i["start"]["states"].get(n) in (UNSUPPORTED, FAILED)}
        no_data = sorted({n for i in infos for n in i["no_data"]})
        lines.append(
            f"{v}: {sets[v]}\n  wall with/bare {ratios[v]:.3f}; per cycle "
            f"{', '.join(format(i['ratio'], '.3f') for i in infos)}; workload CPU time (user+sys, BPF "
            f"programs included) with/bare {cpu_ratios[v]:.3f}; lower quartiles: wall "
            f"{q_ratios[v]['wall']:.3f}, CPU {q_ratios[v]['cpu']:.3f}\n"
            f"  per section with/bare: {', '.join(f'{k} {r:.3f}' for k, r in per_section[v].items())}\n"
            + (f"  BPF programs: {bpf_shares[v]['total']:.2%} of the workload's CPU time ("
               + ", ".join(f"{n} {f:.2%}" for n, f in bpf_shares[v]["by_script"].items()) + ")\n"
               if bpf_shares[v] else "")
            + f"  bpftrace processes' own CPU while timing: {fraction:.2%} of one CPU; starting the set: "
            f"{statistics.median(i['start']['seconds_to_running'] for i in infos):.1f} s to running, "
            f"{statistics.median(i['start']['compile_cpu_seconds'] for i in infos):.1f} CPU-seconds of "
            f"bpftrace (median); unsupported/failed: {unsupported or 'none'}; no data: {no_data or 'none'} "
            f"(expected none from: {', '.join(NO_EVENTS_EXPECTED)})")
    foreign = sorted({a for c in cycles for a in c["foreign_bpftrace_bare"]}
                     | {a for c in cycles for i in c["variants"].values()
                        for a in i["foreign_bpftrace_with"]})
    if foreign:
        lines.append(f"other bpftrace processes seen on the machine: {foreign}")
    notes = "\n".join(lines)
    report("bpftrace_overhead", samples, anchor="bare", unit="ms", notes=notes, extra={
        "target_ratio": TARGET_RATIO, "ratio": round(ratio, 4), "meets_target": ratio <= TARGET_RATIO,
        "ratios": {v: round(r, 4) for v, r in ratios.items()}, "sets": sets,
        "workload_cpu_ratio": cpu_ratios[label], "workload_cpu_ratios": cpu_ratios,
        "workload_pinned_to_cpu": workload_cpu(), "lower_quartile_ratio": q_ratios[label],
        "lower_quartile_ratios": q_ratios, "bpf_share_of_workload_cpu": bpf_shares,
        "loadavg_1min_range": [min(loads), max(loads)], "section_samples_s": sections,
        "default_enabled": sorted(DEFAULT_ENABLED), "runs_per_phase": args.runs, "cycles": cycles,
        "section_medians_s": medians, "section_ratios": per_section,
        "no_events_expected": NO_EVENTS_EXPECTED, "foreign_bpftrace": foreign, "workload": WORKLOAD})
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
