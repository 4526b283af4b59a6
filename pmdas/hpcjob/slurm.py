"""Pure parsers for Slurm's squeue, sinfo and sdiag output (no PCP, no I/O).

Why ``squeue -O`` with '|' after every field: one RPC gives every field the
agent needs, including the exit status and the allocated TRES that the
short ``-o`` letters lack, and its text costs a fraction of ``--json`` (see
bench/job_refresh.py and the report in collector.py).  ``scontrol show job -o``
has the same facts but costs more per job to print and to parse.  The job name
is the last field so that a name containing '|' stays whole.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from functools import lru_cache
from sys import intern

from .model import (
    CANCELLED,
    COMPLETED,
    COMPLETING,
    FAILED,
    HELD,
    OTHER,
    PENDING,
    RUNNING,
    SUSPENDED,
    TIMEOUT,
    Job,
    NodeRow,
)

SQUEUE_FIELDS = ("JobArrayID", "JobID", "ArrayJobID", "ArrayTaskID", "State", "UserName",
                 "Account", "Partition", "NumNodes", "NumCPUs", "tres-alloc", "tres-per-node",
                 "SubmitTime", "StartTime", "EndTime", "TimeUsed", "TimeLimit", "TimeLeft",
                 "Reason", "exit_code", "NodeList", "Name")
SQUEUE_FORMAT = ",".join(f"{f}:|" for f in SQUEUE_FIELDS[:-1]) + f",{SQUEUE_FIELDS[-1]}:"
SQUEUE_IDS_FORMAT = "JobArrayID:|"      # the cross-check of every listing (see cross_checked)
SINFO_FIELDS = ("NodeList", "Partition", "StateLong", "CPUsState", "Gres", "GresUsed",
                "Memory", "AllocMem", "Reason")
SINFO_FORMAT = ",".join(f"{f}:|" for f in SINFO_FIELDS[:-1]) + f",{SINFO_FIELDS[-1]}:"

_STATES = {
    "RUNNING": RUNNING, "PENDING": PENDING, "COMPLETING": COMPLETING, "SUSPENDED": SUSPENDED,
    "COMPLETED": COMPLETED, "FAILED": FAILED, "CANCELLED": CANCELLED, "TIMEOUT": TIMEOUT,
    "NODE_FAIL": FAILED, "OUT_OF_MEMORY": FAILED, "BOOT_FAIL": FAILED, "DEADLINE": TIMEOUT,
    "PREEMPTED": CANCELLED, "CONFIGURING": RUNNING, "STOPPED": SUSPENDED,
}
_FINISHED = frozenset((COMPLETED, FAILED, CANCELLED, TIMEOUT, OTHER))
_WAITING = frozenset((PENDING, HELD))
_NOT_SET = {"", "N/A", "NONE", "Unknown", "UNLIMITED", "INVALID", "NOT_SET", "(null)"}
_SIZE = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50}
_GPU = re.compile(r"gres[:/]gpu(:[^:,()=]+)?[:=](\d+)")


@lru_cache(maxsize=1 << 17)
def parse_time(text: str) -> float | None:
    """Slurm's ISO local time ("2026-11-21T00:41:28") → seconds since the epoch.

    Cached: a job's times do not change between refreshes, and converting local
    time is the most expensive step of parsing a big queue.
    """
    if text in _NOT_SET or len(text) != 19:
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except (ValueError, OverflowError, OSError):
        return None


def parse_duration(text: str) -> int | None:
    """'[days-][hours:]minutes:seconds' (also plain minutes) → seconds; None for UNLIMITED etc.

    Not cached: a running job's used and left times are new strings every refresh.
    """
    text = text.strip()
    if text in _NOT_SET:
        return None
    days, _, clock = text.rpartition("-")
    try:
        numbers = list(map(int, clock.split(":")))
        day_count = int(days) if days else 0
    except ValueError:
        return None
    if len(numbers) == 3:
        hours, minutes, seconds = numbers
    elif len(numbers) == 2:
        hours, (minutes, seconds) = 0, numbers
    elif len(numbers) == 1:      # a bare number is minutes (TimeLimit=30)
        hours, minutes, seconds = 0, numbers[0], 0
    else:
        return None
    if day_count < 0 or hours < 0 or minutes < 0 or seconds < 0:
        return None
    return ((day_count * 24 + hours) * 60 + minutes) * 60 + seconds


_time_limit = lru_cache(maxsize=1 << 10)(parse_duration)   # limits repeat across jobs


def parse_size(text: str, default_unit: str = "M") -> int | None:
    """Slurm memory ("100M", "4G", "1000", "2.50T") → bytes; plain numbers are MiB."""
    text = text.strip()
    if not text or text in _NOT_SET:
        return None
    unit = text[-1].upper()
    number = text[:-1] if unit in _SIZE else text
    try:
        value = float(number)
    except ValueError:
        return None
    return int(value * _SIZE.get(unit if unit in _SIZE else default_unit, 1))


def tres(text: str) -> dict[str, str]:
    """'cpu=1,mem=100M,node=1,gres/gpu=2' → {'cpu': '1', 'mem': '100M', ...}."""
    out = {}
    for item in text.split(","):
        key, eq, value = item.partition("=")
        if eq:
            out[key] = value
    return out


def gpu_count(text: str) -> int | None:
    """GPUs in a TRES or GRES string: 'gres/gpu=2', 'gres:gpu:1', 'gres/gpu:a100:4', 'gpu:2'.

    An untyped entry is the total over every type: with ``AccountingStorageTRES=gres/gpu,
    gres/gpu:a100`` a job's TRES lists both 'gres/gpu=2' and 'gres/gpu:a100=2', the same two
    GPUs.  Typed entries are summed only when no untyped one is present (a node's
    'gpu:a100:2,gpu:v100:1').
    """
    if not text or text in _NOT_SET:
        return None
    found = _GPU.findall(text if text.startswith("gres") else "gres:" + text.replace(",", ",gres:"))
    if not found:
        return None
    untyped = [int(n) for kind, n in found if not kind]
    return sum(untyped) if untyped else sum(int(n) for _, n in found)


def parse_exit(text: str) -> tuple[int, int] | None:
    """squeue's exit_code field → (exit code, signal), read by its format, never its value.

    Slurm 23.02 and later print 'exit:signal' ('3:0', '0:9'; nothing when unset); 22.05
    and older print the raw wait status (768 = exit 3, 9 = killed by signal 9).
    """
    code, colon, signal = text.partition(":")
    if colon:
        if code.isdecimal() and signal.isdecimal():
            return int(code), int(signal)
        return None
    if not text.isdecimal():
        return None
    status = int(text)
    return (status >> 8) & 0xFF, status & 0x7F


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


@lru_cache(maxsize=1 << 12)
def job_state(raw: str, reason: str) -> str:
    """Normalise Slurm's state word; pending jobs held by user or admin count as held."""
    word = raw.split()[0].rstrip("+") if raw.strip() else ""
    state = _STATES.get(word, OTHER)
    if state == PENDING and reason.startswith("JobHeld"):
        return HELD
    return state


