"""The cluster-scaling experiment on the testbed: nodes × modes, and a C × P grid.

Shaped after the published DTN-cluster comparison (3 DTNs against 1 at ~130 ms RTT:
Mode I, C=8 P=16, gained 1.8×; Mode II, C=4 P=8, gained 2.7×).  Every point is a
``trial``: a real transfer with fixed settings, measured at the links for ``seconds``
after a warm-up.  Outputs in ``out_dir``: ``sweep.json`` (every point with its samples),
``sweep.txt`` (the tables), ``heatmap.png`` (throughput over C × P), ``scaling.png``
(throughput against nodes per mode), ``throughput_modes.png`` and ``throughput_grid.png``
(throughput over time).
"""
from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from dtn_transfer.options import RunOptions

from . import plots
from .testbed import Testbed
from .trial import TrialResult, run_trial

MIB = 2 ** 20
MODES = {"Mode I": (8, 16), "Mode II": (4, 8)}


@dataclass(kw_only=True)
class SweepSpec:
    """The points of a sweep: node counts × modes, and a C × P grid on ``grid_nodes`` pairs."""

    dataset: str = "medium"
    nodes: tuple[int, ...] = (1, 2, 3)
    modes: dict[str, tuple[int, int]] = field(default_factory=lambda: dict(MODES))
    grid_c: tuple[int, ...] = (1, 2, 4, 8, 16)
    grid_p: tuple[int, ...] = (1, 2, 4, 8, 16)
    grid_nodes: int = 1
    seconds: float = 5.0
    warmup: float = 1.0
    repeat: int = 1           # rounds of the nodes × modes part (interleaved); the median is kept


def _trial(bed: Testbed, spec: SweepSpec, nodes: int, c: int, p: int, label: str) -> TrialResult:
    return run_trial(bed, spec.dataset, nodes, RunOptions(concurrency=c, parallelism=p, pipelining=True),
                     seconds=spec.seconds, warmup=spec.warmup, label=label)


