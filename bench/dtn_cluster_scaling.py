"""Benchmark: DTN cluster scaling and auto-tuning on the namespace testbed, side by side in one run.

1. 3 nodes against 1 node per cluster, Mode I (C=8, P=16) and Mode II (C=4, P=8), on the
   medium data set, rounds interleaved; the ratio of medians is the result (goal ≥ 2.8×
   in both modes; the published 3-DTN cluster at ~130 ms RTT gained 1.8× and 2.7×).
2. Per data-set shape (small, medium, large, huge) at one node pair: a C × P grid (plus
   the two modes) gives the best fixed setting; ``run --auto`` on the same data is
   compared with it (goal ≥ 95% of the best, settled within ≤ 30 s of probing).

Throughput is measured at the testbed's links (bytes delivered to the destination
nodes) over a window after a warm-up, so startup and the last files' tail do not count
for fixed settings; for --auto the window starts after the search settled, and the
whole-run rate (probing included) is reported next to it.  The testbed's shaping makes
node count the bottleneck: per-node cap × 3 (12 MiB/s by default) is far below what
two cores move through veth + HTB.  Prints tables and writes
bench/results/dtn_cluster_scaling.json (with every trial's samples).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.harness import RESULTS_DIR  # noqa: E402
from dtn_lab.sweep import MODES  # noqa: E402
from dtn_lab.testbed import Testbed  # noqa: E402
from dtn_lab.trial import run_trial  # noqa: E402
from dtn_transfer.options import RunOptions  # noqa: E402

MIB = 2 ** 20
SHAPE_SCALES = {"small": 3.0, "medium": 1.5, "large": 1.0, "huge": 1.0}   # enough data for --auto at N=1


def scaling(bed: Testbed, rounds: int, seconds: float, trials: list) -> dict:
    rates = {mode: {1: [], 3: []} for mode in MODES}
    for k in range(rounds):
        order = [1, 3] if k % 2 == 0 else [3, 1]
        for nodes in order:
            for mode, (c, p) in MODES.items():
                options = RunOptions(concurrency=c, parallelism=p, pipelining=True)
                r = run_trial(bed, "medium", nodes, options, seconds=seconds, label=f"{mode} N={nodes}")
                rates[mode][nodes].append(r.rate)
                trials.append(r.to_json())
                print(f"  {mode:8} N={nodes}: {r.rate / MIB:6.2f} MiB/s", flush=True)
    out = {}
    for mode, by in rates.items():
        one, three = statistics.median(by[1]), statistics.median(by[3])
        out[mode] = {"concurrency": MODES[mode][0], "parallelism": MODES[mode][1], "rate_1": one,
                     "rate_3": three, "ratio": three / one if one else None,
                     "samples_1": by[1], "samples_3": by[3]}
    return out


def measure(bed: Testbed, shape: str, point: tuple[int, int], seconds: float, trials: list) -> float:
    options = RunOptions(concurrency=point[0], parallelism=point[1], pipelining=True)
    r = run_trial(bed, shape, 1, options, seconds=seconds,
                  label=f"{shape} C={point[0]} P={point[1]}")
    trials.append(r.to_json())
    return r.rate


def auto_vs_best(bed: Testbed, shape: str, grid: list[tuple[int, int]], seconds: float, auto_seconds: float,
                 budget: float, confirm: int, trials: list) -> dict:
    """Best fixed point (grid, then the top three re-measured: median), then --auto on the same data.

    The maximum of many noisy points is biased upwards (±3% per point here); re-measuring
    the top three and taking medians makes "best" a rate the setting really sustains.  The
    settled --auto run is one sample, so its window is longer (``auto_seconds``).
    """
    samples = {point: [measure(bed, shape, point, seconds, trials)] for point in grid}
    top = sorted(samples, key=lambda p: samples[p][0], reverse=True)[:3]
    for _ in range(confirm):
        for point in top:
            samples[point].append(measure(bed, shape, point, seconds, trials))
    fixed = {point: statistics.median(rates) for point, rates in samples.items()}
    best_point = max(top, key=fixed.get)
    auto = run_trial(bed, shape, 1, auto=True, seconds=auto_seconds, probe_budget=budget,
                     label=f"{shape} auto", report=lambda line: print("    " + line, flush=True))
    trials.append(auto.to_json())
    classes = (auto.auto_summary or {}).get("classes", {})
    probing = max((c["probing_seconds"] for c in classes.values()), default=None)
    chosen = {k: c["final"] for k, c in classes.items()}
    best = fixed[best_point]
    row = {"best_point": list(best_point), "best_rate": best, "best_samples": samples[best_point],
           "auto_rate": auto.rate, "auto_whole_rate": auto.whole_rate,
           "ratio": auto.rate / best if best else None,
           "probing_seconds": probing, "settled": all(c["final"]["settled"] for c in classes.values()),
           "auto_choice": chosen, "auto_note": auto.note,
           "grid": {f"{c}x{p}": rate for (c, p), rate in sorted(fixed.items())}}
    print(f"  {shape:7} best C={best_point[0]} P={best_point[1]} {fixed[best_point] / MIB:5.2f} MiB/s; auto "
          f"{auto.rate / MIB:5.2f} MiB/s ({row['ratio'] or 0:.1%}) after {probing}s probing; chose {chosen}",
          flush=True)
    return row


def main(argv: list[str] | None = None) -> None:
    """``bench/run.py`` calls this without arguments (defaults); run the file directly for options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="dtnbbench", help="testbed name (torn down at the end)")
    parser.add_argument("--subnet", default="10.213.100.0/24")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds of the scaling part")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured window per trial")
    parser.add_argument("--auto-seconds", type=float, default=10.0,
                        help="measured window of --auto after it settled")
    parser.add_argument("--probe-budget", type=float, default=30.0)
    parser.add_argument("--shapes", default="small,medium,large,huge")
    parser.add_argument("--grid-c", default="1,2,4,8,16")
    parser.add_argument("--grid-p", default="1,4,16")
    parser.add_argument("--confirm", type=int, default=2, help="re-measurements of the top three points")
    parser.add_argument("--quick", action="store_true",
                        help="grid 1,4,16 x 1,4,16, one round, no re-measuring")
    args = parser.parse_args(argv or [])
    if args.quick:
        args.grid_c = args.grid_p = "1,4,16"
        args.rounds, args.confirm = 1, 0
    shapes = [s for s in args.shapes.split(",") if s]
    grid = sorted({(int(c), int(p)) for c in args.grid_c.split(",") for p in args.grid_p.split(",")}
                  | set(MODES.values()))

    started = time.time()
    trials: list = []
    Testbed.down(args.name)
    bed = Testbed.up(args.name, 3, 3, datasets=(), subnet=args.subnet)
    try:
        for shape in sorted(set(shapes) | {"medium"}):
            bed.add_datasets([shape], SHAPE_SCALES[shape])
        L = bed.layout
        print(f"testbed {L.name}: node cap {L.node_rate / MIB:.2f} MiB/s, per-stream cap "
              f"{L.flow_rate / MIB:.3f} MiB/s; window {args.seconds} s")
        print("1. cluster scaling (medium data set)")
        scale = scaling(bed, args.rounds, args.seconds, trials)
        print("2. --auto against the best fixed setting, one node pair")
        shapes_out = {s: auto_vs_best(bed, s, grid, args.seconds, args.auto_seconds, args.probe_budget,
                                      args.confirm, trials) for s in shapes}
        layout = {"node_rate": L.node_rate, "flow_rate": L.flow_rate, "buckets": L.buckets, "mtu": L.mtu,
                  "datasets": L.datasets}
    finally:
        Testbed.down(args.name)

    print(f"\n{'mode':10}{'1 node MiB/s':>14}{'3 nodes MiB/s':>15}{'3 vs 1':>9}   goal >= 2.8x")
    for mode, row in scale.items():
        print(f"{mode:10}{row['rate_1'] / MIB:14.2f}{row['rate_3'] / MIB:15.2f}{row['ratio']:9.2f}")
    print(f"\n{'shape':8}{'best C x P':>11}{'best MiB/s':>12}{'auto MiB/s':>12}{'auto/best':>11}"
          f"{'probing s':>11}{'whole run':>11}   goal >= 95%, <= 30 s")
    for shape, row in shapes_out.items():
        best = f"{row['best_point'][0]}x{row['best_point'][1]}"
        print(f"{shape:8}{best:>11}{row['best_rate'] / MIB:12.2f}"
              f"{row['auto_rate'] / MIB:12.2f}{row['ratio']:11.1%}{row['probing_seconds'] or 0:11.1f}"
              f"{row['auto_whole_rate'] / MIB:11.2f}")
    os.makedirs(RESULTS_DIR, exist_ok=True)
    result = {"benchmark": "dtn_cluster_scaling", "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "seconds_total": round(time.time() - started, 1), "testbed": layout,
              "window_seconds": args.seconds, "auto_window_seconds": args.auto_seconds,
              "scaling": scale, "auto_vs_best": shapes_out, "trials": trials,
              "notes": "rates in bytes/s at the destination nodes' links; ratio = 3-node / 1-node medians; "
                       "auto ratio = settled --auto rate / best fixed C x P rate at one node pair"}
    with open(os.path.join(RESULTS_DIR, "dtn_cluster_scaling.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1:])