@lru_cache(maxsize=1 << 14)
def job_resources(alloc: str, per_node: str, nodes: str) -> tuple[int | None, int | None, int | None]:
    """(node count, memory bytes, GPUs) from squeue's NumNodes, tres-alloc and tres-per-node.

    Cached: many jobs of a cluster share one shape, so these strings repeat.
    """
    node_count = _int(nodes)
    gpus = gpu_count(alloc)
    if gpus is None:
        per = gpu_count(per_node)
        gpus = per * node_count if per is not None and node_count else None
    return node_count, parse_size(tres(alloc).get("mem", "")), gpus


class SqueueParser:
    """Parses squeue listings, remembering the last one: a line seen last time (a pending
    job, a finished one, any job whose clocks did not move) gives back the same Job
    without being parsed again.  Most of a big cluster's queue is such lines.

    One per agent, used by one refresh at a time; it holds the last listing's lines.
    """

    def __init__(self) -> None:
        self._last: dict[str, Job] = {}

    def parse(self, text: str) -> list[Job]:
        """Lines of ``squeue -h -r --states=all -O SQUEUE_FORMAT``; lines that do not fit are skipped."""
        last, seen, jobs = self._last, {}, []
        width = len(SQUEUE_FIELDS)
        # squeue ends lines with \n only; splitlines() would also cut at \r, \v, \f, \x1c-\x1e,
        # \x85, \u2028 and \u2029, which users put in job names and (without accounting
        # enforcement) accounts: a job would vanish from the listing, or lose its name's end.
        for line in text.split("\n"):
            job = last.get(line)
            if job is None:
                fields = line.split("|", width - 1)
                if len(fields) != width or not fields[1].isdecimal():
                    continue
                job = squeue_job(fields)
            seen[line] = job
            jobs.append(job)
        self._last = seen
        return jobs


