"""Per-job resource use on this node from the jobs' cgroups (v2 first, then v1).

The schedulers put each job in its own cgroup; where depends on version,
cgroup mode and how many slurmd run on the host:

  Slurm v2  /sys/fs/cgroup/system.slice/slurmstepd.scope/job_<id>/
            /sys/fs/cgroup/system.slice/<nodename>_slurmstepd.scope/job_<id>/  (several slurmd)
            26.05+: /sys/fs/cgroup/system.slice/slurmstepd.scope/<SLUID>/ (sAHSM91ZS1QB00),
            unless cgroup.conf sets CgroupJobIdPaths=yes (26.05.2+)
  Slurm v1  /sys/fs/cgroup/<ctrl>/slurm/uid_<uid>/job_<id>/   (slurm_<nodename> with several slurmd)
  PBS v2    /sys/fs/cgroup/pbs_jobs.service/jobid/<id>.<server>/
  PBS v1    /sys/fs/cgroup/<ctrl>/pbs_jobs.service/jobid/<id>.<server>/

A SLUID names no job id.  Each step of the job has a ``step_<x>/slurm`` cgroup holding
its slurmstepd, whose process title is ``slurmstepd: [<job id>.<step>]`` (real 26.05.5:
``slurmstepd: [1.batch]``); /proc/<pid>/cmdline is readable by any user, so the job id
comes from the node itself, also while the controller is down.  A SLUID cgroup with no
step daemon left is not reported: it cannot be named.

Slurm's cgroup/v1 plugin creates freezer, cpuset, memory, devices and cpuacct cgroups,
never blkio, so block I/O is read there only for PBS.  On v2, io.stat exists only where
the io controller is enabled: Slurm before 25.05 enabled every available controller,
25.05 and later only with EnableExtraControllers=io.  Without io.stat the bytes are
unknown (None), not 0.

The file parsers are pure; ``read_job_usage`` does the reading, under the
agent's root prefix so that tests point it at fixture trees.
"""
from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pmdas.common.sources import under

CGROUP = "/sys/fs/cgroup"
_V2_PARENTS = ("system.slice", "")
_V2_PBS = ("pbs_jobs.service/jobid/*", "system.slice/pbs_jobs.service/jobid/*")
_V1_SLURM = "{ctrl}/{slurmd}/uid_*/job_*"
_V1_PBS = "{ctrl}/pbs_jobs.service/jobid/*"
_V1_CONTROLLERS = {"cpu": ("cpuacct", "cpu,cpuacct"), "memory": ("memory",), "io": ("blkio",)}
_V1_SLURM_KINDS = ("cpu", "memory")   # Slurm's cgroup/v1 never creates blkio
# 's' and 13 Crockford base32 digits (src/common/sluid.c print_sluid)
SLUID = re.compile(r"s[0-9A-HJKMNP-TV-Z]{13}")
_STEPD_TITLE = re.compile(rb"slurmstepd: \[(\d+)[.\]]")


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


def stepd_job_id(cmdline: bytes) -> str | None:
    """A slurmstepd's /proc/<pid>/cmdline ('slurmstepd: [1.batch]') → '1'; else None."""
    m = _STEPD_TITLE.match(cmdline)
    return m.group(1).decode() if m else None


def _sluid_job_id(root: str, path: str) -> str | None:
    """The job id of a SLUID-named job cgroup, from the title of a slurmstepd in it."""
    for procs in sorted(glob.glob(os.path.join(path, "step_*", "slurm", "cgroup.procs"))):
        for pid in (_read(procs) or "").split():
            if not pid.isdecimal():
                continue
            try:
                with open(under(root, f"/proc/{pid}/cmdline"), "rb") as f:
                    job_id = stepd_job_id(f.read(200))
            except OSError:   # the step ended between the two reads
                continue
            if job_id is not None:
                return job_id
    return None


def own_slurmd(base: str, names: Iterable[str] = ()) -> tuple[list[str], list[str]]:
    """This node's slurmd cgroup names as glob patterns: (v1 directories, v2 scopes).

    One slurmd per host uses ``slurm`` and ``slurmstepd.scope``; several on one host (one
    node each, ``--enable-multiple-slurmd``) put the node name in: ``slurm_<node>`` and
    ``<node>_slurmstepd.scope``.  Where one of ``names`` (this node's names) has such a
    cgroup, only that node's are read, not its neighbours'; otherwise every slurmd's
    cgroups on the host are taken as this node's.
    """
    names = sorted(set(names))
    v1 = [f"slurm_{glob.escape(n)}" for n in names
          if glob.glob(os.path.join(base, "*", f"slurm_{glob.escape(n)}"))]
    v2 = [f"{glob.escape(n)}_slurmstepd.scope" for n in names
          if any(os.path.isdir(os.path.join(base, parent, f"{n}_slurmstepd.scope"))
                 for parent in _V2_PARENTS)]
    return (["slurm", *v1] if v1 else ["slurm*"],
            ["slurmstepd.scope", *v2] if v2 else ["*slurmstepd.scope"])


def _slurm_v2_jobs(root: str, base: str, scopes: Sequence[str]) -> dict[str, str]:
    """Job id → job cgroup directory, for both 26.05 namings (job_<id> and SLUID)."""
    jobs: dict[str, str] = {}
    for parent in _V2_PARENTS:
        for path in sorted(p for scope in scopes for p in glob.glob(os.path.join(base, parent, scope, "*"))):
            name = os.path.basename(path)
            if not os.path.isdir(path):
                continue
            if name.startswith("job_"):
                jobs.setdefault(name[4:], path)
            elif SLUID.fullmatch(name):
                job_id = _sluid_job_id(root, path)
                if job_id is not None:
                    jobs.setdefault(job_id, path)
    return jobs


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


def read_job_usage(root: str, names: Iterable[str] = ()) -> dict[str, JobUsage]:
    """Every job cgroup of this node (``names``: its node names) → its usage.  Nothing
    found gives {} (no jobs here)."""
    base = under(root, CGROUP)
    found: dict[str, JobUsage] = {}
    slurmd_v1, slurmd_v2 = own_slurmd(base, names)
    for job_id, path in _slurm_v2_jobs(root, base, slurmd_v2).items():
        found.setdefault(job_id, _v2_usage(path))
    for pattern in _V2_PBS:
        for path in glob.glob(os.path.join(base, pattern)):
            if os.path.isdir(path):
                found.setdefault(job_key(path), _v2_usage(path))
    v1: dict[str, dict[str, str]] = {}
    for kind, controllers in _V1_CONTROLLERS.items():
        for ctrl in controllers:
            patterns = [_V1_PBS.format(ctrl=ctrl)]
            if kind in _V1_SLURM_KINDS:
                patterns += [_V1_SLURM.format(ctrl=ctrl, slurmd=d) for d in slurmd_v1]
            for pattern in patterns:
                for path in glob.glob(os.path.join(base, pattern)):
                    if os.path.isdir(path):
                        v1.setdefault(job_key(path), {}).setdefault(kind, path)
    for key, paths in v1.items():
        found.setdefault(key, _v1_usage(paths))
    return found
