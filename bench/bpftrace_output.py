"""Benchmark: output handling of hpcbpftrace vs. PCP's stock bpftrace agent, 10,000 keys per interval.

Both agents are fed the same captured output of a real bpftrace 0.17 script that prints
a map of 10,000 keys every second (bench/data/bpftrace_10k_keys.jsonl.gz; --capture
records it again, which needs root and bpftrace).  Measured: the CPU time
(time.process_time: every thread of the process) each agent spends turning one print
into values and instances ready to serve (also: ten prints and then one refresh, the
usual case of a print a second and a fetch every 10 s):

  ours   per line what the script's reader thread does with it (ScriptProcess._take_line:
         a map print is kept undecoded, anything else parsed at once), then one refresh
         (Refresher.refresh_once: registry sync, decoding each variable's latest print,
         datatable, metric table, instance ids) and HpcPMDA.prepare (value maps by
         instance id, ctypes instance arrays, label JSON), as the refresh thread does.
  stock  per line bpftrace.parser.process_bpftrace_output (as its process manager's reader
         does), then BPFtraceCluster.refresh_callback (as pmcd's refresh triggers it): a
         'refresh' request over the service pipe to the real ProcessManager.run() loop
         (asyncio, in a thread here instead of a child process), which pickles the script
         and its data back, then UncachedIndom.update of the 10,000 instances.

Also measured, separately: one fetch of every instance through each agent's Python
fetch callback.  Not measured (the same for both, or not comparable): reading the
pipe from bpftrace, libpcp_pmda's C side, pmcd.  Each agent runs in its own worker
process (PCP's Python PMDA class keeps per-process global state), built offline, not
loaded into pmcd: the stock agent in pmcd would start its own bpftrace children and
share pmcd with other users; in-process, both see exactly the same bytes and nothing
else.  The stock code is imported from /var/lib/pcp/pmdas/bpftrace and called, never
copied.  Workers alternate request by request, so background load hits both alike.

    .venv/bin/python bench/bpftrace_output.py [--rounds 40] [--capture]
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from bench.harness import report  # noqa: E402

FIXTURE = os.path.join(HERE, "data", "bpftrace_10k_keys.jsonl.gz")
STOCK_DIR = "/var/lib/pcp/pmdas/bpftrace"
KEYS = 10_000
CAPTURE_INTERVALS = 8

# 10,000 keys per print: 1,000 slots updated every 10 ms (a verifier-friendly loop; one
# program cannot update 10,000 keys), so every print lists all 10,000 with new counts.
# bpftrace 0.17 maps hold 4,096 keys unless BPFTRACE_MAP_KEYS_MAX says otherwise.
BODY = """
interval:ms:10
{
	$base = @next;
	@next = ($base + 1000) % 10000;
	$i = 0;
	while ($i < 1000) {
		@m[$base + (uint64)$i] = count();
		$i++;
	}
}

