"""Benchmark: the DTN testbed with a real round-trip time (delay line), the paper's experiment again.

The testbed's clusters are joined by the delay line (``dtn_lab.testbed.delayline``: frames
held RTT/2 each way, random loss), nodes keep their NIC cap (HTB, ``--node-rate``) and have
TCP buffers capped as on tuned DTNs, with no per-stream rate cap: one stream's rate is
TCP's (window / RTT, slow start, loss recovery).  In one run:

0. The path: what the delay line forwards (one unshaped stream at 10 ms), ping RTT against
   the setting, one stream with capped buffers against window / RTT.
1. The paper's table: Mode I (C=8, P=16) and Mode II (C=4, P=8), 1 to 3 nodes per side,
   the four climate-shaped data sets, at 130 ms and 10 ms RTT (0.01% loss); node-scaling
   ratio 3 vs 1 against the published 1.8× (Mode I) and 2.7× (Mode II).
2. C × P heat maps per shape at 130 ms (one node pair) and ``--auto`` against the best
   fixed point, at 0.01% and 0.1% loss (goal >= 95% within the probe budget).
3. Many small files at 130 ms: dtn-transfer's defaults against globus-url-copy's, and
   ``--verify`` against no verification (whole transfers, sides alternating).

Rates are bytes/s delivered to the destination nodes' links over a window after warm-up
(``dtn_lab.trial``).  A shape ``NAME_xK`` is shape NAME at K times its scale (``large_x2``: six
files of 40-80 MB), generated beside the plain one.  ``--before-tree DIR`` runs ``--auto`` of
another tree (an exported older commit) right after this tree's, on the same testbed and data,
so before and after are compared with the same fixed grid in one run; ``--whole`` also times
whole transfers of each shape (best fixed point, --auto, --auto before), probing included.
``--quick`` is a reduced run (130 ms only, two shapes, a 2 × 2 grid,
one loss level) for checking that it all works.  Writes bench/results/dtn_rtt.json (or
dtn_rtt_quick.json) and PNG heat maps and scaling plots beside it.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.harness import RESULTS_DIR  # noqa: E402
from dtn_lab import plots  # noqa: E402
from dtn_lab.path import testbed_path  # noqa: E402
from dtn_lab.sweep import MODES  # noqa: E402
from dtn_lab.testbed import DEST, SOURCE, Testbed, wan  # noqa: E402
from dtn_lab.testbed import datasets as ds  # noqa: E402
from dtn_lab.testbed.layout import save as save_layout  # noqa: E402
from dtn_lab.trial import run_trial  # noqa: E402
from dtn_transfer.options import RunOptions  # noqa: E402

MIB = 2 ** 20
PAPER = {"Mode I": 1.8, "Mode II": 2.7}
SPLIT = 32 << 20     # --split for the huge set at 3 nodes
SHAPE_SCALES = {"small": 2.0, "medium": 1.5, "large": 1.0, "huge": 1.0}
# --auto of another tree, in a process of its own, on the testbed this one built
BEFORE_TRIAL = """
import json, os, sys
sys.path.insert(0, sys.argv[1])
from dtn_lab.testbed import Testbed
from dtn_lab.trial import run_trial
bed = Testbed.load(sys.argv[2])
os.environ.update(bed.client_environment())
r = run_trial(bed, sys.argv[3], 1, auto=True, seconds=float(sys.argv[4]), warmup=float(sys.argv[5]),
              probe_budget=float(sys.argv[6]), label=sys.argv[3] + " auto before",
              report=lambda line: print("  before: " + line, file=sys.stderr, flush=True))