def listed_ids(text: str) -> Counter[str]:
    """Job ids (JobArrayID, as ``squeue -h -r --states=all -O JobArrayID:|`` prints them)."""
    return Counter(line.split("|", 1)[0].strip() for line in text.split("\n") if line.strip())


def cross_checked(jobs: list[Job], ids: Counter[str]) -> tuple[list[Job], int]:
    """The jobs of a full listing that a listing of ids alone confirms, and how many were not.

    squeue prints a job name raw, line breaks included, and users choose names (and may
    change them with ``scontrol update``): a name holding a newline and a whole squeue line
    would add a job that does not exist, or a second line for someone else's job.  A listing
    of job ids cannot be forged that way.  A line whose id that listing lacks, or an id two
    lines claim, is not served (unavailable, never wrong): the forger's own job keeps its
    line, its name cut at the line break."""
    claimed = Counter(job.display_id for job in jobs)
    kept = [job for job in jobs if claimed[job.display_id] == 1 and ids[job.display_id] == 1]
    return kept, len(jobs) - len(kept)


def parse_squeue(text: str) -> list[Job]:
    """Lines of ``squeue -h -r --states=all -O SQUEUE_FORMAT``; lines that do not fit are skipped."""
    return SqueueParser().parse(text)


def squeue_job(fields: list[str]) -> Job:
    """One squeue line, split into its SQUEUE_FIELDS, as a Job.

    The instance name is the job id, except for an array task not yet started: with
    ``-r`` every such task gets a line of its own but still shares its array's record
    and job id, so it is named as users write it (6_2).  Once started it has a job id
    of its own, the one its cgroup and Lustre's job_stats carry.
    """
    (display, job_id, array_id, task, raw_state, user, account, partition, nodes, cpus,
     alloc, per_node, submit, start, end, used, limit, left, reason, status, node_list,
     name) = fields
    state = job_state(raw_state, reason)
    node_count, memory, gpus = job_resources(alloc, per_node, nodes)
    # The exit status means something only once the job is done.
    exit_status = parse_exit(status) if state in _FINISHED else None
    waiting_in_array = job_id == array_id and state in _WAITING and task.isdecimal()
    return Job(
        id=display if waiting_in_array else job_id, display_id=job_id if display == job_id else display,
        state=state, raw_state=intern(raw_state), user=intern(user),
        account="" if account == "(null)" else intern(account), partition=intern(partition),
        name=name, nodes=node_count, node_list=intern(node_list),
        cpus=_int(cpus), gpus=gpus, memory=memory,
        submit_time=parse_time(submit), start_time=parse_time(start),
        end_time=parse_time(end), elapsed=parse_duration(used),
        time_limit=_time_limit(limit), time_left=parse_duration(left),
        reason="" if reason == "None" else intern(reason),
        exit_code=None if exit_status is None else exit_status[0],
        exit_signal=None if exit_status is None else exit_status[1])