interval:s:1
{
	print(@m);
}
"""
OUR_SCRIPT = ("// name: hicard\n"
              "// description: 10,000 keys per interval, for bench/bpftrace_output.py.\n"
              "// exports: @m counter by slot unit count: updates of this slot\n" + BODY)
# The stock agent's header: its name, and no print block of its own (the body prints).
STOCK_SCRIPT = "// name: hicard\n// custom-output-block\n" + BODY


# -- capture ---------------------------------------------------------------------------
def capture(path: str, intervals: int = CAPTURE_INTERVALS) -> None:
    """Run the script under real bpftrace and keep its output up to the exit dump."""
    with tempfile.TemporaryDirectory(prefix="bpftrace-capture-") as tmp:
        script = os.path.join(tmp, "hicard.bt")
        with open(script, "w", encoding="utf-8") as f:
            f.write(OUR_SCRIPT)
        proc = subprocess.Popen(["bpftrace", "-f", "json", script], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, start_new_session=True,
                                env={**os.environ, "BPFTRACE_MAP_KEYS_MAX": str(2 * KEYS)})
        try:     # read while it runs: a print is bigger than a pipe's buffer
            proc.communicate(timeout=intervals + 1.5 + 3.0)   # compile/attach takes a moment
        except subprocess.TimeoutExpired:
            pass
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                out, err = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
    kept = []
    for raw in out.splitlines(keepends=True):
        if not raw.strip():
            break                                    # two blank lines, then the exit dump
        kept.append(raw)
    maps = [json.loads(raw)["data"]["@m"] for raw in kept if b'"type": "map"' in raw]
    if not maps or any(len(m) != KEYS for m in maps):
        raise SystemExit(f"capture failed: map sizes {[len(m) for m in maps]}; "
                         f"stderr: {err.decode(errors='replace')[-500:]}")
    kept = kept[:1 + intervals]                      # attached_probes + the intervals
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with gzip.open(path, "wb") as f:
        f.writelines(kept)
    print(f"captured {len(kept) - 1} intervals of {KEYS} keys ({sum(map(len, kept[1:])) // (len(kept) - 1)} "
          f"bytes each) into {path}")


def load_fixture(path: str) -> tuple[bytes, list[bytes]]:
    """(the attached_probes line, one map line per interval)."""
    with gzip.open(path, "rb") as f:
        lines = f.read().splitlines(keepends=True)
    return lines[0], lines[1:]


# -- the two agents, one per worker process --------------------------------------------
class Ours:
    def __init__(self, tmp: str, first: bytes):
        from pmdas.common.config import COMMON_OPTIONS, Config, validate
        from pmdas.common.pmda import HpcPMDA
        from pmdas.common.refresh import Refresher
        from pmdas.hpcbpftrace.collector import BpftraceAgent
        from pmdas.hpcbpftrace.registry import CURATED_DIR

        # A stand-in for bpftrace that prints nothing: the agent supervises it as usual,
        # and the bench hands the captured lines to the script's output handling itself.
        fake = os.path.join(tmp, "quiet-bpftrace")
        with open(fake, "w") as f:
            f.write("#!/bin/sh\nexec sleep 900\n")
        os.chmod(fake, 0o755)
        options = {**COMMON_OPTIONS, **BpftraceAgent.options}
        self.agent = BpftraceAgent(Config(validate(
            {"script_dir": os.path.join(tmp, "admin"), "curated_dir": CURATED_DIR, "enabled": [],
             "bpftrace": fake}, options, "bench"), None))
        self.agent.registry.add("hicard", OUR_SCRIPT, enable=True)
        self.refresher = Refresher(self.agent)
        self.pmda = HpcPMDA(self.agent)
        self.refresher.refresh_once()                # starts the script (the stand-in)
        # No public hook feeds lines: use the script's own per-line handler, as its reader does.
        self.process = self.agent.runner._get("hicard")
        self.handle(first)
        assert self.agent.runner.statuses()["hicard"].state == "running"
        metric, pmid = next((m, p) for m, p in self.pmda._pmids if m.name == "data.counter")
        self.cluster, self.item, self.pmid = metric.cluster, metric.item, pmid

    def handle(self, raw: bytes) -> None:
        self.process._take_line(self.process._proc, raw)

    def interval(self, lines: list[bytes]) -> None:
        for raw in lines:
            self.handle(raw)
        self.pmda.prepare(self.refresher.refresh_once())
        self.pmda._refresh(self.cluster)             # pmcd's next request swaps the new maps in

    def fetch_all(self) -> int:
        self.pmda._refresh(self.cluster)
        insts = list(self.pmda._served.values[self.pmid])
        for inst in insts:
            self.pmda._fetch(self.cluster, self.item, inst)
        return len(insts)

    def check(self) -> dict:
        values = self.refresher.published.values["hpc.bpftrace.data.counter"]
        mine = {k.rsplit(":", 1)[1]: v for k, v in values.items() if k.startswith("hicard:@m:")}
        return {"instances": len(mine), "sample": {k: mine.get(k) for k in ("0", "4999", "9999")}}

    def close(self) -> None:
        self.agent.close()


class Stock:
    def __init__(self, tmp: str, first: bytes):
        import asyncio
        import threading

        sys.path.insert(0, STOCK_DIR)
        from bpftrace.cluster import BPFtraceCluster
        from bpftrace.models import Logger, PMDAConfig, Script, Status
        from bpftrace.parser import parse_code, process_bpftrace_output
        from bpftrace.process_manager import ProcessManager, ScriptTasks
        from bpftrace.service import BPFtraceService
        from pcp.pmda import PMDA

        self.Status = Status
        self.process_output = process_bpftrace_output
        config = PMDAConfig()
        logger = Logger(lambda msg: None, lambda msg: print(msg, file=sys.stderr))
        self.service = BPFtraceService(config, logger)
        self.runtime_info = self.service.gather_runtime_info()   # runs `bpftrace --version`
        script = parse_code(Script(STOCK_SCRIPT))
        script.state.status = Status.Started
        ready = threading.Event()

        def manager() -> None:
            # The stock process manager's own loop, in a thread of this process instead
            # of a child process (same pipe protocol, same pickling of the script back).
            asyncio.set_event_loop(asyncio.new_event_loop())
            self.manager = ProcessManager(config, logger, self.service.child_pipe, self.runtime_info)
            self.manager.scripts[script.script_id] = script      # as register() does,
            self.manager.script_tasks[script.script_id] = ScriptTasks()  # minus starting bpftrace
            ready.set()
            self.manager.run()

        self.thread = threading.Thread(target=manager, name="stock-process-manager", daemon=True)
        self.thread.start()
        ready.wait(10)
        self.script = script                          # the manager's copy, which output updates
        self.pmda = PMDA("bpftrace", 151)
        self.cluster = BPFtraceCluster(self.pmda, logger, self.service, self.service.refresh_script(
            script.script_id))
        self.cluster.register_metrics()
        self.handle(first)
        self.item = next(i for i, v in self.cluster.item_to_var.items() if v == "@m")

    def handle(self, raw: bytes) -> None:
        self.process_output(self.runtime_info, self.script, raw.decode("utf-8"))

    def interval(self, lines: list[bytes]) -> None:
        for raw in lines:
            self.handle(raw)
        self.cluster.refresh_callback()

    def fetch_all(self) -> int:
        indom = self.cluster.indoms["@m"]
        insts = [indom.instance_id_lookup[name] for name in indom.instance_names]
        for inst in insts:
            self.cluster.fetch_callback(self.item, inst)
        return len(insts)

    def check(self) -> dict:
        data = self.cluster.script.state.data.get("@m", {})
        return {"instances": len(self.cluster.indoms["@m"].instance_names),
                "sample": {k: data.get(k) for k in ("0", "4999", "9999")}}

    def close(self) -> None:
        self.script.state.status = self.Status.Stopped       # nothing to stop: no bpftrace ran
        self.service.pipe.send(None)                 # as stop_daemon() does: the manager's
        self.service.pipe.recv()                     # run() ends and answers None
        self.thread.join(10)


def worker(kind: str, fixture: str) -> int:
    """Serve requests on stdin, one JSON answer per line on stdout.

    ``interval K N``: hand over N prints (from the K-th, cycling), then refresh once;
    ``fetch``: fetch every instance once; ``check``: instance count and sample values.
    """
    first, intervals = load_fixture(fixture)
    out = sys.stdout
    sys.stdout = sys.stderr                           # nothing else may write to the protocol
    with tempfile.TemporaryDirectory(prefix=f"bpftrace-output-{kind}-") as tmp:
        os.chdir(tmp)                                 # PCP's PMDA class writes <name>.log here
        agent = (Ours if kind == "ours" else Stock)(tmp, first)
        try:
            out.write(json.dumps({"ready": True}) + "\n")
            out.flush()
            for request in sys.stdin:
                command, *arg = request.split()
                if command == "quit":
                    break
                if command == "check":
                    answer = agent.check()
                else:
                    wall, cpu = time.perf_counter(), time.process_time()
                    if command == "interval":
                        k, n = map(int, arg)
                        agent.interval([intervals[(k + i) % len(intervals)] for i in range(n)])
                    else:
                        n = agent.fetch_all()
                    answer = {"cpu": time.process_time() - cpu, "wall": time.perf_counter() - wall, "n": n}
                out.write(json.dumps(answer) + "\n")
                out.flush()
        finally:
            agent.close()
    return 0


# -- the coordinator ------------------------------------------------------------------
class Worker:
    def __init__(self, kind: str, fixture: str):
        self.kind = kind
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker", kind, fixture],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        ready = self.proc.stdout.readline()
        if not ready:
            raise SystemExit(f"the {kind} worker did not start (see its messages above)")

    def ask(self, request: str) -> dict:
        self.proc.stdin.write(request + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
            self.proc.wait(30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=40, help="intervals measured per agent")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--fixture", default=FIXTURE)
    parser.add_argument("--capture", action="store_true", help="record the fixture again (root, bpftrace)")
    parser.add_argument("--worker", nargs=2, metavar=("KIND", "FIXTURE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv if argv is not None else [])
    if args.worker:
        return worker(*args.worker)
    if not os.path.isdir(os.path.join(STOCK_DIR, "bpftrace")):
        print(f"bpftrace_output: PCP's bpftrace agent is not installed in {STOCK_DIR}; not run",
              file=sys.stderr)
        return 2
    if args.capture or not os.path.exists(args.fixture):
        if os.geteuid() != 0 or shutil.which("bpftrace") is None:
            print("bpftrace_output: capturing the fixture needs root and bpftrace", file=sys.stderr)
            return 2
        capture(args.fixture)
    first, intervals = load_fixture(args.fixture)
    line_bytes = statistics.median(map(len, intervals))

    # Scenario → worker request.  The first is the one the issue asks for; the second is
    # the usual deployment (a print a second, one refresh/fetch per 10 s: our agent's
    # default interval, and a pmlogger's typical one); the third is the fetch that follows.
    scenarios = {"1 print + refresh": "interval {k} 1", "10 prints + refresh": "interval {k} 10",
                 "fetch all instances": "fetch"}
    cpu: dict[str, dict[str, list[float]]] = {s: {"stock agent": [], "ours": []} for s in scenarios}
    wall: dict[str, dict[str, list[float]]] = {s: {"stock agent": [], "ours": []} for s in scenarios}
    workers = {"stock agent": Worker("stock", args.fixture), "ours": Worker("ours", args.fixture)}
    try:
        for k in range(args.warmup):
            for w in workers.values():
                for request in scenarios.values():
                    w.ask(request.format(k=k))
        checks = {name: w.ask("check") for name, w in workers.items()}
        for k in range(args.warmup, args.warmup + args.rounds):
            order = list(workers) if k % 2 == 0 else list(reversed(workers))
            for scenario, request in scenarios.items():
                for name in order:
                    answer = workers[name].ask(request.format(k=k))
                    cpu[scenario][name].append(answer["cpu"])
                    wall[scenario][name].append(answer["wall"])
                    assert scenario != "fetch all instances" or answer["n"] == KEYS, (name, answer)
        checks_after = {name: w.ask("check") for name, w in workers.items()}
    finally:
        for w in workers.values():
            w.close()

    for when in (checks, checks_after):     # the two must agree before their costs mean anything
        assert when["ours"]["instances"] == when["stock agent"]["instances"] == KEYS, when
        assert when["ours"]["sample"] == when["stock agent"]["sample"], when
    med = {s: {v: statistics.median(x) for v, x in by.items()} for s, by in cpu.items()}
    ratios = {s: m["ours"] / m["stock agent"] for s, m in med.items()}
    print(f"\n{'CPU per request (median)':<26}{'stock ms':>10}{'ours ms':>10}{'ours/stock':>12}")
    for s, m in med.items():
        print(f"{s:<26}{m['stock agent'] * 1e3:>10.2f}{m['ours'] * 1e3:>10.2f}{ratios[s]:>12.2f}")
    one, ten = med["1 print + refresh"], med["10 prints + refresh"]
    notes = (f"{KEYS} keys per print ({line_bytes / 1e3:.0f} kB of JSON); CPU = process_time of each "
             f"agent's worker process, medians of {args.rounds} interleaved rounds.\n"
             f"output handling, one print + one refresh: ours/stock = {ratios['1 print + refresh']:.2f} "
             f"(ours {one['ours'] * 1e3:.1f} ms, stock {one['stock agent'] * 1e3:.1f} ms; with a print "
             f"and a refresh every second: {one['ours']:.1%} vs {one['stock agent']:.1%} of a CPU)\n"
             f"a print a second, a refresh every 10 s: ours/stock = {ratios['10 prints + refresh']:.2f} "
             f"({ten['ours'] / 10:.1%} vs {ten['stock agent'] / 10:.1%} of a CPU)\n"
             f"one fetch of all {KEYS} instances (Python fetch callbacks): ours/stock = "
             f"{ratios['fetch all instances']:.2f}\n"
             "In-process comparison of output handling, not of whole pmcd-loaded agents: both get the "
             "same captured lines offline (no pmcd, no bpftrace children, pipe reading excluded).")
    report("bpftrace_output", cpu["1 print + refresh"], anchor="stock agent", unit="ms", notes=notes,
           extra={"keys": KEYS, "interval_line_bytes": line_bytes, "rounds": args.rounds,
                  "ratio_ours_to_stock": {s: round(r, 3) for s, r in ratios.items()},
                  "cpu_s": {s: {v: summary_of(x) for v, x in by.items()} for s, by in cpu.items()},
                  "wall_s": {s: {v: summary_of(x) for v, x in by.items()} for s, by in wall.items()},
                  "checks": [checks, checks_after], "stock_agent": f"{STOCK_DIR} (PCP {pcp_version()})",
                  "fixture": os.path.relpath(args.fixture, ROOT), "script": BODY,
                  "measured": __doc__.split("\n\n")[1:4]})
    return 0


def summary_of(samples: list[float]) -> dict[str, float]:
    return {"median": statistics.median(samples), "min": min(samples), "n": len(samples)}


def pcp_version() -> str:
    try:
        return subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "pcp"], capture_output=True,
                              text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
