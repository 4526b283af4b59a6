"""Benchmark: hpclustre's job_stats parser against yaml.safe_load on the same file.

Generates a Lustre 2.15-format job_stats file with N entries (default 10,000;
the longest entry form: quoted Slurm ids, secs.nsecs times, sumsq and hist
fields), parses it with both, checks they agree, prints a table and writes
bench/results/lustre_job_stats.json.  Ratios matter more than absolute times
on shared machines; each time is the median of several runs.

    .venv/bin/python bench/lustre_job_stats.py [--entries 10000] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from hpc_demo.hpclustre import JOB_OST_OPS as OST_OPS  # noqa: E402  (the demo writes the same ops)
from pmdas.hpclustre.job_stats import parse_job_stats  # noqa: E402


def make_job_stats(entries: int, seed: int = 7) -> str:
    """A realistic OST job_stats: most jobs read and/or write, a few other ops are non-zero."""
    rnd = random.Random(seed)
    out = ["job_stats:"]
    for i in range(entries):
        out.append(
            f'- job_id:          "SLURM_JOB{100000 + i}:{rnd.choice((0, 1000, 1001))}:node{i % 512:04d}"'
        )
        out.append("  snapshot_time:   1723114647.887515895 secs.nsecs")
        out.append("  start_time:      1723102025.057286226 secs.nsecs")
        out.append("  elapsed_time:    12622.830229669 secs.nsecs")
        for name, unit in (
            ("read_bytes", "bytes"),
            ("write_bytes", "bytes"),
            ("read", "usecs"),
            ("write", "usecs"),
            *((op, "usecs") for op in OST_OPS),
        ):
            busy = name in ("read_bytes", "write_bytes", "read", "write") or rnd.random() < 0.3
            n = rnd.randrange(1, 100000) if busy else 0
            total = n * (rnd.randrange(4096, 4194304) if unit == "bytes" else rnd.randrange(20, 9000))
            lo, hi = (4096, 4194304) if unit == "bytes" else (20, 9000)
            line = (
                f"  {name + ':':<16} {{ samples: {n:11d}, unit: {unit}, min: {lo if n else 0:8d}, "
                f"max: {hi if n else 0:8d}, sum: {total:16d}, sumsq: {total * hi if n else 0:18d}"
            )
            if unit == "bytes":
                line += ", hist: { %s }" % (
                    f"4K: {n // 3}, 1M: {n // 3}, 4M: {n - 2 * (n // 3)}" if n else " "
                )
            out.append(line + " }")
    return "\n".join(out) + "\n"


def timed(fn, text: str, runs: int) -> tuple[float, float, object]:
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = fn(text)
        times.append(time.perf_counter() - started)
    return statistics.median(times), min(times), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=10000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--yaml-runs", type=int, default=1, help="yaml.safe_load is slow; runs of it")
    args = parser.parse_args()
    text = make_job_stats(args.entries)
    ours_median, ours_best, parsed = timed(parse_job_stats, text, args.runs)
    yaml_median, yaml_best, loaded = timed(yaml.safe_load, text, args.yaml_runs)
    # The two must agree before their times mean anything.
    entries = loaded["job_stats"]
    assert len(parsed) == len(entries) == args.entries, (len(parsed), len(entries))
    for entry in entries[:: max(1, len(entries) // 200)]:
        mine = parsed[str(entry["job_id"])]
        for op in ("read_bytes", "write_bytes", "punch"):
            value = entry[op]
            if value["samples"]:
                assert mine[op][0] == value["samples"] and mine[op][2] == value["sum"], (entry["job_id"], op)
            else:
                assert op not in mine
    ratio = yaml_median / ours_median
    result = {
        "entries": args.entries,
        "bytes": len(text),
        "hpclustre_parse_seconds_median": round(ours_median, 4),
        "hpclustre_parse_seconds_best": round(ours_best, 4),
        "yaml_safe_load_seconds_median": round(yaml_median, 4),
        "yaml_safe_load_seconds_best": round(yaml_best, 4),
        "speedup_vs_yaml": round(ratio, 1),
        "targets": {"speedup_at_least": 20, "seconds_at_most": 0.2},
        "meets_targets": ratio >= 20 and ours_median <= 0.2,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "yaml_loader": "SafeLoader (pure Python, as yaml.safe_load uses)",
    }
    print(f"{'parser':<28}{'median s':>10}{'best s':>10}")
    print(f"{'hpclustre parse_job_stats':<28}{ours_median:>10.4f}{ours_best:>10.4f}")
    print(f"{'yaml.safe_load':<28}{yaml_median:>10.4f}{yaml_best:>10.4f}")
    print(
        f"{args.entries} entries, {len(text) / 1e6:.1f} MB: {ratio:.1f}x faster than yaml.safe_load; "
        f"targets (>=20x, <=0.2 s) {'met' if result['meets_targets'] else 'NOT met'}"
    )
    out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "lustre_job_stats.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    return 0 if result["meets_targets"] else 1


if __name__ == "__main__":
    sys.exit(main())