def node_state(raw: str) -> str:
    """sinfo's long state ('mixed', 'down*', 'drained', 'idle~', 'allocated+') → category."""
    word = raw.strip().rstrip("*~#!%$@^-+").lower()
    if word in ("idle", "allocated", "mixed", "down", "draining", "reserved", "completing"):
        return word
    if word in ("drained", "drain"):
        return "drain"
    if word in ("fail", "failing", "no_respond", "not_responding", "unknown", "inval"):
        return "down"
    return "other"


def parse_sinfo(text: str) -> list[NodeRow]:
    """Lines of ``sinfo -h -N -O SINFO_FORMAT`` (one row per node and partition)."""
    rows = []
    width = len(SINFO_FIELDS)
    for line in text.splitlines():
        f = line.split("|", width - 1)
        if len(f) != width or not f[0]:
            continue
        node, partition, state, cpus_state, gres, gres_used, memory, alloc_mem, _reason = f
        counts = [_int(c) for c in cpus_state.split("/")]
        if len(counts) != 4:
            counts = [None] * 4
        gpus_total = gpu_count(gres)
        rows.append(NodeRow(
            node=node, partition=partition.rstrip("*"), state=node_state(state), raw_state=state,
            cpus_allocated=counts[0], cpus_idle=counts[1], cpus_total=counts[3],
            gpus_total=gpus_total,
            gpus_allocated=gpu_count(gres_used) if gpus_total is not None else None,
            memory_total=parse_size(memory), memory_allocated=parse_size(alloc_mem)))
    return rows


_SDIAG_SECTIONS = (("Main schedule statistics", "main"), ("Backfilling stats", "backfill"),
                   ("Remote Procedure Call", None), ("Pending RPC", None))


_SDIAG_TIMES = (("Data since", "stats_reset_time"), ("sdiag output at", "stats_time"))
_EPOCH = re.compile(r"\((\d+)\)\s*$")


def _sdiag_pairs(text: str) -> Iterator[tuple[str, str]]:
    section: str | None = ""
    for line in text.splitlines():
        for heading, name in _SDIAG_SECTIONS:
            if line.startswith(heading):
                section = name
                break
        else:
            if section is None or ":" not in line:
                continue
            key, _, value = line.strip().partition(":")
            key = re.sub(r"[^a-z0-9]+", "_", key.lower()).strip("_")
            yield (f"{section}.{key}" if section else key), value.strip()


def parse_sdiag(text: str) -> dict[str, int]:
    """sdiag's 'Key: value' lines → {'server_thread_count': 3, 'main.last_cycle': 104, ...}.

    Keys repeat between the main and backfill sections, so each is prefixed by
    its section.  RPC tables and dates are left out, except the header's two epochs:
    'Data since ... (1796436951)' is when slurmctld last reset its statistics (at its
    start, on ``sdiag -r`` and every midnight UTC), kept as ``stats_reset_time``, and
    'sdiag output at' as ``stats_time``.  Unknown keys are kept.
    """
    out: dict[str, int] = {}
    for line in text.splitlines()[:6]:        # the header, before any section
        for heading, key in _SDIAG_TIMES:
            epoch = _EPOCH.search(line) if line.startswith(heading) else None
            if epoch:
                out[key] = int(epoch.group(1))
    for key, value in _sdiag_pairs(text):
        if key.startswith(("data_since", "sdiag_output_at")):
            continue
        first = value.split()[0] if value else ""
        if first.lstrip("-").isdecimal():
            out[key] = int(first)
    if "server_thread_count" not in out:
        raise ValueError("no 'Server thread count' line: not sdiag output")
    return out
