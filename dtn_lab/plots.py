"""PNG plots of testbed experiments (matplotlib, headless): heat map, scaling, throughput over time.

Inputs are plain data (rates in bytes/s, time series of (t, bytes/s)); each function
writes one file and returns its path.
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

MIB = 2 ** 20


def heatmap(rates: dict[tuple[int, int], float], path: str, title: str) -> str:
    """Throughput over the C × P grid: ``rates[(C, P)]`` in bytes/s."""
    cs = sorted({c for c, _ in rates})
    ps = sorted({p for _, p in rates})
    grid = [[rates.get((c, p), float("nan")) / MIB for p in ps] for c in cs]
    fig, ax = plt.subplots(figsize=(1.1 * len(ps) + 2.5, 0.8 * len(cs) + 1.8))
    image = ax.imshow(grid, origin="lower", cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(ps)), [str(p) for p in ps])
    ax.set_yticks(range(len(cs)), [str(c) for c in cs])
    ax.set_xlabel("parallelism P (streams per file)")
    ax.set_ylabel("concurrency C (files in flight)")
    top = max((v for row in grid for v in row if v == v), default=0.0)
    for i, row in enumerate(grid):
        for j, value in enumerate(row):
            if value == value:
                ax.text(j, i, f"{value:.1f}", ha="center", va="center",
                        color="black" if value > 0.6 * top else "white", fontsize=9)
    fig.colorbar(image, ax=ax, label="MiB/s")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def scaling(rates: dict[str, dict[int, float]], path: str, title: str) -> str:
    """Throughput against node count, one line per mode: ``rates[mode][nodes]`` in bytes/s."""
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for mode, by_nodes in rates.items():
        nodes = sorted(by_nodes)
        ax.plot(nodes, [by_nodes[n] / MIB for n in nodes], marker="o", label=mode)
        first = by_nodes[nodes[0]]
        if first > 0:
            for n in nodes[1:]:
                ax.annotate(f"{by_nodes[n] / first:.2f}x", (n, by_nodes[n] / MIB), textcoords="offset points",
                            xytext=(4, -12), fontsize=8)
    ax.set_xticks(sorted({n for by in rates.values() for n in by}))
    ax.set_xlabel("DTN nodes per cluster")
    ax.set_ylabel("throughput (MiB/s)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def timeseries(series: dict[str, list[tuple[float, float]]], path: str, title: str,
               marks: list[tuple[float, str]] | None = None) -> str:
    """Throughput over time, one line per label: ``series[label] = [(t, bytes/s), ...]``."""
    fig, ax = plt.subplots(figsize=(7.5, 4.0))
    for label, points in series.items():
        if points:
            ax.plot([t for t, _ in points], [r / MIB for _, r in points], label=label, linewidth=1.3)
    for t, text in marks or []:
        ax.axvline(t, color="grey", linewidth=0.6, linestyle=":")
        ax.text(t, ax.get_ylim()[1] * 0.98, text, rotation=90, va="top", ha="right", fontsize=7,
                color="dimgrey")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("throughput (MiB/s)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=8, ncol=2)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def small_multiples(series: dict[tuple[int, int], list[tuple[float, float]]], path: str, title: str) -> str:
    """Throughput over time for every C × P grid point, one small panel each (rows C, columns P)."""
    cs = sorted({c for c, _ in series}, reverse=True)
    ps = sorted({p for _, p in series})
    top = max((r for pts in series.values() for _, r in pts), default=1.0) / MIB * 1.1
    fig, axes = plt.subplots(len(cs), len(ps), figsize=(1.6 * len(ps) + 1, 1.1 * len(cs) + 1),
                             sharex=True, sharey=True, squeeze=False)
    for i, c in enumerate(cs):
        for j, p in enumerate(ps):
            ax = axes[i][j]
            points = series.get((c, p), [])
            ax.plot([t for t, _ in points], [r / MIB for _, r in points], linewidth=1.0)
            ax.set_ylim(0, top)
            ax.tick_params(labelsize=6)
            if i == 0:
                ax.set_title(f"P={p}", fontsize=8)
            if j == 0:
                ax.set_ylabel(f"C={c}", fontsize=8)
    fig.suptitle(title + " (MiB/s over s)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
