"""Per-job resource use on this node from the jobs' cgroups (v2 first, then v1).

The schedulers put each job in its own cgroup; where depends on version,
cgroup mode and how many slurmd run on the host:

  Slurm v2  /sys/fs/cgroup/system.slice/slurmstepd.scope/job_<id>/
            /sys/fs/cgroup/system.slice/<nodename>_slurmstepd.scope/job_<id>/  (several slurmd)
  Slurm v1  /sys/fs/cgroup/<ctrl>/slurm/uid_<uid>/job_<id>/   (slurm_<nodename> with several slurmd)
  PBS v2    /sys/fs/cgroup/pbs_jobs.service/jobid/<id>.<server>/
  PBS v1    /sys/fs/cgroup/<ctrl>/pbs_jobs.service/jobid/<id>.<server>/

The file parsers are pure; ``read_job_usage`` does the reading, under the
agent's root prefix so that tests point it at fixture trees.
"""
from __future__ import annotations

import glob
import os
from dataclasses import dataclass

from pmdas.common.sources import under

CGROUP = "/sys/fs/cgroup"
_V2_SLURM = ("system.slice/*slurmstepd.scope/job_*", "*slurmstepd.scope/job_*")
_V2_PBS = ("pbs_jobs.service/jobid/*", "system.slice/pbs_jobs.service/jobid/*")
_V1_SLURM = "{ctrl}/slurm*/uid_*/job_*"
_V1_PBS = "{ctrl}/pbs_jobs.service/jobid/*"
_V1_CONTROLLERS = {"cpu": ("cpuacct", "cpu,cpuacct"), "memory": ("memory",), "io": ("blkio",)}


@dataclass(frozen=True)
class JobUsage:
    """What the kernel has accounted to one job's cgroup on this node."""

    cpu_time: int | None = None       # nanoseconds, user + system
    memory: int | None = None         # bytes now
    memory_peak: int | None = None    # bytes, high-water mark
    read_bytes: int | None = None
    write_bytes: int | None = None
    version: int = 2


def parse_cpu_stat(text: str) -> int | None:
    """v2 cpu.stat → CPU time in nanoseconds (from usage_usec)."""
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "usage_usec" and value.strip().isdecimal():
            return int(value) * 1000
    return None


def parse_io_stat(text: str) -> tuple[int, int]:
    """v2 io.stat ('8:0 rbytes=1 wbytes=2 rios=..') → (read bytes, written bytes) over devices."""
    read = written = 0
    for line in text.splitlines():
        for item in line.split()[1:]:
            key, _, value = item.partition("=")
            if value.isdecimal():
                if key == "rbytes":
                    read += int(value)
                elif key == "wbytes":
                    written += int(value)
    return read, written


def parse_blkio_bytes(text: str) -> tuple[int, int]:
    """v1 blkio.throttle.io_service_bytes ('8:0 Read 4096' ... 'Total 0') → (read, written)."""
    read = written = 0
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2].isdecimal():
            if parts[1] == "Read":
                read += int(parts[2])
            elif parts[1] == "Write":
                written += int(parts[2])
    return read, written


def parse_number(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isdecimal() else None


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read()
    except OSError:  # the job ended between listing and reading, or the file is absent
        return None


def job_key(directory: str) -> str:
    """'job_123' → '123'; PBS's '13.pbs-server' stays as it is (its qstat id)."""
    name = os.path.basename(directory.rstrip("/"))
    return name[4:] if name.startswith("job_") else name


def _v2_usage(path: str) -> JobUsage:
    cpu = _read(os.path.join(path, "cpu.stat"))
    io = _read(os.path.join(path, "io.stat"))
    current = _read(os.path.join(path, "memory.current"))
    peak = _read(os.path.join(path, "memory.peak"))
    read, written = parse_io_stat(io) if io is not None else (None, None)
    return JobUsage(parse_cpu_stat(cpu) if cpu else None,
                    parse_number(current) if current else None,
                    parse_number(peak) if peak else None, read, written, 2)


def _v1_usage(paths: dict[str, str]) -> JobUsage:
    def number(kind: str, name: str) -> int | None:
        text = _read(os.path.join(paths[kind], name)) if kind in paths else None
        return parse_number(text) if text else None
    io = _read(os.path.join(paths["io"], "blkio.throttle.io_service_bytes")) if "io" in paths else None
    read, written = parse_blkio_bytes(io) if io is not None else (None, None)
    return JobUsage(number("cpu", "cpuacct.usage"), number("memory", "memory.usage_in_bytes"),
                    number("memory", "memory.max_usage_in_bytes"), read, written, 1)


def read_job_usage(root: str) -> dict[str, JobUsage]:
    """Every job cgroup on this node → its usage.  Nothing found gives {} (no jobs here)."""
    base = under(root, CGROUP)
    found: dict[str, JobUsage] = {}
    for pattern in (*_V2_SLURM, *_V2_PBS):
        for path in glob.glob(os.path.join(base, pattern)):
            if os.path.isdir(path):
                found.setdefault(job_key(path), _v2_usage(path))
    v1: dict[str, dict[str, str]] = {}
    for kind, controllers in _V1_CONTROLLERS.items():
        for ctrl in controllers:
            for pattern in (_V1_SLURM, _V1_PBS):
                for path in glob.glob(os.path.join(base, pattern.format(ctrl=ctrl))):
                    if os.path.isdir(path):
                        v1.setdefault(job_key(path), {}).setdefault(kind, path)
    for key, paths in v1.items():
        found.setdefault(key, _v1_usage(paths))
    return found
