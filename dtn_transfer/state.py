"""Run state: the durable per-file journal and the live JSON that hpcdtn reads.

Layout below the runs directory (``$DTN_TRANSFER_STATE_DIR/runs``, default
``/var/lib/pcp-hpc/dtn/runs``), one directory per run:

- ``plan.json``, ``settings.json``: what the run was asked to do, its plan and options
  (for ``--resume``); with ``--auto`` also ``auto-options.json`` (the search's path figures
  and budget) and ``auto.json`` (what it chose and why);
- ``journal.jsonl``: one JSON object per file result, appended as results happen
  (fsynced at least once a second), never rewritten; the last record for a file is its result;
- ``state.json``: live counters, replaced atomically (write + rename) at most once a
  second, so readers never see half a file;
- ``work/``: globus-url-copy list files, dump files and stderr of each attempt.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pmdas.common.durable import replace_file, sync_directory

STATE_VERSION = 1
DONE, SKIPPED, FAILED = "done", "skipped", "failed"
KEEP_RUNS = 20     # completed runs kept; resumable ones are kept until resumed or removed


def state_dir() -> str:
    return os.environ.get("DTN_TRANSFER_STATE_DIR", "/var/lib/pcp-hpc/dtn")


def runs_dir() -> str:
    return os.path.join(state_dir(), "runs")


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def write_json_atomic(path: str, doc: Any, durable: bool = False) -> None:
    """Replace ``path`` with ``doc`` so that readers see the old or the new file, never half.

    ``durable``: also on disk before this returns (file and directory fsynced), for what a
    resume depends on (the plan, the options); not for the live state rewritten every second,
    which the journal can rebuild and whose fsyncs would queue behind the transfer's writes.
    """
    if durable:
        replace_file(path, json.dumps(doc, indent=1, sort_keys=True))
        return
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1, sort_keys=True)
            os.fchmod(f.fileno(), 0o644)   # as the durable files: hpcdtn reads it as the pcp user
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class Journal:
    """Append-only JSON-lines record of per-file results; survives a kill at any point.

    Every record is written through at once (a killed process loses nothing); it is
    fsynced at most once per ``sync_every`` seconds, and on ``sync``, so that a machine
    crash loses at most that much of it (those files are sent again) while a transfer
    writing gigabytes to the same file system does not pay a journal commit per group
    of files."""

    def __init__(self, path: str, sync_every: float = 1.0):
        self.path = path
        self.sync_every = sync_every
        self._lock = threading.Lock()
        self._synced = 0.0
        self._dirty = False
        self._line_checked = False
        self._new = False

    def record(self, entries: Iterable[dict]) -> None:
        lines = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in entries)
        if not lines:
            return
        with self._lock, open(self.path, "a", encoding="utf-8", errors="surrogateescape") as f:
            if not self._line_checked and not f.tell():
                self._new = True       # its name in the run directory must reach the disk too
            if not self._line_checked:
                # A process killed mid-write left a torn last line: end it, so that it
                # loses only itself rather than swallowing this record too.
                self._line_checked = True
                if f.tell() and not _ends_with_newline(self.path):
                    lines = "\n" + lines
            f.write(lines)
            f.flush()
            self._dirty = True
            if time.monotonic() - self._synced >= self.sync_every:
                self._fsync(f.fileno())

    def sync(self) -> None:
        """Make everything recorded so far durable."""
        with self._lock:
            if self._dirty:
                fd = os.open(self.path, os.O_RDONLY)
                try:
                    self._fsync(fd)
                finally:
                    os.close(fd)

    def _fsync(self, fd: int) -> None:
        os.fsync(fd)
        if self._new:
            sync_directory(os.path.dirname(self.path) or ".")
            self._new = False
        self._synced, self._dirty = time.monotonic(), False

    def results(self) -> dict[str, dict]:
        """Last record per file; a torn last line (killed mid-write) is ignored."""
        return read_journal(self.path)


def _ends_with_newline(path: str) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def read_journal_entries(path: str) -> list[dict]:
    """Every record of a journal, in order (a torn or damaged line is skipped)."""
    out: list[dict] = []
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            for line in f:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if isinstance(entry, dict) and "file" in entry:
                    out.append(entry)
    except FileNotFoundError:
        pass
    return out


def read_journal(path: str) -> dict[str, dict]:
    """Last record per file."""
    return {str(e["file"]): e for e in read_journal_entries(path)}


@dataclass(kw_only=True)
class PairState:
    """Counters of one node pair within a run (changed only through ``RunState``'s methods)."""

    source: str
    dest: str
    files_total: int = 0
    bytes_total: int = 0
    files_done: int = 0
    bytes_done: int = 0
    failures: int = 0
    retries: int = 0
    inflight_bytes: int = 0
    streams: int = 0
    concurrency: int = 0
    parallelism: int = 0
    pipelining: bool = False
    state: str = "idle"          # idle, active, down
    rate: float = 0.0
    _last: tuple[float, int] = (0.0, 0)
    _bytes_at_start: int = 0


@dataclass(kw_only=True)
class RunState:
    """Counters of one run, changed by executor threads through the methods below (each
    takes the lock, so ``publish`` never sees half a change), published by ``publish``."""

    run_id: str
    directory: str
    source: str
    dest: str
    settings: dict               # the run's options, as kept in settings.json
    files_total: int = 0
    bytes_total: int = 0
    pairs: list[PairState] = field(default_factory=list)
    files_done: int = 0
    files_skipped: int = 0
    files_failed: int = 0
    bytes_done: int = 0
    retries: int = 0
    sessions: int = 1            # this session and every earlier one of the run (1 + resumes)
    state: str = "running"
    started: float = field(default_factory=time.time)
    finished: float | None = None
    rate: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _published: float = 0.0
    _last: tuple[float, int] = (0.0, 0)
    _bytes_at_start: int = 0

    # -- changes (any thread) -------------------------------------------------------------
    def seed(self, *, files_done: int, files_skipped: int, bytes_done: int,
             earlier: dict | None = None, journal: Iterable[dict] = ()) -> None:
        """Start from what earlier sessions of this run did (``--resume``), so that the
        counters hpcdtn exports as counters go on from there instead of restarting at 0 under
        the same instance name: files and bytes done from the journal; retries, failures and
        each pair's counters from the last state an earlier session published (``earlier``),
        never below what every journal record (``journal``, all of them) proves.  The average
        throughput counts only what this session moves."""
        by_pair: dict[str, list[int]] = {}      # pair name → [files done, bytes done, failures]
        for entry in journal:
            counts = by_pair.setdefault(str(entry.get("pair")), [0, 0, 0])
            nbytes = entry.get("bytes") if isinstance(entry.get("bytes"), int) else 0
            if entry.get("result") == DONE:
                counts[0] += 1
                counts[1] += nbytes
            elif entry.get("result") == FAILED:
                counts[2] += 1
        before = earlier if isinstance(earlier, dict) and earlier.get("run") == self.run_id else {}
        pairs_before = before.get("pairs") if isinstance(before.get("pairs"), dict) else {}
        with self._lock:
            self.files_done, self.files_skipped, self.bytes_done = files_done, files_skipped, bytes_done
            self._bytes_at_start = bytes_done
            self.retries = _count(before, "retries")
            self.files_failed = _count(before.get("files"), "failed")
            self.sessions = _count(before, "sessions", default=1) + 1 if before else self.sessions
            for pair in self.pairs:
                name = f"{pair.source}>{pair.dest}"
                old = pairs_before.get(name) if isinstance(pairs_before.get(name), dict) else {}
                proven = by_pair.get(name, [0, 0, 0])
                pair.files_done = max(_count(old, "files_done"), proven[0])
                pair.bytes_done = max(_count(old, "bytes_done"), proven[1])
                pair.failures = max(_count(old, "failures"), proven[2])
                pair.retries = _count(old, "retries")
                pair._bytes_at_start = pair.bytes_done

    def count_results(self, results: Iterable[tuple[int, int, str]], final: bool) -> None:
        """Count file results: (pair index, bytes, DONE | SKIPPED | FAILED); a failure counts
        against the run only when ``final`` (no retry left)."""
        with self._lock:
            for index, nbytes, result in results:
                pair = self.pairs[index]
                if result == DONE:
                    self.files_done += 1
                    self.bytes_done += nbytes
                    pair.files_done += 1
                    pair.bytes_done += nbytes
                elif result == SKIPPED:
                    self.files_skipped += 1
                    self.bytes_done += nbytes
                elif final:
                    self.files_failed += 1
                if result == FAILED:
                    pair.failures += 1

    def add_retries(self, files: int, pairs: Iterable[int] = ()) -> None:
        """``files`` are tried again; ``pairs`` names the pair each one failed on, if known."""
        with self._lock:
            self.retries += files
            for index in pairs:
                self.pairs[index].retries += 1

    def pair_working(self, index: int, *, streams: int, concurrency: int | None = None,
                     parallelism: int | None = None, pipelining: bool | None = None) -> None:
        """A pair starts a process with ``streams`` streams (and, for a batch, its tuning)."""
        with self._lock:
            pair = self.pairs[index]
            pair.state, pair.streams = "active", streams
            if concurrency is not None:
                pair.concurrency = concurrency
            if parallelism is not None:
                pair.parallelism = parallelism
            if pipelining is not None:
                pair.pipelining = pipelining

    def pair_stopped(self, index: int, *, down: bool = False) -> None:
        """A pair's process ended; ``down``: one of its nodes does not answer (retries avoid it)."""
        with self._lock:
            pair = self.pairs[index]
            pair.streams = 0
            if down:
                pair.state = "down"

    def pair_idle(self, index: int, *, was: str = "active") -> None:
        """A pair has no more work (``was="active"``), or answers again (``was="down"``)."""
        with self._lock:
            if self.pairs[index].state == was:
                self.pairs[index].state = "idle"

    def set_inflight(self, index: int, nbytes: int) -> None:
        """Bytes of a pair's files at the destination but not yet verified (live progress)."""
        with self._lock:
            self.pairs[index].inflight_bytes = nbytes

    def add_inflight(self, index: int, nbytes: int) -> None:
        with self._lock:
            self.pairs[index].inflight_bytes += nbytes

    def finish(self, state: str) -> dict:
        """End the run as ``state`` (completed, incomplete, interrupted); returns the last
        state published."""
        with self._lock:
            self.state, self.finished = state, time.time()
        # durable, once: a resume carries its counters on from this state (see ``seed``)
        return self.publish(force=True, durable=True) or {}

    # -- reading ------------------------------------------------------------------------------
    def moved(self) -> int:
        return self.bytes_done + sum(p.inflight_bytes for p in self.pairs)

    def _rates(self, now: float) -> None:
        """Instantaneous rates: bytes moved since the last publish over the time since."""
        t0, b0 = self._last
        moved = self.moved()
        if t0 and now > t0:
            self.rate = max(0.0, (moved - b0) / (now - t0))
        self._last = (now, moved)
        for p in self.pairs:
            pt0, pb0 = p._last
            pmoved = p.bytes_done + p.inflight_bytes
            if pt0 and now > pt0:
                p.rate = max(0.0, (pmoved - pb0) / (now - pt0))
            p._last = (now, pmoved)

    def to_json(self, now: float) -> dict:
        elapsed = max(1e-9, (self.finished or now) - self.started)
        return {
            "version": STATE_VERSION, "run": self.run_id, "state": self.state,
            "pid": os.getpid(), "host": socket.gethostname(),
            "started": self.started, "updated": now, "finished": self.finished,
            "source": self.source, "dest": self.dest, "settings": self.settings,
            "files": {"total": self.files_total, "done": self.files_done,
                      "skipped": self.files_skipped, "failed": self.files_failed},
            "bytes": {"total": self.bytes_total, "done": self.bytes_done,
                      "moved": self.moved()},
            "throughput": {"instant": self.rate if self.state == "running" else 0.0,
                           "average": (self.bytes_done - self._bytes_at_start) / elapsed},
            "streams_in_flight": sum(p.streams for p in self.pairs),
            "retries": self.retries, "sessions": self.sessions,
            "pairs": {f"{p.source}>{p.dest}": {
                "source": p.source, "dest": p.dest, "state": p.state,
                "files_total": p.files_total, "bytes_total": p.bytes_total,
                "files_done": p.files_done, "bytes_done": p.bytes_done,
                "failures": p.failures, "retries": p.retries,
                "throughput_instant": p.rate if p.state == "active" else 0.0,
                "throughput_average": (p.bytes_done - p._bytes_at_start) / elapsed,
                "streams_in_flight": p.streams, "concurrency": p.concurrency,
                "parallelism": p.parallelism, "pipelining": p.pipelining,
            } for p in self.pairs},
        }

    def publish(self, force: bool = False, durable: bool = False) -> dict | None:
        """Write state.json if a second has passed (or ``force``); returns what was written."""
        now = time.time()
        with self._lock:
            if not force and now - self._published < 1.0:
                return None
            self._rates(now)
            doc = self.to_json(now)
            self._published = now
        write_json_atomic(os.path.join(self.directory, "state.json"), doc, durable=durable)
        return doc


def _count(doc: object, key: str, default: int = 0) -> int:
    """A non-negative whole count from an earlier state document, else ``default``."""
    value = doc.get(key) if isinstance(doc, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else default


def read_state(run_dir: str) -> dict | None:
    try:
        with open(os.path.join(run_dir, "state.json"), encoding="utf-8") as f:
            doc = json.load(f)
        return doc if isinstance(doc, dict) else None
    except (OSError, ValueError):
        return None


def list_runs(base: str | None = None) -> list[str]:
    """Run ids, oldest first (ids start with their start time)."""
    base = base or runs_dir()
    try:
        return sorted(d for d in os.listdir(base) if os.path.isdir(os.path.join(base, d)))
    except FileNotFoundError:
        return []


def prune_runs(base: str, keep: int = KEEP_RUNS) -> list[str]:
    """Delete the oldest completed runs beyond ``keep``.  Runs that can still be resumed
    (running, interrupted, incomplete, or of unknown state) are never pruned: they stay until
    resumed to completion or removed (``dtn-transfer remove RUN``)."""
    completed = [r for r in list_runs(base)
                 if (read_state(os.path.join(base, r)) or {}).get("state") == "completed"]
    doomed = completed[:-keep] if keep > 0 else completed
    for run in doomed:
        shutil.rmtree(os.path.join(base, run), ignore_errors=True)
    return doomed


def remove_run(base: str, run: str) -> None:
    """Delete one run's directory (its journal too: it can no longer be resumed).  Refuses a
    name that is not a run below ``base`` and a run whose process is still alive here."""
    if run in ("", ".", "..") or "/" in run or "\0" in run or run not in list_runs(base):
        raise ValueError(f"no run {run!r}")
    directory = os.path.join(base, run)
    doc = read_state(directory) or {}
    here = doc.get("host") == socket.gethostname()
    if doc.get("state") == "running" and here and process_alive(doc.get("pid")):
        raise ValueError(f"run {run} is still running (pid {doc.get('pid')}); stop it first")
    shutil.rmtree(directory)


def process_alive(pid: object) -> bool:
    """Whether a process of this pid exists on this host (a run's owner, from its state)."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):   # OverflowError: a pid no process can have
        return False
    except PermissionError:
        return True
    return True