def run_sweep(bed: Testbed, spec: SweepSpec, out_dir: str,
              say: Callable[[str], None] = lambda _line: None) -> dict:
    """Run every point, write the tables, JSON and plots; returns the JSON document."""
    os.makedirs(out_dir, exist_ok=True)
    started = time.time()
    modes: dict[str, dict[int, list[TrialResult]]] = {m: {n: [] for n in spec.nodes} for m in spec.modes}
    for _ in range(spec.repeat):
        for n in spec.nodes:
            for mode, (c, p) in spec.modes.items():
                r = _trial(bed, spec, n, c, p, f"{mode} N={n}")
                modes[mode][n].append(r)
                say(f"{r.label:16} C={c:<2} P={p:<2} {r.rate / MIB:7.2f} MiB/s")
    grid: dict[tuple[int, int], TrialResult] = {}
    for c in spec.grid_c:
        for p in spec.grid_p:
            r = _trial(bed, spec, spec.grid_nodes, c, p, f"grid C={c} P={p}")
            grid[(c, p)] = r
            say(f"{r.label:16} N={spec.grid_nodes} {r.rate / MIB:7.2f} MiB/s")
    doc = _document(bed, spec, modes, grid, time.time() - started)
    with open(os.path.join(out_dir, "sweep.json"), "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1)
    with open(os.path.join(out_dir, "sweep.txt"), "w", encoding="utf-8") as f:
        f.write(table(doc))
    doc["files"] = _plot(doc, modes, grid, out_dir)
    return doc


def _median_rate(results: list[TrialResult]) -> float:
    return statistics.median(r.rate for r in results) if results else 0.0


def _document(bed: Testbed, spec: SweepSpec, modes, grid, seconds: float) -> dict:  # noqa: ANN001
    L = bed.layout
    scaling = {m: {str(n): _median_rate(rs) for n, rs in by.items()} for m, by in modes.items()}
    ratios = {}
    if spec.nodes:
        lo, hi = min(spec.nodes), max(spec.nodes)
        for m, by in scaling.items():
            ratios[m] = by[str(hi)] / by[str(lo)] if by[str(lo)] else None
    best = max(grid.items(), key=lambda kv: kv[1].rate) if grid else None
    return {
        "taken": time.strftime("%Y-%m-%dT%H:%M:%S"), "seconds": round(seconds, 1),
        "spec": {**asdict(spec), "modes": {m: list(cp) for m, cp in spec.modes.items()}},
        "testbed": {"name": L.name, "node_rate": L.node_rate, "flow_rate": L.flow_rate, "buckets": L.buckets,
                    "mtu": L.mtu, "dataset": L.datasets.get(spec.dataset)},
        "scaling": scaling, "ratio_max_vs_min_nodes": ratios,
        "grid": {f"{c}x{p}": r.rate for (c, p), r in grid.items()},
        "best_grid_point": {"concurrency": best[0][0], "parallelism": best[0][1], "rate": best[1].rate}
        if best else None,
        "trials": [r.to_json() for by in modes.values() for rs in by.values() for r in rs]
        + [r.to_json() for r in grid.values()],
    }


def table(doc: dict) -> str:
    spec, tb = doc["spec"], doc["testbed"]
    ds = tb["dataset"] or {}
    lines = [f"dataset {spec['dataset']}: {ds.get('files', '?')} files, {ds.get('bytes', 0) / MIB:.1f} MiB; "
             f"node cap {tb['node_rate'] / MIB:.2f} MiB/s, per-stream cap "
             f"{(tb['flow_rate'] or 0) / MIB:.3f} MiB/s; window {spec['seconds']} s after {spec['warmup']} s",
             "", f"{'nodes':>5}  " + "  ".join(f"{f'{m} C={cp[0]} P={cp[1]}':>22}"
                                            for m, cp in spec["modes"].items())]
    for n in spec["nodes"]:
        cells = []
        for m in spec["modes"]:
            rate = doc["scaling"][m][str(n)]
            first = doc["scaling"][m][str(min(spec["nodes"]))]
            cells.append(f"{rate / MIB:10.2f} MiB/s ({rate / first if first else 0:4.2f}x)")
        lines.append(f"{n:>5}  " + "  ".join(f"{c:>22}" for c in cells))
    if doc["grid"]:
        ps = spec["grid_p"]
        lines += ["", f"C x P grid at N={spec['grid_nodes']} (MiB/s)",
                  "C\\P  " + "".join(f"{p:>8}" for p in ps)]
        for c in spec["grid_c"]:
            lines.append(f"{c:<5}" + "".join(f"{doc['grid'].get(f'{c}x{p}', 0) / MIB:8.2f}" for p in ps))
        b = doc["best_grid_point"]
        lines.append(f"best: C={b['concurrency']} P={b['parallelism']} {b['rate'] / MIB:.2f} MiB/s")
    return "\n".join(lines) + "\n"


def _plot(doc: dict, modes, grid, out_dir: str) -> list[str]:  # noqa: ANN001
    spec = doc["spec"]
    name = f"{spec['dataset']} data set"
    files = []
    if grid:
        files.append(plots.heatmap({cp: r.rate for cp, r in grid.items()},
                                   os.path.join(out_dir, "heatmap.png"),
                                   f"Throughput over C x P, {name}, N={spec['grid_nodes']}"))
        files.append(plots.small_multiples({cp: r.trace.rates(1.0) for cp, r in grid.items()},
                                           os.path.join(out_dir, "throughput_grid.png"),
                                           f"Throughput over time per C x P, {name}"))
    if modes:
        files.append(plots.scaling({f"{m} (C={spec['modes'][m][0]}, P={spec['modes'][m][1]})":
                                    {n: _median_rate(rs) for n, rs in by.items()} for m, by in modes.items()},
                                   os.path.join(out_dir, "scaling.png"), f"Throughput vs DTN nodes, {name}"))
        files.append(plots.timeseries({f"{m} N={n}": rs[0].trace.rates(0.5) for m, by in modes.items()
                                       for n, rs in by.items() if rs},
                                      os.path.join(out_dir, "throughput_modes.png"),
                                      f"Throughput over time, nodes x modes, {name}"))
    return files
