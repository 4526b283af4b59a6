"""Pure parsers for hpcdtn: a dtn-transfer state.json text, transfer-log totals.

The state file format is written by dtn_transfer.state (version 1); the transfer log
line parser is dtn_transfer.progress's, shared so the two cannot drift apart.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

from dtn_transfer.progress import parse_transfer_log_line

STATES = ("running", "completed", "incomplete", "interrupted")
LISTING_TYPES = frozenset({"LIST", "NLST", "MLSD", "MLSR"})


@dataclass(frozen=True)
class PairView:
    name: str
    source: str
    dest: str
    state: str
    files_total: int | None
    files_done: int | None
    bytes_total: int | None
    bytes_done: int | None
    failures: int | None
    retries: int | None
    throughput_instant: float | None
    throughput_average: float | None
    streams: int | None
    concurrency: int | None
    parallelism: int | None
    pipelining: int | None


@dataclass(frozen=True)
class RunView:
    run: str
    state: str
    pid: int | None
    host: str
    started: float | None
    updated: float | None
    finished: float | None
    source: str
    dest: str
    files: dict[str, int | None]
    bytes: dict[str, int | None]
    throughput_instant: float | None
    throughput_average: float | None
    streams: int | None
    retries: int | None
    pairs: tuple[PairView, ...] = ()
    sessions: int | None = None    # 1 + resumes; absent from states written before it existed


def _num(value: object) -> float | None:
    """A finite number, else None: users write state files, and JSON allows NaN, Infinity
    and integers too big for a double, none of which is a count or a time."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _int(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    number = _num(value)
    return None if number is None else int(number)


def _flag(value: object) -> int | None:
    return int(value) if isinstance(value, bool) else None


def parse_run_state(text: str) -> RunView | None:
    """A run's state.json → RunView; None if it is not a version-1 state document.

    Individual fields of the wrong type become None (unavailable), not errors.
    """
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):    # RecursionError: nesting deeper than Python's stack
        return None
    if not isinstance(doc, dict) or doc.get("version") != 1 or not isinstance(doc.get("run"), str):
        return None
    files = doc.get("files") if isinstance(doc.get("files"), dict) else {}
    nbytes = doc.get("bytes") if isinstance(doc.get("bytes"), dict) else {}
    rates = doc.get("throughput") if isinstance(doc.get("throughput"), dict) else {}
    pairs = []
    raw_pairs = doc.get("pairs") if isinstance(doc.get("pairs"), dict) else {}
    for name, p in raw_pairs.items():
        if not isinstance(p, dict):
            continue
        pairs.append(PairView(
            str(name), str(p.get("source", "")), str(p.get("dest", "")), str(p.get("state", "")),
            _int(p.get("files_total")), _int(p.get("files_done")), _int(p.get("bytes_total")),
            _int(p.get("bytes_done")), _int(p.get("failures")), _int(p.get("retries")),
            _num(p.get("throughput_instant")), _num(p.get("throughput_average")),
            _int(p.get("streams_in_flight")), _int(p.get("concurrency")), _int(p.get("parallelism")),
            _flag(p.get("pipelining"))))
    return RunView(
        doc["run"], str(doc.get("state", "")), _int(doc.get("pid")), str(doc.get("host", "")),
        _num(doc.get("started")), _num(doc.get("updated")), _num(doc.get("finished")),
        str(doc.get("source", "")), str(doc.get("dest", "")),
        {k: _int(files.get(k)) for k in ("total", "done", "skipped", "failed")},
        {k: _int(nbytes.get(k)) for k in ("total", "done", "moved")},
        _num(rates.get("instant")), _num(rates.get("average")),
        _int(doc.get("streams_in_flight")), _int(doc.get("retries")), tuple(pairs),
        _int(doc.get("sessions")))


@dataclass
class RemoteTotals:
    """Running totals per remote host from a GridFTP transfer log (counters only grow)."""

    transfers: int = 0
    failed: int = 0
    nbytes: int = 0
    seconds: float = 0.0
    last_streams: int = 0
    last_throughput: float = 0.0


@dataclass
class LogTotals:
    remotes: dict[str, RemoteTotals] = field(default_factory=dict)
    skipped_lines: int = 0


def add_log_text(totals: LogTotals, text: str) -> None:
    """Fold complete transfer-log lines into ``totals``; malformed lines are counted, skipped."""
    for line in text.splitlines():
        if not line.strip():
            continue
        record = parse_transfer_log_line(line)
        if record is None:
            if "DATE=" in line:
                totals.skipped_lines += 1
            continue
        if record.type.upper() in LISTING_TYPES:
            continue   # directory listings travel on data channels too, but are not file data
        remote = totals.remotes.setdefault(record.remote or "unknown", RemoteTotals())
        remote.transfers += 1
        remote.failed += int(record.code != 226)
        remote.nbytes += record.nbytes
        remote.seconds += record.seconds
        remote.last_streams = record.streams
        remote.last_throughput = record.nbytes / record.seconds if record.seconds > 0 else 0.0
