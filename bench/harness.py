"""Benchmark harness: side-by-side measurements in one run, reported as ratios.

Absolute times on shared machines are noise; ratios against an anchor measured in
the same run (interleaved) are what the benchmarks report and what notes quote.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def interleaved(variants: dict[str, Callable[[], Any]], rounds: int, per_round: int = 1,
                warmup: int = 3) -> dict[str, list[float]]:
    """Time each variant ``rounds × per_round`` times, alternating variants every round
    so that background load on a shared machine hits all of them alike."""
    for fn in variants.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            for _ in range(per_round):
                samples[name].append(timed(fn))
    return samples


def summary(samples: Sequence[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"n": len(ordered), "median": statistics.median(ordered),
            "p90": ordered[int(0.9 * (len(ordered) - 1))], "mean": statistics.fmean(ordered),
            "min": ordered[0]}


def report(name: str, samples: dict[str, list[float]], anchor: str, unit: str = "ms",
           notes: str = "", extra: dict | None = None) -> dict:
    """Print a table (median, p90, ratio to the anchor's median) and write JSON results."""
    scale = {"ms": 1e3, "us": 1e6, "s": 1.0}[unit]
    stats = {variant: summary(values) for variant, values in samples.items()}
    base = stats[anchor]["median"]
    width = max(len(v) for v in stats) + 2
    print(f"\n== {name} ==  (anchor: {anchor}; medians of interleaved runs)")
    print(f"{'variant':<{width}}{'n':>6}{'median ' + unit:>14}{'p90 ' + unit:>12}{'ratio':>9}")
    for variant, s in stats.items():
        ratio = s["median"] / base if base else float("nan")
        s["ratio_to_anchor"] = ratio
        print(f"{variant:<{width}}{s['n']:>6}{s['median'] * scale:>14.3f}{s['p90'] * scale:>12.3f}"
              f"{ratio:>9.2f}")
    if notes:
        print(notes)
    result = {"benchmark": name, "anchor": anchor, "unit_of_samples": "s", "stats": stats,
              "notes": notes, "host": platform.node(), "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
              **(extra or {})}
    os.makedirs(RESULTS_DIR, exist_ok=True)
    with open(os.path.join(RESULTS_DIR, f"{name}.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    return result


def process_cpu(pid: int, children: bool = False) -> float:
    """User + system CPU seconds of a live process from /proc/<pid>/stat; with ``children``,
    plus those of its children it has waited for (commands it runs)."""
    with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
        fields = f.read().rpartition(")")[2].split()
    return sum(int(v) for v in fields[11:15 if children else 13]) / os.sysconf("SC_CLK_TCK")


def process_argvs() -> dict[int, list[bytes]]:
    """Every process on the machine: pid → its argv (processes that vanish are skipped)."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    found[int(entry)] = f.read().split(b"\0")
            except OSError:
                continue
    return found
