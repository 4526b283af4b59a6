"""job_stats: a fast hand-rolled parser and job id → label decoding.

Big servers hold 10,000–40,000 job entries per target; a YAML loader takes
seconds for that, so the file is scanned with one compiled regular expression
over the whole text (the loop runs in C; Python only sees the matches).  Both
forms are handled: the old one (bare ids, integer snapshot_time, ``reqs``) and
the new one (quoted ids, ``secs.nsecs`` times, ``sumsq`` and ``hist`` fields).
Lines that match neither an entry start nor a counter are skipped.
"""
from __future__ import annotations

import hashlib
import re

# Either "- job_id: <id>" (group 1) or "  <op>: { samples: N, unit: U[, min: a, max: b, sum: S...]".
_JOB_STATS = re.compile(
    r"^- job_id:[ \t]*(.*?)[ \t]*$"
    r"|^[ \t]+(\w+):[ \t]*\{[ \t]*samples:[ \t]*(\d+),[ \t]*unit:[ \t]*(\w+)"
    r"(?:,[ \t]*min:[ \t]*-?\d+,[ \t]*max:[ \t]*-?\d+,[ \t]*sum:[ \t]*(\d+))?",
    re.MULTILINE)

# Lustre caps job ids at 32 bytes; anything far longer is garbage or an attack on
# the instance domain, so it is shortened (keeping a digest so names stay distinct).
MAX_JOB_ID = 128

# One job's counters on one target: op → (samples, unit, sum or None).
JobCounters = dict[str, tuple[int, str, "int | None"]]


def clean_job_id(raw: str) -> str:
    """Strip YAML quoting; shorten huge ids; never return an empty name."""
    job_id = raw.strip()
    if len(job_id) >= 2 and job_id[0] == job_id[-1] and job_id[0] in "\"'":
        job_id = job_id[1:-1]
    job_id = "".join(c if c.isprintable() and not c.isspace() else "_" for c in job_id)
    if len(job_id) > MAX_JOB_ID:
        digest = hashlib.sha1(job_id.encode("utf-8", "replace")).hexdigest()[:12]
        job_id = f"{job_id[:MAX_JOB_ID - 13]}~{digest}"
    return job_id or "_"


def parse_job_stats(text: str) -> dict[str, JobCounters]:
    """Return {job id: {op: (samples, unit, sum)}}.

    An empty ``job_stats:`` (job stats disabled, or no jobs yet) gives {}.
    Counter lines before the first job id (a truncated read) are dropped; a job
    id seen twice has its counters added.
    """
    jobs: dict[str, JobCounters] = {}
    current: JobCounters | None = None
    ids: dict[str, str] = {}
    for job_raw, op, samples, unit, total in _JOB_STATS.findall(text):
        if op:
            if current is None:
                continue
            value = (int(samples), unit, int(total) if total else None)
            before = current.get(op)
            if before is not None:
                value = (before[0] + value[0], unit,
                         None if value[2] is None else (before[2] or 0) + value[2])
            current[op] = value
        else:
            job_id = ids.get(job_raw)
            if job_id is None:
                job_id = ids[job_raw] = clean_job_id(job_raw)
            current = jobs.get(job_id)
            if current is None:
                current = jobs[job_id] = {}
    return jobs


_SLURM = re.compile(r"^(?:SLURM_JOB(?:_ID)?[=_]?|slurm[-_]?|job[-_]?)?(\d+)(?:[._](\w+))?$",
                    re.IGNORECASE)
_PROC_UID = re.compile(r"^(.+)\.(\d+)$")


def job_labels(job_id: str) -> dict[str, str]:
    """PCP instance labels decoded from a job id, so Lustre I/O joins hpc.job.*.

    ``SLURM_JOB10:0:node-client`` → job 10, user 0, host node-client;
    ``24`` → job 24; ``24.1`` → job 24, step 1; ``dd.1000`` (procname_uid) →
    command dd, user 1000.  The raw id is always kept as ``jobid``.
    """
    labels = {"jobid": job_id}
    parts = job_id.split(":")
    head = parts[0]
    slurm = _SLURM.match(head)
    if slurm:
        labels["job"] = slurm.group(1)
        if slurm.group(2):
            labels["step"] = slurm.group(2)
        if len(parts) >= 2 and parts[1]:
            labels["user"] = parts[1]
        if len(parts) >= 3 and parts[2]:
            labels["host"] = ":".join(parts[2:])
        return labels
    proc = _PROC_UID.match(job_id)
    if proc:
        labels["command"] = proc.group(1)
        labels["user"] = proc.group(2)
    return labels
