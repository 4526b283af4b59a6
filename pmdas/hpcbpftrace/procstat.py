"""What a running bpftrace costs: /proc parsers (pure) and one small reader.

Two costs matter on a compute node.  The bpftrace process itself (user+system
time in /proc/<pid>/stat: map reads, JSON printing) and its BPF programs, which
run inside the traced tasks and are invisible there; the kernel accounts them
per program (``run_time_ns``/``run_cnt`` in /proc/<pid>/fdinfo/<fd> of each
bpf-prog descriptor) only while sysctl kernel.bpf_stats_enabled is 1.
"""
from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class ProcessCost:
    cpu_seconds: float      # user + system time of the bpftrace process
    bpf_seconds: float      # time spent in its BPF programs (0 unless bpf_stats is on)
    bpf_events: int         # times its BPF programs ran (0 unless bpf_stats is on)


def parse_proc_stat(text: str, ticks_per_second: int) -> float | None:
    """User + system seconds from /proc/<pid>/stat (comm may hold spaces and ')')."""
    try:
        rest = text[text.rindex(")") + 2:].split()
        return (int(rest[11]) + int(rest[12])) / ticks_per_second
    except (ValueError, IndexError, ZeroDivisionError):
        return None


def parse_fdinfo(text: str) -> dict[str, str]:
    """``key:\\tvalue`` lines of /proc/<pid>/fdinfo/<fd>."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out


def bpf_stats_enabled(proc: str = "/proc") -> bool:
    try:
        with open(os.path.join(proc, "sys/kernel/bpf_stats_enabled"), encoding="ascii") as f:
            return f.read().strip() == "1"
    except OSError:
        return False


def process_cost(pid: int, proc: str = "/proc") -> ProcessCost | None:
    """Cost of a live process and its BPF programs; None once it has gone."""
    base = os.path.join(proc, str(pid))
    try:
        with open(os.path.join(base, "stat"), encoding="utf-8", errors="replace") as f:
            cpu = parse_proc_stat(f.read(), os.sysconf("SC_CLK_TCK"))
    except OSError:
        return None
    if cpu is None:
        return None
    run_ns = runs = 0
    try:
        fds = os.listdir(os.path.join(base, "fd"))
    except OSError:
        fds = []
    for fd in fds:
        try:
            if os.readlink(os.path.join(base, "fd", fd)) != "anon_inode:bpf-prog":
                continue
            with open(os.path.join(base, "fdinfo", fd), encoding="ascii", errors="replace") as f:
                info = parse_fdinfo(f.read())
            run_ns += int(info.get("run_time_ns", 0))
            runs += int(info.get("run_cnt", 0))
        except (OSError, ValueError):
            continue
    return ProcessCost(cpu, run_ns / 1e9, runs)