print(json.dumps(r.to_json()))
"""


def base_shape(shape: str) -> tuple[str, float]:
    """``large_x2`` -> ("large", 2 x large's scale); a plain name -> (name, its scale)."""
    name, _, times = shape.partition("_x")
    return name, SHAPE_SCALES[name] * (float(times) if times else 1.0)


def add_shape(bed: Testbed, shape: str) -> None:
    name, scale = base_shape(shape)
    if shape == name:
        bed.add_datasets([shape], scale)
        return
    L = bed.layout                      # a scaled copy of a shape, under its own name
    summary = ds.generate(L.source_dir(shape), name, scale)
    os.makedirs(L.dest_dir(shape), exist_ok=True)
    os.chmod(L.dest_dir(shape), 0o777)
    L.datasets[shape] = {**summary, "source": L.source_dir(shape), "dest": L.dest_dir(shape)}
    save_layout(L)


def say(text: str) -> None:
    print(text, flush=True)


def bring_up(args, rtt_ms: float, loss: float, nodes: int = 3, **extra) -> Testbed:
    options = {"node_rate": args.node_rate, "flow_rate": None, "tcp_buffer": args.tcp_buffer,
               "congestion": args.congestion, **extra}
    bed = Testbed.up(args.name, nodes, nodes, datasets=(), subnet=args.subnet, rtt_ms=rtt_ms, loss=loss,
                     root=f"/tmp/{args.name}-data", **options)
    os.environ.update(bed.client_environment())
    return bed


def path_check(args, bed: Testbed) -> dict:
    """Ping against the setting and one capped stream against window / RTT."""
    L = bed.layout
    echo = wan.ping(L, count=20, interval=0.05)
    src, dst = L.cluster(SOURCE)[0], L.cluster(DEST)[0]
    sink = subprocess.Popen(["ip", "netns", "exec", dst.namespace, *wan.probe_argv("sink")],
                            stdout=subprocess.PIPE, text=True, env=wan.probe_env())
    sink.stdout.readline()
    stream = wan.probe(src.namespace, "send", dst.address, "--seconds", "6")
    sink.wait(10)
    window = L.tcp_buffer / (L.rtt_ms / 1000) if L.tcp_buffer else None
    out = {"rtt_set_ms": L.rtt_ms, "loss": L.loss, "ping_median_ms": echo["median_ms"],
           "ping_min_ms": echo["min_ms"], "ping_lost": echo["lost"], "ping_count": echo["sent"],
           "rtt_error": echo["median_ms"] / L.rtt_ms - 1, "stream": stream,
           "buffer_over_rtt": window, "stream_over_buffer_rtt": stream["rate"] / window if window else None}
    say(f"  RTT {L.rtt_ms:g} ms: ping median {echo['median_ms']:.2f} ms ({out['rtt_error']:+.1%}), "
        f"min {echo['min_ms']:.2f}; one stream {stream['rate'] / MIB:.2f} MiB/s = "
        f"{out['stream_over_buffer_rtt'] or 0:.2f} x buffer/RTT (cwnd {stream['cwnd']}, "
        f"srtt {stream['srtt_ms']} ms)")
    return out


def capacity(args) -> dict:
    """What the delay line forwards: one stream, no node cap worth the name, 10 ms, host buffers."""
    bed = bring_up(args, 10.0, 0.0, nodes=1, node_rate=2 << 30, tcp_buffer=None, congestion=None,
                   anonymous=True)
    L = bed.layout
    src, dst = L.cluster(SOURCE)[0], L.cluster(DEST)[0]
    rates = []
    for _ in range(2):
        sink = subprocess.Popen(["ip", "netns", "exec", dst.namespace, *wan.probe_argv("sink")],
                                stdout=subprocess.PIPE, text=True, env=wan.probe_env())
        sink.stdout.readline()
        rates.append(wan.probe(src.namespace, "send", dst.address, "--seconds", "5")["rate"])
        sink.wait(10)
    Testbed.down(args.name, keep_data=True)
    say(f"  delay line forwards {max(rates) / MIB:.0f} MiB/s (one stream, MTU {L.mtu}, 10 ms), "
        f"{', '.join(f'{r / MIB:.0f}' for r in rates)}")
    return {"rates": rates, "mtu": L.mtu, "rtt_ms": 10.0}


def cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def warmup(args, bed: Testbed, shape: str | None = None) -> float:
    if shape in args.shape_warmup:
        return args.shape_warmup[shape]
    return args.warmup if args.warmup is not None else 2.0 + 20 * bed.layout.rtt_ms / 1000


def trial(bed: Testbed, shape: str, nodes: int, c: int, p: int, args, trials: list, label: str,
          split: int | None = None) -> float:
    """One fixed-point trial; the machine's CPU use during it is kept with it (2 shared cores)."""
    b0, t0 = cpu_ticks()
    r = run_trial(bed, shape, nodes, RunOptions(concurrency=c, parallelism=p, pipelining=True, split=split),
                  seconds=args.seconds, warmup=warmup(args, bed, shape), label=label)
    b1, t1 = cpu_ticks()
    trials.append({**r.to_json(), "rtt_ms": bed.layout.rtt_ms, "loss": bed.layout.loss,
                   "cpu_busy": (b1 - b0) / max(1, t1 - t0)})
    return r.rate


def paper_table(args, bed: Testbed, shapes: list[str], trials: list) -> dict:
    """Mode I/II × 1..3 nodes per shape; ratio 3 vs 1."""
    out = {}
    for shape in shapes:
        rates = {mode: {} for mode in MODES}
        for nodes in (1, 2, 3):
            for mode, (c, p) in MODES.items():
                rates[mode][nodes] = trial(bed, shape, nodes, c, p, args, trials,
                                           f"{shape} {mode} N={nodes}")
        row = {}
        cpu = {t["label"]: t.get("cpu_busy") for t in trials if t.get("dataset") == shape}
        for mode in MODES:
            one = rates[mode][1]
            row[mode] = {"rates": rates[mode], "ratio": rates[mode][3] / one if one else None,
                         "cpu_busy": {n: cpu.get(f"{shape} {mode} N={n}") for n in (1, 2, 3)}}
        out[shape] = row
        say(f"  {shape:7} " + "; ".join(
            f"{m}: " + " ".join(f"{rates[m][n] / MIB:5.2f}" for n in (1, 2, 3))
            + f" MiB/s ({row[m]['ratio']:.2f}x, CPU {row[m]['cpu_busy'][3] or 0:.0%} at N=3)" for m in MODES))
        if shape == "huge":     # two files: a third pair idles unless files are split into ranges
            for mode, (c, p) in MODES.items():
                split = trial(bed, shape, 3, c, p, args, trials, f"{shape} {mode} N=3 split", split=SPLIT)
                row[mode]["rate_3_split"] = split
                row[mode]["ratio_split"] = split / rates[mode][1] if rates[mode][1] else None
                say(f"  {shape:7} {mode} N=3 with --split {SPLIT >> 20}M: {split / MIB:5.2f} MiB/s "
                    f"({row[mode]['ratio_split'] or 0:.2f}x)")
        name = f"dtn_rtt{args.tag}_scaling_{int(bed.layout.rtt_ms)}ms_{shape}.png"
        plots.scaling(rates, os.path.join(args.out, name),
                      f"{shape}, RTT {bed.layout.rtt_ms:g} ms, loss {bed.layout.loss:.2%}: node scaling")
    return out


def grid_and_auto(args, bed: Testbed, shapes: list[str], grid: list[tuple[int, int]], trials: list) -> dict:
    """Per shape at one node pair: the C × P grid (top two re-measured), a heat map, then --auto."""
    out = {}
    loss = bed.layout.loss
    for shape in shapes:
        earlier = (args.earlier or {}).get(f"{loss:g}", {}).get(shape)
        if earlier:         # --reuse-grid: the fixed points of an earlier run, --auto again
            fixed = {tuple(int(x) for x in k.split("x")): r for k, r in earlier["grid"].items()}
            best = tuple(earlier["best_point"])
            fixed[best] = earlier["best_rate"]
        else:
            samples = {pt: [trial(bed, shape, 1, *pt, args, trials, f"{shape} C={pt[0]} P={pt[1]}")]
                       for pt in grid}
            top = sorted(samples, key=lambda pt: samples[pt][0], reverse=True)[:2]
            for _ in range(args.confirm):
                for pt in top:
                    samples[pt].append(trial(bed, shape, 1, *pt, args, trials,
                                             f"{shape} C={pt[0]} P={pt[1]}"))
            fixed = {pt: statistics.median(v) for pt, v in samples.items()}
            best = max(top, key=fixed.get)
        heat = f"dtn_rtt{args.tag}_heat_{shape}_loss{loss * 100:g}.png"
        png = plots.heatmap(fixed, os.path.join(args.out, heat),
                            f"{shape}, RTT {bed.layout.rtt_ms:g} ms, loss {loss:.2%}, 1 node pair")
        row = {"best_point": list(best), "best_rate": fixed[best], "heatmap": os.path.relpath(png, ROOT),
               "grid": {f"{c}x{p}": r for (c, p), r in sorted(fixed.items())}}
        sides = [("", None)] + ([("before_", args.before_tree)] if args.before_tree else [])
        for _ in range(args.auto_rounds):
            for prefix, tree in sides:
                auto = auto_trial(args, bed, shape, tree)
                trials.append({**auto, "rtt_ms": bed.layout.rtt_ms, "loss": loss})
                row.setdefault(f"{prefix}auto_trials", []).append(auto)
        for prefix, _ in sides:
            runs = row.pop(f"{prefix}auto_trials")
            auto = sorted(runs, key=lambda a: a["rate"])[(len(runs) - 1) // 2]    # the (lower) median round
            classes = (auto.get("auto_summary") or {}).get("classes", {})
            row.update({f"{prefix}auto_rate": auto["rate"], f"{prefix}auto_rates": [a["rate"] for a in runs],
                        f"{prefix}auto_whole_rate": auto["whole_rate"],
                        f"{prefix}ratio": auto["rate"] / fixed[best] if fixed[best] else None,
                        f"{prefix}probing_seconds": max((c["probing_seconds"] for c in classes.values()),
                                                        default=None),
                        f"{prefix}auto_choice": {k: c["final"] for k, c in classes.items()},
                        f"{prefix}auto_note": auto["note"]})
        out[shape] = row
        say(f"  {shape:8} best C={best[0]} P={best[1]} {fixed[best] / MIB:5.2f} MiB/s; "
            + "; ".join(f"auto{' before' if p else ''} {row[p + 'auto_rate'] / MIB:5.2f} MiB/s "
                        f"({row[p + 'ratio'] or 0:.1%}) after {row[p + 'probing_seconds']}s probing, "
                        f"chose {row[p + 'auto_choice']}" for p, _ in sides))
    return out


def auto_trial(args, bed: Testbed, shape: str, tree: str | None) -> dict:
    """One --auto trial of this tree, or of ``tree`` (another checkout) in a process of its own."""
    if tree is None:
        r = run_trial(bed, shape, 1, auto=True, seconds=args.auto_seconds, warmup=warmup(args, bed, shape),
                      probe_budget=args.probe_budget, label=f"{shape} auto",
                      report=lambda line: say("    " + line))
        return r.to_json()
    done = subprocess.run([sys.executable, "-c", BEFORE_TRIAL, os.path.abspath(tree), args.name, shape,
                           str(args.auto_seconds), str(warmup(args, bed, shape)), str(args.probe_budget)],
                          capture_output=True, text=True, cwd=tree)
    for line in done.stderr.splitlines():
        if line.startswith("  before: auto"):
            say("    " + line.strip())
    if done.returncode != 0:
        raise SystemExit(f"--auto of {tree} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.splitlines()[-1])


def whole_transfers(args, bed: Testbed, shapes: list[str], best: dict[str, tuple[int, int]]) -> dict:
    """Each shape moved whole on one pair: the best fixed point, --auto, --auto of --before-tree
    (probing included; sides alternate between rounds)."""
    L = bed.layout
    path = testbed_path(L)
    figures = ["--path-bandwidth", str(int(path.bandwidth)), "--stream-rate", str(int(path.stream_rate)),
               "--rtt", f"{path.rtt * 1000:g}", "--probe-budget", f"{args.probe_budget:g}"]
    out = {}
    for shape in shapes:
        c, p = best[shape]
        sides = {f"fixed C={c} P={p}": dtn(1, "-c", str(c), "-p", str(p), "--pipelining"),
                 "auto": dtn(1, "--auto", *figures)}
        if args.before_tree:
            sides["auto before"] = dtn(1, "--auto", *figures, tree=args.before_tree)
        say(f"  {shape}: whole transfers, one pair")
        seconds = {name: [] for name in sides}
        for k in range(args.repeat):
            for name in (list(sides) if k % 2 == 0 else list(sides)[::-1]):
                bed.clear_dest(shape)
                t0 = time.perf_counter()
                work = tempfile.mkdtemp(prefix="dtn-rtt-w-")
                sides[name](bed, L.source_dir(shape), L.dest_dir(shape), work)
                subprocess.run(["rm", "-rf", work], check=True)
                seconds[name].append(time.perf_counter() - t0)
                if not _arrived(L.source_dir(shape), L.dest_dir(shape)):
                    raise SystemExit(f"{shape} {name}: files missing or short")
                say(f"    {name}: {seconds[name][-1]:.1f} s")
        median = {n: statistics.median(v) for n, v in seconds.items()}
        fixed = median[f"fixed C={c} P={p}"]
        out[shape] = {"seconds": seconds, "median": median, "best_point": [c, p],
                      "auto_ratio": fixed / median["auto"],
                      "before_ratio": fixed / median["auto before"] if "auto before" in median else None}
        say(f"  {shape}: --auto takes {median['auto']:.1f} s, fixed {fixed:.1f} s "
            f"(ratio {out[shape]['auto_ratio']:.1%})"
            + (f"; before {median['auto before']:.1f} s ({out[shape]['before_ratio']:.1%})"
               if "auto before" in median else ""))
    return out


def _listing(src_dir: str, dst_dir: str, src_node: str, dst_node: str, scheme: str, path: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for parent, _dirs, names in os.walk(src_dir):
            for name in sorted(names):
                rel = os.path.relpath(os.path.join(parent, name), src_dir)
                f.write(f'"{scheme}://{src_node}{os.path.join(src_dir, rel)}" '
                        f'"{scheme}://{dst_node}{os.path.join(dst_dir, rel)}"\n')


def _arrived(src_dir: str, dst_dir: str) -> bool:
    for parent, _dirs, names in os.walk(src_dir):
        for name in names:
            rel = os.path.relpath(os.path.join(parent, name), src_dir)
            try:
                if os.path.getsize(os.path.join(dst_dir, rel)) != os.path.getsize(os.path.join(parent, name)):
                    return False
            except OSError:
                return False
    return True


def whole_runs(args, bed: Testbed, dataset: str, scale: float, sides: dict, repeat: int) -> dict:
    """Whole transfers of a data set (made at ``scale`` beside the testbed's), sides alternating."""
    L = bed.layout
    src_dir = os.path.join(L.root, "source", f"{dataset}-wan")
    dst_dir = os.path.join(L.root, "dest", f"{dataset}-wan")
    summary = ds.generate(src_dir, dataset, scale)
    work = tempfile.mkdtemp(prefix="dtn-rtt-bench-")
    out = {name: [] for name in sides}
    order = list(sides)
    for k in range(repeat):
        for name in (order if k % 2 == 0 else order[::-1]):
            subprocess.run(["rm", "-rf", dst_dir], check=True)
            os.makedirs(dst_dir)
            os.chmod(dst_dir, 0o777)
            t0 = time.perf_counter()
            sides[name](bed, src_dir, dst_dir, work)
            seconds = time.perf_counter() - t0
            if not _arrived(src_dir, dst_dir):
                raise SystemExit(f"{name}: files missing or short in {dst_dir}")
            out[name].append(seconds)
            say(f"    {name}: {seconds:.1f} s")
    subprocess.run(["rm", "-rf", work, dst_dir], check=True)
    return {"files": summary["files"], "bytes": summary["bytes"], "seconds": out,
            "median": {n: statistics.median(v) for n, v in out.items()}}


def raw_defaults(bed: Testbed, src_dir: str, dst_dir: str, work: str) -> None:
    """globus-url-copy with its defaults (one file at a time, one stream, no pipelining), pair 1."""
    L = bed.layout
    listing = os.path.join(work, "raw.list")
    _listing(src_dir, dst_dir, L.cluster(SOURCE)[0].endpoint, L.cluster(DEST)[0].endpoint, L.scheme, listing)
    subprocess.run(["globus-url-copy", "-cd", "-f", listing], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)


def dtn(nodes: int, *flags: str, tree: str | None = None):
    def run(bed: Testbed, src_dir: str, dst_dir: str, work: str) -> None:
        L = bed.layout
        src = f"{L.scheme}://" + ",".join(n.endpoint for n in L.cluster(SOURCE)[:nodes]) + src_dir
        dst = f"{L.scheme}://" + ",".join(n.endpoint for n in L.cluster(DEST)[:nodes]) + dst_dir
        env = {**os.environ, "DTN_TRANSFER_STATE_DIR": os.path.join(work, "state"),
               "PYTHONPATH": os.path.abspath(tree) if tree else ROOT}
        done = subprocess.run([sys.executable, "-m", "dtn_transfer.cli", "run", src, dst, "-q", *flags],
                              env=env, capture_output=True, text=True,
                              cwd=os.path.abspath(tree) if tree else None)
        if done.returncode != 0:
            raise SystemExit(f"dtn-transfer failed ({done.returncode}): {done.stderr[-2000:]}")
    return run


def small_files_and_verify(args, bed: Testbed) -> dict:
    say(f"  many small files ({args.small_scale} x the small set), defaults:")
    small = whole_runs(args, bed, "small", args.small_scale,
                       {"globus-url-copy defaults": raw_defaults, "dtn-transfer 1 pair": dtn(1),
                        "dtn-transfer 3 pairs": dtn(3)}, args.repeat)
    m = small["median"]
    small["ratio_1_pair"] = m["globus-url-copy defaults"] / m["dtn-transfer 1 pair"]
    small["ratio_3_pairs"] = m["globus-url-copy defaults"] / m["dtn-transfer 3 pairs"]
    say(f"  small files: dtn-transfer {small['ratio_1_pair']:.1f}x faster on one pair, "
        f"{small['ratio_3_pairs']:.1f}x on three")
    out = {"small_files": small}
    for dataset, scale in (("small", args.small_scale), ("medium", args.verify_scale)):
        say(f"  --verify against none, {dataset} ({scale} x), one pair:")
        v = whole_runs(args, bed, dataset, scale, {"no verification": dtn(1), "--verify": dtn(1, "--verify")},
                       args.repeat)
        v["cost"] = v["median"]["--verify"] / v["median"]["no verification"]
        say(f"  --verify takes {v['cost']:.2f}x the time ({dataset})")
        out[f"verify_{dataset}"] = v
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="rttbench", help="testbed name (torn down at the end)")
    parser.add_argument("--subnet", default="10.91.60.0/24")
    parser.add_argument("--node-rate", type=int, default=8 * MIB, help="per-node cap (NIC), bytes/s")
    parser.add_argument("--tcp-buffer", type=int, default=256 << 10, help="per-node TCP buffer maximum")
    parser.add_argument("--congestion", default="reno",
                        help="per-node congestion control (a namespace may use the host's allowed ones)")
    parser.add_argument("--rtts", default="130,10", help="RTTs (ms) of the paper table")
    parser.add_argument("--table-loss", type=float, default=1e-4)
    parser.add_argument("--auto-losses", default="0.0001,0.001")
    parser.add_argument("--later-loss-shapes", default="small,huge",
                        help="shapes of the C x P grid and --auto at the losses after the first")
    parser.add_argument("--shapes", default="small,medium,large,huge")
    parser.add_argument("--grid-c", default="1,4,16")
    parser.add_argument("--grid-p", default="1,4,16")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured window per trial")
    parser.add_argument("--warmup", type=float, default=None,
                        help="seconds before the window [default: 2 + 20 RTTs: GSI logins, data channels "
                             "and slow start all take round trips]")
    parser.add_argument("--auto-seconds", type=float, default=8.0)
    parser.add_argument("--probe-budget", type=float, default=30.0)
    parser.add_argument("--confirm", type=int, default=1)
    parser.add_argument("--small-scale", type=float, default=0.25,
                        help="small set for the whole-transfer part")
    parser.add_argument("--verify-scale", type=float, default=0.3, help="medium set for the --verify part")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--parts", default="path,table,auto,small")
    parser.add_argument("--reuse-grid", default=None, metavar="JSON",
                        help="take the C x P grids from an earlier result and run only --auto against them "
                             "(writes dtn_rtt_auto.json)")
    parser.add_argument("--output", default=None, help="result file name in bench/results")
    parser.add_argument("--shape-scales", default="",
                        help="data set scales, e.g. small=6,large=2 (default: " +
                             ",".join(f"{k}={v:g}" for k, v in SHAPE_SCALES.items()) + ")")
    parser.add_argument("--shape-warmup", default="",
                        help="warm-up per shape, e.g. small=15,large_x2=15 (the small set at 130 ms ramps "
                             "for ~15 s: globus-url-copy starts its sessions over seconds)")
    parser.add_argument("--before-tree", default=None,
                        help="also run --auto of another tree (an exported older commit) beside this one's")
    parser.add_argument("--auto-rounds", type=int, default=1, help="--auto trials per side (median kept)")
    parser.add_argument("--whole", action="store_true",
                        help="also time whole transfers per shape: best fixed point, --auto (and before)")
    parser.add_argument("--whole-shapes", default=None, help="shapes of --whole [default: all of --shapes]")
    parser.add_argument("--quick", action="store_true",
                        help="130 ms only, medium and huge, 2 x 2 grid, one loss")
    args = parser.parse_args(argv or [])
    if args.quick:
        args.rtts, args.shapes, args.grid_c, args.grid_p = "130", "medium,huge", "2,8", "1,8"
        args.auto_losses, args.confirm, args.repeat, args.small_scale = "0.0001", 0, 1, 0.1
        args.verify_scale = 0.15
    args.out = RESULTS_DIR
    args.tag = "_quick" if args.quick else ""      # a quick run does not overwrite a full run's plots
    for item in filter(None, args.shape_scales.split(",")):
        shape, _, value = item.partition("=")
        SHAPE_SCALES[shape] = float(value)
    args.shape_warmup = {k: float(v) for k, _, v in
                         (item.partition("=") for item in args.shape_warmup.split(",") if item)}
    args.earlier = None
    if args.reuse_grid:
        with open(args.reuse_grid, encoding="utf-8") as f:
            args.earlier = json.load(f).get("auto", {})
    os.makedirs(args.out, exist_ok=True)
    parts = set(args.parts.split(","))
    shapes = [s for s in args.shapes.split(",") if s]
    rtts = [float(r) for r in args.rtts.split(",") if r]
    grid = sorted({(int(c), int(p)) for c in args.grid_c.split(",") for p in args.grid_p.split(",")}
                  | (set(MODES.values()) if not args.quick else set()))
    started = time.time()
    trials: list = []
    result: dict = {"benchmark": "dtn_rtt", "quick": args.quick, "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
                    "settings": {k: v for k, v in vars(args).items() if k not in ("out", "earlier", "tag")},
                    "shape_scales": {s: base_shape(s)[1] for s in args.shapes.split(",") if s},
                    "trials": trials}
    Testbed.down(args.name)
    try:
        if "path" in parts:
            say("0. the delay line")
            result["capacity"] = capacity(args)
        bed = None

        def at(rtt: float, loss: float) -> Testbed:
            up = bring_up(args, rtt, loss)
            for shape in shapes:
                add_shape(up, shape)
            return up

        # CPU-bound parts (three node pairs) last: the machine is shared
        if "small" in parts:
            bed = at(rtts[0], args.table_loss)
            if "path" in parts:
                result.setdefault("path", {})[f"{rtts[0]:g}"] = path_check(args, bed)
            say(f"3. whole transfers at {rtts[0]:g} ms")
            result["small"] = small_files_and_verify(args, bed)
        if "auto" in parts:
            later = [s for s in args.later_loss_shapes.split(",") if s in shapes]
            for k, loss in enumerate(float(x) for x in args.auto_losses.split(",") if x):
                bed = at(rtts[0], loss)
                say(f"2. C x P and --auto at {rtts[0]:g} ms, loss {loss:.2%}")
                done = grid_and_auto(args, bed, later if k else shapes, grid, trials)
                result.setdefault("auto", {})[f"{loss:g}"] = done
                if args.whole and not k:
                    wanted = [s for s in (args.whole_shapes or args.shapes).split(",") if s in done]
                    result["whole"] = whole_transfers(args, bed, wanted,
                                                      {s: tuple(r["best_point"]) for s, r in done.items()})
        for rtt in rtts if "table" in parts else []:
            bed = at(rtt, args.table_loss)
            if f"{rtt:g}" not in result.get("path", {}):
                result.setdefault("path", {})[f"{rtt:g}"] = path_check(args, bed)
            say(f"1. paper table at {rtt:g} ms, loss {args.table_loss:.2%} (MiB/s at N = 1 2 3)")
            result.setdefault("table", {})[f"{rtt:g}"] = paper_table(args, bed, shapes, trials)
        if bed is not None:
            result["testbed"] = {k: bed.layout.to_json()[k] for k in ("node_rate", "tcp_buffer", "congestion",
                                                                      "mtu", "datasets")}
    finally:
        Testbed.down(args.name)
        result["seconds_total"] = round(time.time() - started, 1)
        default = ("dtn_rtt_quick.json" if args.quick else
                   "dtn_rtt_auto.json" if args.reuse_grid else "dtn_rtt.json")
        path = os.path.join(args.out, args.output or default)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)
        say(f"wrote {path} ({result['seconds_total']} s)")
    summary(result)


def summary(result: dict) -> None:
    for rtt, shapes in result.get("table", {}).items():
        say(f"\nRTT {rtt} ms   {'shape':8}{'mode':9}{'N=1':>7}{'N=2':>7}{'N=3':>7}{'3 vs 1':>8}{'paper':>7}")
        for shape, modes in shapes.items():
            for mode, row in modes.items():
                r = row["rates"]
                say(f"{'':13}{shape:8}{mode:9}" + "".join(f"{r[n] / MIB:7.2f}" for n in (1, 2, 3))
                    + f"{row['ratio'] or 0:8.2f}{PAPER[mode]:7.1f}"
                    + (f"   split: {row['ratio_split']:.2f}" if row.get("ratio_split") else ""))
    for loss, shapes in result.get("auto", {}).items():
        say(f"\nloss {float(loss):.2%}: {'shape':9}{'best':>6}{'MiB/s':>7}{'auto':>7}{'ratio':>7}"
            f"{'probe s':>8}{'before':>8}{'ratio':>7}{'probe s':>8}")
        for shape, row in shapes.items():
            best = f"{row['best_point'][0]}x{row['best_point'][1]}"
            before = (f"{row['before_auto_rate'] / MIB:8.2f}{row['before_ratio'] or 0:7.1%}"
                      f"{row['before_probing_seconds'] or 0:8.1f}" if "before_auto_rate" in row else "")
            say(f"{'':13}{shape:9}{best:>6}{row['best_rate'] / MIB:7.2f}{row['auto_rate'] / MIB:7.2f}"
                f"{row['ratio'] or 0:7.1%}{row['probing_seconds'] or 0:8.1f}{before}")
    for shape, row in result.get("whole", {}).items():
        m = row["median"]
        say(f"whole {shape:9} " + ", ".join(f"{n} {v:.1f} s" for n, v in m.items())
            + f"; fixed/auto {row['auto_ratio']:.1%}"
            + (f", fixed/before {row['before_ratio']:.1%}" if row.get("before_ratio") else ""))


if __name__ == "__main__":
    main(sys.argv[1:])
