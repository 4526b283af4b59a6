"""Benchmark: hpclustre at scale, side by side with the bare reads and PCP's stock lustre agent.

Trees are written by hpc_demo.hpclustre (real 2.15 / 2.10 formats) in a temporary
directory and pruned to one role each:

  client   16 filesystems x 512 OSCs (8,192 OSC stats + rpc_stats files, 2.15 layout)
  oss      8 OSTs x 10,000 job_stats entries each (2.15 layout)
  llite    16 filesystems, llite + LNet only (2.10 /proc layout): the files PCP's stock
           agent reads; its regular expressions do not match 2.15 lines (sumsq column)

Refresh, per tree, in rounds; before each round the tree is advanced (untimed: counters
move, 10% of jobs end and new ones start), then in rotating order:
  cat            one `cat` of every file the agent read (CPU: the child's rusage)
  python read    open()/read() of the same files as text, no parsing
  agent refresh  Refresher.refresh_once() with the PCP glue's prepare() as on_publish, as
                 the PMDA runs it (sources in threads, build, table, instance ids);
                 CPU: process time of this process, all threads
Files are the ones the agent opened in a discovery refresh (recorded, not guessed).

Fetch latency: each agent runs under dbpmda (PCP's PDU path over pipes; no pmcd), which
times each fetch ("Timer", which includes dbpmda printing the values).  Our agent idle
(interval 1 h: no refresh runs) and busy (refreshes back to back); the CPU per refresh
of the busy PMDA process is /proc CPU over the refreshes it reports (agent.refreshes).
The stock agent re-reads its files on every fetch: its CPU per fetch is its refresh.

    .venv/bin/python bench/lustre_scale.py [--rounds 5] [--fetches 200] [--skip-stock]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import re
import resource
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)

from bench.harness import process_cpu  # noqa: E402
from hpc_demo import hpclustre as demo  # noqa: E402
from pmdas.common.config import COMMON_OPTIONS, Config, validate  # noqa: E402
from pmdas.common.refresh import Refresher  # noqa: E402
from pmdas.hpclustre import paths  # noqa: E402
from pmdas.hpclustre.collector import LustreAgent  # noqa: E402

RESULTS = os.path.join(HERE, "results", "lustre_scale.json")
STOCK_PMDA = "/var/lib/pcp/pmdas/lustre/pmdalustre.pl"
TREES = {   # demo arguments, and what to delete so the node has only one role
    "client": (["--filesystems", "16", "--oscs", "512", "--osts", "0", "--jobs", "0"],
               ["proc/fs/lustre/mdt", "sys/fs/lustre/osd-ldiskfs"]),
    "oss": (["--filesystems", "1", "--oscs", "0", "--osts", "8", "--jobs", "10000"],
            ["proc/fs/lustre/mdt", "sys/fs/lustre/osd-ldiskfs/scratch-MDT0000",
             "sys/kernel/debug/lustre/llite", "sys/fs/lustre/llite"]),
    "llite": (["--filesystems", "16", "--oscs", "0", "--osts", "0", "--jobs", "0", "--version", "2.10"],
              ["proc/fs/lustre/mdt", "proc/fs/lustre/osd-ldiskfs"]),
}
# What a logger would fetch: (label, metric names relative to hpc.lustre).
FETCHES = {
    "client": [("per filesystem (llite)", ["client.read.bytes", "client.write.bytes", "client.read.count",
                                           "client.write.count", "client.open.count", "client.close.count",
                                           "client.getattr.count", "client.read.time", "agent.up"]),
               ("per OSC", ["client.target.read.bytes", "client.target.write.bytes",
                            "client.target.waittime.time", "client.target.rpcs_in_flight.write"]),
               ("one histogram", ["client.target.rpc_hist.offset.write"])],
    "oss": [("per OST", ["server.target.read.bytes", "server.target.write.bytes", "server.target.ops",
                         "server.target.kbytes.free", "server.target.job_stats.entries", "agent.up"]),
            ("per job", ["job.read.bytes", "job.write.bytes", "job.read.count", "job.write.count",
                         "job.ost.ops", "job.read.time", "job.write.time", "job.tracked"])],
}
# Like for like with the stock agent: (ours, stock's) for the same llite quantity.
LIKE_FOR_LIKE = [("client.read.count", "lustre.llite.read_bytes.count"),
                 ("client.read.bytes", "lustre.llite.read_bytes.total"),
                 ("client.write.count", "lustre.llite.write_bytes.count"),
                 ("client.write.bytes", "lustre.llite.write_bytes.total"),
                 ("client.open.count", "lustre.llite.open.count"),
                 ("client.close.count", "lustre.llite.close.count"),
                 ("client.getattr.count", "lustre.llite.getattr.count"),
                 ("client.statfs.count", "lustre.llite.statfs.count")]
AGREE = 4   # the first four agree in value; the demo's 2.10 ops are "[usec]" lines, stock wants "[regs]"


# -- trees -------------------------------------------------------------------------------
def demo_run(root: str, kind: str, args: list[str]) -> float:
    """Run the demo generator quietly, prune the tree to one role; seconds taken."""
    started = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()):
        demo.main(["--root", root, *args])
    for rel in TREES[kind][1]:
        shutil.rmtree(os.path.join(root, rel), ignore_errors=True)
    return time.perf_counter() - started


def make_refresher(root: str, interval: float = 10.0) -> Refresher:
    # PCP's Python is needed: the glue's prepare() is part of the PMDA's refresh.
    from pmdas.common.pmda import HpcPMDA
    config = Config(validate({"root": root, "interval": interval, "timeout": 60},
                             {**COMMON_OPTIONS, **LustreAgent.options}, "bench"), None)
    agent = LustreAgent(config)
    return Refresher(agent, on_publish=HpcPMDA(agent).prepare)


def files_read(refresher: Refresher) -> list[str]:
    """Every file one refresh of the agent opens, recorded by wrapping its reader."""
    seen: list[str] = []
    real = paths.read_optional

    def recording(path: str) -> str | None:
        text = real(path)
        if text is not None:
            seen.append(path)
        return text
    paths.read_optional = recording
    try:
        check = refresher.refresh_once()
    finally:
        paths.read_optional = real
    assert check.values["hpc.lustre.agent.up"] == 1, check.values["hpc.lustre.agent.last_error"]
    return sorted(set(seen))


# -- refresh side by side ----------------------------------------------------------------------
def measure(fn: Callable[[], object], child: bool = False) -> tuple[float, float]:
    """(wall, CPU) seconds; CPU of the child processes it waited for when ``child``."""
    who = resource.RUSAGE_CHILDREN if child else resource.RUSAGE_SELF
    before, started = resource.getrusage(who), time.perf_counter()
    fn()
    wall, after = time.perf_counter() - started, resource.getrusage(who)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def cat(root: str, files: list[str]) -> None:
    relative = [os.path.relpath(f, root) for f in files]
    with subprocess.Popen(["cat", *relative], cwd=root, stdout=subprocess.PIPE) as proc:
        while proc.stdout.read(1 << 20):
            pass


def python_read(files: list[str]) -> None:
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as f:
            f.read()


def refresh_side_by_side(tmp: str, kind: str, rounds: int) -> dict:
    root = os.path.join(tmp, kind)
    generate = demo_run(root, kind, TREES[kind][0])
    refresher = make_refresher(root)
    first_wall, first_cpu = measure(refresher.refresh_once)   # every instance new
    files = files_read(refresher)
    nbytes = sum(os.path.getsize(f) for f in files)
    cases = {"cat (one process)": (lambda: cat(root, files), True),
             "python open/read": (lambda: python_read(files), False),
             "agent refresh": (refresher.refresh_once, False)}
    samples: dict[str, dict[str, list[float]]] = {name: {"wall": [], "cpu": []} for name in cases}
    advance = []
    for r in range(rounds):
        advance.append(demo_run(root, kind, ["--advance"]))
        order = list(cases)[r % 3:] + list(cases)[:r % 3]
        for name in order:
            fn, child = cases[name]
            wall, cpu = measure(fn, child)
            samples[name]["wall"].append(wall)
            samples[name]["cpu"].append(cpu)
        published = refresher.published
        assert published.values["hpc.lustre.agent.up"] == 1, published.values["hpc.lustre.agent.last_error"]
    instances = {k: len(v) for k, v in refresher.published.instances.items()
                 if v and not k.startswith("agent")}
    rows = {name: {k: stats(v) for k, v in s.items()} for name, s in samples.items()}
    for row in rows.values():
        for k in ("wall", "cpu"):
            row[k]["x_cat"] = ratio(row[k]["median"], rows["cat (one process)"][k]["median"])
            row[k]["x_python_read"] = ratio(row[k]["median"], rows["python open/read"][k]["median"])
    return {"tree": kind, "files": len(files), "megabytes": round(nbytes / 1e6, 1),
            "generate_seconds": round(generate, 1), "advance_seconds": stats(advance),
            "instances": instances,
            "first_refresh": {"wall": round(first_wall, 3), "cpu": round(first_cpu, 3)},
            "rows": rows}


def stats(values: list[float]) -> dict:
    ordered = sorted(values)
    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 6)
    return {"n": len(ordered), "median": round(statistics.median(ordered), 6), "min": round(ordered[0], 6),
            "p90": at(0.9), "p99": at(0.99), "max": round(ordered[-1], 6)}


def ratio(a: float, b: float) -> float:
    return round(a / b, 2) if b else float("nan")


# -- dbpmda --------------------------------------------------------------------------------
_MARK = "getdesc off"   # a harmless command whose echo ends each command's output


class Dbpmda:
    """dbpmda driving one PMDA over pipes: PCP's own PDU path, no pmcd involved."""

    def __init__(self, pmda_argv: list[str], dynamic_root: str, env: dict, tmp: str):
        pmns = os.path.join(tmp, f"pmns.{dynamic_root.split()[0]}")
        with open(pmns, "w") as f:
            f.write(f"root {{\n\t{dynamic_root}\n}}\n")
        self.proc = subprocess.Popen(["dbpmda", "-n", pmns, "-e"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        self._pending = b""
        opened = self.command("open pipe " + " ".join(pmda_argv))
        self.pid = next((p for p in _children(self.proc.pid)), None)
        if self.pid is None:
            raise RuntimeError(f"dbpmda could not start {pmda_argv[0]}: {opened.strip()[-500:]}")
        self.command("timer on")

    def command(self, line: str, timeout: float = 300) -> str:
        self.proc.stdin.write(f"{line}\n{_MARK}\n".encode())
        self.proc.stdin.flush()
        end, mark = time.monotonic() + timeout, f"\n{_MARK}\n".encode()
        chunks = [self._pending]
        while True:
            joined = b"".join(chunks)
            at = joined.find(mark)
            if at >= 0:
                self._pending = joined[at + len(mark):]
                return joined[:at].decode("utf-8", "replace")
            chunks = [joined]
            if time.monotonic() > end or self.proc.poll() is not None:
                raise RuntimeError(f"dbpmda stopped answering after {line!r}: {joined[-500:]!r}")
            if select.select([self.proc.stdout], [], [], 1.0)[0]:
                chunks.append(os.read(self.proc.stdout.fileno(), 1 << 20))

    def fetch(self, names: list[str]) -> tuple[float, list[int], str]:
        """(seconds per dbpmda's Timer, numval of each metric, output)."""
        out = self.command("fetch " + " ".join(names))
        timer = re.search(r"^Timer: ([\d.]+) seconds", out, re.MULTILINE)
        if timer is None:
            raise RuntimeError(f"fetch failed: {out[-800:]}")
        return float(timer.group(1)), [int(n) for n in re.findall(r"numval: (-?\d+)", out)], out

    def cpu(self) -> float:
        """The PMDA's CPU seconds, its refresh process's included (hpclustre's refresh_process)."""
        return process_cpu(self.pid) + sum(process_cpu(c, children=True) for c in _children(self.pid))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.proc.stdin.write(b"quit\n")
            self.proc.stdin.close()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError), open(f"/proc/{entry}/stat") as f:
                if int(f.read().rpartition(")")[2].split()[1]) == pid:
                    found.append(int(entry))
    return found


def our_pmda(tmp: str, root: str, interval: float, label: str) -> Dbpmda:
    config = os.path.join(tmp, f"{label}.yaml")
    with open(config, "w") as f:
        json.dump({"root": root, "interval": interval, "timeout": 60}, f)   # JSON is YAML
    state = tempfile.mkdtemp(prefix=f"{label}-state-", dir=tmp)
    session = Dbpmda([sys.executable, "-m", "pmdas.hpclustre", "-c", config, "-s", state],
                     "hpc\t411:*:*", {**os.environ, "PYTHONPATH": REPO}, tmp)
    deadline = time.monotonic() + 300
    while _value(session, "hpc.lustre.agent.refreshes") < 1:   # the first refresh runs in the background
        if time.monotonic() > deadline:
            raise RuntimeError("our PMDA did not finish its first refresh in 300 s")
        time.sleep(0.5)
    return session


def _value(session: Dbpmda, name: str) -> int:
    _t, numval, out = session.fetch([name])
    found = re.search(r"^\s+value (\d+)", out, re.MULTILINE)
    return int(found.group(1)) if numval and numval[0] > 0 and found else 0


def fetch_loop(session: Dbpmda, names: list[str], count: int, seconds: float | None = None) -> dict:
    """Fetch ``count`` times (or for ``seconds``); latency, values per fetch, PMDA CPU per fetch."""
    latencies, values, cpu0 = [], 0, session.cpu()
    end = time.monotonic() + seconds if seconds else None
    while (len(latencies) < count) if end is None else (time.monotonic() < end):
        took, numval, _out = session.fetch(names)
        if min(numval, default=0) <= 0:
            raise RuntimeError(f"fetch of {names} returned no values: numval {numval}")
        latencies.append(took)
        values = sum(numval)
    result = {k: round(v * 1e3, 3) for k, v in stats(latencies).items() if k != "n"}
    return {"n": len(latencies), "values": values, "ms": result,
            "pmda_cpu_ms_per_fetch": round((session.cpu() - cpu0) / len(latencies) * 1e3, 3)}


def our_fetch_latency(tmp: str, kind: str, fetches: int, busy_seconds: float) -> dict:
    root, out = os.path.join(tmp, kind), {}
    for mode, interval in (("idle", 3600.0), ("during refresh", 0.2)):
        session = our_pmda(tmp, root, interval, f"{kind}-{mode.split()[0]}")
        try:
            refreshes0, cpu0 = _value(session, "hpc.lustre.agent.refreshes"), session.cpu()
            for label, names in FETCHES[kind]:
                full = [f"hpc.lustre.{n}" for n in names]
                big = label == "one histogram" or label == "per OSC"
                out[f"{label}, {mode}"] = (
                    fetch_loop(session, full, max(10, fetches // 10) if big else fetches) if mode == "idle"
                    else fetch_loop(session, full, 0, busy_seconds / len(FETCHES[kind])))
            if mode != "idle":
                done = _value(session, "hpc.lustre.agent.refreshes") - refreshes0
                out["pmda process CPU per refresh (s)"] = round((session.cpu() - cpu0) / max(1, done), 3)
                out["refreshes during the fetches"] = done
        finally:
            session.close()
    return out


# -- stock agent ---------------------------------------------------------------------------
def stock_comparison(tmp: str, fetches: int, rounds: int) -> dict:
    root = os.path.join(tmp, "llite")
    demo_run(root, "llite", TREES["llite"][0])
    env = {**os.environ, "LUSTRE_LLITE_PATH": os.path.join(root, "proc/fs/lustre/llite") + "/",
           "LUSTRE_LNET_PATH": os.path.join(root, "proc/sys/lnet") + "/"}
    try:
        stock = Dbpmda(["/usr/bin/perl", STOCK_PMDA], "lustre\t134:*:*", env, tmp)
    except (OSError, RuntimeError) as exc:
        return {"error": f"PCP's stock lustre agent cannot run here: {exc}"}
    ours = our_pmda(tmp, root, 3600.0, "llite-idle")
    ours_busy = our_pmda(tmp, root, 0.2, "llite-busy")
    try:
        agree = []
        for mine, theirs in LIKE_FOR_LIKE[:AGREE]:
            a = sorted(re.findall(r"value (\d+)", ours.fetch([f"hpc.lustre.{mine}"])[2]))
            b = sorted(re.findall(r"value (\d+)", stock.fetch([theirs])[2]))
            agree.append(a == b and len(a) == 16)
        mine = [f"hpc.lustre.{m}" for m, _s in LIKE_FOR_LIKE]
        theirs = [s for _m, s in LIKE_FOR_LIKE]
        rows = {"stock (re-reads per fetch)": [], "ours idle": [], "ours during refresh": []}
        cpu = {"stock": [], "ours idle": []}
        for _ in range(rounds):   # interleaved rounds
            got = fetch_loop(stock, theirs, fetches)
            rows["stock (re-reads per fetch)"].append(got["ms"]["median"])
            cpu["stock"].append(got["pmda_cpu_ms_per_fetch"])
            got = fetch_loop(ours, mine, fetches)
            rows["ours idle"].append(got["ms"]["median"])
            cpu["ours idle"].append(got["pmda_cpu_ms_per_fetch"])
            rows["ours during refresh"].append(fetch_loop(ours_busy, mine, fetches)["ms"]["median"])
        refreshes0, cpu0 = _value(ours_busy, "hpc.lustre.agent.refreshes"), ours_busy.cpu()
        time.sleep(10)
        done = _value(ours_busy, "hpc.lustre.agent.refreshes") - refreshes0
        per_refresh_ms = (ours_busy.cpu() - cpu0) / max(1, done) * 1e3
    finally:
        for session in (stock, ours, ours_busy):
            session.close()
    refresher = make_refresher(root)
    refresher.refresh_once()
    in_process = [measure(refresher.refresh_once)[1] * 1e3 for _ in range(50)]
    stock_cpu = statistics.median(cpu["stock"])
    latency = {k: stats(v) for k, v in rows.items()}
    stock_ms = latency["stock (re-reads per fetch)"]["median"]
    return {"tree": "16 filesystems, llite + LNet only, Lustre 2.10 layout (what the stock agent reads)",
            "metrics": LIKE_FOR_LIKE,
            "values_agree": dict(zip([m for m, _ in LIKE_FOR_LIKE], agree, strict=False)),
            "fetch_ms_median_per_round": latency,
            "cpu_ms_per_fetch": {"stock (its refresh)": stats(cpu["stock"]),
                                 "ours idle": stats(cpu["ours idle"])},
            "ours_cpu_ms_per_refresh": {"pmda process": round(per_refresh_ms, 3),
                                        "in process": stats(in_process)},
            "ratios": {"fetch ours idle / stock": ratio(latency["ours idle"]["median"], stock_ms),
                       "fetch ours during refresh / stock": ratio(latency["ours during refresh"]["median"],
                                                                 stock_ms),
                       "refresh CPU ours (pmda process) / stock": ratio(per_refresh_ms, stock_cpu),
                       "refresh CPU ours (in process) / stock": ratio(statistics.median(in_process),
                                                                      stock_cpu)}}


def print_stock(result: dict) -> None:
    print(f"\n== against PCP's stock lustre agent: {result.get('tree', '')} ==")
    if "error" in result:
        print(result["error"])
        return
    print(f"   {len(result['metrics'])} llite metrics x 16 filesystems per fetch; values agree: "
          f"{result['values_agree']} (the demo's 2.10 op lines are [usec], the stock agent wants [regs])")
    print(f"{'agent':<30}{'fetch median ms':>16}{'range':>16}")
    for name, row in result["fetch_ms_median_per_round"].items():
        print(f"{name:<30}{row['median']:>16.3f}{row['min']:>9.3f}-{row['max']:<6.3f}")
    cpu = result["cpu_ms_per_fetch"]
    print(f"CPU ms per fetch: stock {cpu['stock (its refresh)']['median']:.3f} (= its refresh), "
          f"ours {cpu['ours idle']['median']:.3f}; ours per refresh: "
          f"{result['ours_cpu_ms_per_refresh']['pmda process']:.3f} (PMDA process), "
          f"{result['ours_cpu_ms_per_refresh']['in process']['median']:.3f} (in process)")
    print("ratios:", ", ".join(f"{k} {v:.2f}" for k, v in result["ratios"].items()))


# -- report --------------------------------------------------------------------------------
def print_refresh(result: dict) -> None:
    print(f"\n== refresh: {result['tree']} tree, {result['files']} files, {result['megabytes']} MB, "
          f"instances {result['instances']} ==")
    print(f"   (generated in {result['generate_seconds']} s; first agent refresh {result['first_refresh']})")
    print(f"{'case':<20}{'wall ms':>10}{'CPU ms':>10}{'CPU range ms':>18}{'CPU x cat':>11}"
          f"{'CPU x py':>10}{'wall x py':>11}")
    for name, row in result["rows"].items():
        w, c = row["wall"], row["cpu"]
        print(f"{name:<20}{w['median'] * 1e3:>10.1f}{c['median'] * 1e3:>10.1f}"
              f"{c['min'] * 1e3:>9.0f}-{c['max'] * 1e3:<8.0f}{c['x_cat']:>11.2f}{c['x_python_read']:>10.2f}"
              f"{w['x_python_read']:>11.2f}")


def print_fetch(kind: str, result: dict) -> None:
    print(f"\n== fetch latency via dbpmda: {kind} (PMDA CPU per fetch: idle rows only) ==")
    print(f"{'fetch':<40}{'n':>5}{'values':>8}{'median ms':>11}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}"
          f"{'PMDA CPU ms':>13}")
    for name, row in result.items():
        if isinstance(row, dict):
            ms = row["ms"]
            cpu = f"{row['pmda_cpu_ms_per_fetch']:.3f}" if name.endswith("idle") else "-"
            print(f"{name:<40}{row['n']:>5}{row['values']:>8}{ms['median']:>11.3f}{ms['p90']:>9.3f}"
                  f"{ms['p99']:>9.1f}{ms['max']:>9.1f}{cpu:>13}")
        else:
            print(f"{name}: {row}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="refresh rounds per tree")
    parser.add_argument("--fetches", type=int, default=200, help="fetches per small fetch set")
    parser.add_argument("--busy-seconds", type=float, default=20.0, help="fetching during refreshes")
    parser.add_argument("--skip-stock", action="store_true")
    parser.add_argument("--output", default=RESULTS)
    args = parser.parse_args(argv)
    result: dict = {"benchmark": "lustre_scale", "python": platform.python_version(),
                    "machine": platform.machine(), "cpus": os.cpu_count(),
                    "load_before": os.getloadavg(), "when": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    with tempfile.TemporaryDirectory(prefix="lustre-scale-") as tmp:
        for kind in ("client", "oss"):
            result[f"refresh {kind}"] = refresh_side_by_side(tmp, kind, args.rounds)
            print_refresh(result[f"refresh {kind}"])
            result[f"fetch {kind}"] = our_fetch_latency(tmp, kind, args.fetches, args.busy_seconds)
            print_fetch(kind, result[f"fetch {kind}"])
        if not args.skip_stock:
            stock = result["stock lustre agent"] = stock_comparison(tmp, args.fetches, args.rounds)
            print_stock(stock)
    result["load_after"] = os.getloadavg()
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    print(f"\nwrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
