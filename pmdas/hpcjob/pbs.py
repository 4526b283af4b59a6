"""Pure parsers for PBS Pro / OpenPBS: ``qstat -f -F json``, ``pbsnodes -av -F json``, ``qstat -Bf``.

PBS prints times as C ``ctime`` strings in the server's local time
("Sat Dec  3 20:25:38 2022"), sizes with kb/mb/gb suffixes, durations as
HH:MM:SS, and the owner as user@host.  Older servers print invalid JSON for
some values (unescaped control characters in Variable_List), so decoding is
lenient (``strict=False``).
"""
from __future__ import annotations

import json
import time
from typing import Any

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

# B (array begun) is the parent of running subjobs, not a job of its own: OTHER,
# so that its resources are not counted next to its subjobs'.

_STATES = {"R": RUNNING, "Q": PENDING, "W": PENDING, "T": PENDING, "H": HELD, "E": COMPLETING,
           "S": SUSPENDED, "U": SUSPENDED, "B": OTHER, "M": OTHER, "X": COMPLETED}
_UNITS = {"b": 1, "w": 8, "kb": 1 << 10, "kw": 8 << 10, "mb": 1 << 20, "mw": 8 << 20,
          "gb": 1 << 30, "gw": 8 << 30, "tb": 1 << 40, "tw": 8 << 40, "pb": 1 << 50}


def parse_time(text: Any) -> float | None:
    """'Sat Dec  3 20:25:38 2022' (server local time) or epoch seconds → epoch seconds."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    if not isinstance(text, str):
        return None
    try:
        return time.mktime(time.strptime(" ".join(text.split()), "%a %b %d %H:%M:%S %Y"))
    except (ValueError, OverflowError):
        return None


def parse_size(text: Any) -> int | None:
    """'348kb', '4gb', '16139208kb', '1024' (bytes) → bytes."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    if not isinstance(text, str):
        return None
    text = text.strip().lower()
    number = text.rstrip("bkmgtpw")
    unit = text[len(number):] or "b"
    if unit not in _UNITS:
        return None
    try:
        return int(float(number) * _UNITS[unit])
    except ValueError:
        return None


def parse_duration(text: Any) -> int | None:
    """'01:00:00', '100:05:03', '3600' → seconds."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    if not isinstance(text, str):
        return None
    try:
        parts = [int(p) for p in text.strip().split(":")]
    except ValueError:
        return None
    if not 1 <= len(parts) <= 3 or any(p < 0 for p in parts):
        return None
    seconds = 0
    for part in parts:
        seconds = seconds * 60 + part
    return seconds


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdecimal():
        return int(value)
    return None


def exec_hosts(exec_host: Any) -> tuple[str, ...]:
    """'node01/0*2+node02/1' → ('node01', 'node02'), order kept, duplicates dropped."""
    if not isinstance(exec_host, str) or not exec_host:
        return ()
    seen: dict[str, None] = {}
    for chunk in exec_host.split("+"):
        host = chunk.split("/")[0].split(":")[0].strip()
        if host:
            seen[host] = None
    return tuple(seen)


def _decode(text: str, what: str) -> dict:
    try:
        doc = json.loads(text, strict=False)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{what} is not a JSON object")
    return doc


def job_state(code: str, exit_status: int | None) -> str:
    """PBS one-letter state; finished jobs (F, with -x) split by exit status.

    Exit_status above 256 means killed by signal (status - 256; qdel gives 271),
    -29 is PBS's JOB_EXEC_KILL_WALLTIME, other negatives mean PBS could not run it.
    """
    if code == "F":
        if exit_status is None or exit_status == 0:
            return COMPLETED
        if exit_status == -29:
            return TIMEOUT
        return CANCELLED if exit_status > 256 else FAILED
    return _STATES.get(code, OTHER)


def parse_qstat_jobs(text: str) -> list[Job]:
    """``qstat -f -F json`` → jobs.  Entries of the wrong shape are skipped."""
    doc = _decode(text, "qstat output")
    entries = doc.get("Jobs") or {}
    if not isinstance(entries, dict):
        raise ValueError("qstat output has a 'Jobs' value that is not an object")
    jobs = []
    for job_id, a in entries.items():
        if not isinstance(a, dict):
            continue
        requested = a.get("Resource_List") if isinstance(a.get("Resource_List"), dict) else {}
        used = a.get("resources_used") if isinstance(a.get("resources_used"), dict) else {}
        status = _int(a.get("Exit_status"))
        state = job_state(str(a.get("job_state", "")), status)
        hosts = exec_hosts(a.get("exec_host"))
        limit = parse_duration(requested.get("walltime"))
        elapsed = parse_duration(used.get("walltime"))
        owner = str(a.get("Job_Owner", ""))
        jobs.append(Job(
            id=job_id, display_id=job_id, state=state, raw_state=str(a.get("job_state", "")),
            user=owner.split("@")[0], account=str(a.get("Account_Name", "")),
            partition=str(a.get("queue", "")), name=str(a.get("Job_Name", "")),
            nodes=_int(requested.get("nodect")),
            node_list=",".join(hosts),
            cpus=_int(requested.get("ncpus")), gpus=_int(requested.get("ngpus")),
            memory=parse_size(requested.get("mem")),
            submit_time=parse_time(a.get("qtime") or a.get("ctime")),
            start_time=parse_time(a.get("stime")),
            end_time=parse_time(a.get("obittime")),
            elapsed=elapsed, time_limit=limit,
            time_left=(max(0, limit - elapsed) if limit is not None and elapsed is not None
                       and state in (RUNNING, SUSPENDED) else None),
            reason=str(a.get("comment", "")) if state in (PENDING, HELD) else "",
            exit_code=status if status is None or status < 256 else None,
            exit_signal=(None if status is None else status - 256 if status > 256 else 0)))
    return jobs


def node_state(raw: str, cpus_assigned: int | None, has_jobs: bool) -> str:
    """PBS node state list ('free', 'job-busy', 'down,offline', ...) → category."""
    words = {w.strip() for w in raw.split(",")}
    if words & {"down", "state-unknown", "stale", "unresolvable"}:
        return "down"
    if "offline" in words:
        return "draining" if has_jobs else "drain"
    if words & {"job-busy", "job-exclusive", "busy"}:
        return "allocated"
    if words & {"resv-exclusive"}:
        return "reserved"
    if "free" in words:
        return "mixed" if (cpus_assigned or 0) > 0 or has_jobs else "idle"
    return "other"


def parse_pbsnodes(text: str) -> list[NodeRow]:
    """``pbsnodes -av -F json`` → one row per node; its 'partition' is its queue (or 'all')."""
    doc = _decode(text, "pbsnodes output")
    nodes = doc.get("nodes") or {}
    if not isinstance(nodes, dict):
        raise ValueError("pbsnodes output has a 'nodes' value that is not an object")
    rows = []
    for name, a in nodes.items():
        if not isinstance(a, dict):
            continue
        avail = a.get("resources_available") if isinstance(a.get("resources_available"), dict) else {}
        assigned = a.get("resources_assigned") if isinstance(a.get("resources_assigned"), dict) else {}
        total = _int(avail.get("ncpus", a.get("pcpus")))
        busy = _int(assigned.get("ncpus"))
        state = node_state(str(a.get("state", "")), busy, bool(a.get("jobs")))
        rows.append(NodeRow(
            node=name, partition=str(a.get("queue") or "all"), state=state,
            raw_state=str(a.get("state", "")), cpus_allocated=busy,
            cpus_idle=(total - busy if total is not None and busy is not None
                       and state in ("idle", "mixed", "allocated") else 0 if total else None),
            cpus_total=total, gpus_total=_int(avail.get("ngpus")),
            gpus_allocated=_int(assigned.get("ngpus")),
            memory_total=parse_size(avail.get("mem")),
            memory_allocated=parse_size(assigned.get("mem"))))
    return rows


def parse_server_status(text: str) -> dict[str, Any]:
    """``qstat -Bf`` → server attributes, with state_count split into numbers.

    Continuation lines (a long value wrapped onto a tab-indented next line) are
    joined to the previous value.
    """
    attrs: dict[str, Any] = {}
    last = None
    for line in text.splitlines():
        if line.startswith("Server:"):
            attrs["server"] = line.split(":", 1)[1].strip()
            continue
        if " = " in line:
            key, _, value = line.strip().partition(" = ")
            attrs[key] = value.strip()
            last = key
        elif line.startswith("\t") and last is not None:
            attrs[last] += line.strip()
    if "server" not in attrs:
        raise ValueError("no 'Server:' line: not qstat -Bf output")
    counts = {}
    for item in str(attrs.get("state_count", "")).split():
        key, _, value = item.partition(":")
        if value.isdecimal():
            counts[key.lower()] = int(value)
    attrs["state_count"] = counts
    return attrs


def parse_pbsnodes_jobs(text: str) -> set[str]:
    """``pbsnodes -v <node> -F json`` → ids of the jobs on it ('13.server/0' → '13.server')."""
    doc = _decode(text, "pbsnodes output")
    nodes = doc.get("nodes") or {}
    ids: set[str] = set()
    for attrs in nodes.values() if isinstance(nodes, dict) else ():
        for entry in attrs.get("jobs") or () if isinstance(attrs, dict) else ():
            if isinstance(entry, str) and entry:
                ids.add(entry.split("/")[0].strip())
    return ids
