"""Execute: run globus-url-copy batches on every node pair at once, verify, retry elsewhere.

Each node pair works through its batches in its own thread (L pairs × C files × P
streams in flight).  A batch is one globus-url-copy process fed a list file of
percent-encoded URL pairs (no shell anywhere), with restart markers (-rst) for
transient faults and a dump file (-df) of what it could not move.  When it exits,
every file is verified at the destination and its result journaled at once.  Files
that failed go to another pair in the next round (a dead server or an unreachable
node then costs one round, not the data); after the last round the remaining ones
are journaled as failed with the reason.
"""
from __future__ import annotations

import ctypes
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .endpoints import nameable
from .plan import Plan, PlannedFile
from .progress import ProgressTracker, error_blocks, parse_progress_line
from .schedule import Batch, Settings, schedule
from .state import DONE, FAILED, SKIPPED, Journal, RunState
from .verify import node_answers, verify_files

GLOBUS_URL_COPY = os.environ.get("DTN_TRANSFER_GLOBUS_URL_COPY", "globus-url-copy")

_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass(frozen=True)
class Attempt:
    """What one globus-url-copy process reported, before verification."""

    returncode: int
    errors: list[str]
    killed_for_stall: bool


def batch_argv(batch: Batch, settings: Settings, list_file: str, dump_file: str,
               third_party: bool) -> list[str]:
    """The globus-url-copy command line for one batch (an argv list, never a shell string)."""
    t = batch.tuning
    argv = [GLOBUS_URL_COPY, "-vb", "-c", "-cd", "-rst", "-rst-retries", "1",
            "-rst-interval", "1", "-stall-timeout", str(settings.stall_timeout),
            "-p", str(t.parallelism), "-cc", str(t.concurrency)]
    if t.pipelining:
        argv.append("-pp")
    if settings.fast:
        argv.append("-fast")
    if settings.tcp_buffer:
        argv += ["-tcp-bs", str(settings.tcp_buffer)]
    if settings.verify and third_party:
        argv.append("-verify-checksum")
    return argv + ["-df", dump_file, "-f", list_file]


def list_file_text(plan: Plan, batch: Batch) -> str:
    """``-f`` list: one quoted URL pair per line; URLs are percent-encoded, so quoting is safe."""
    src_node, dst_node = plan.pairs[batch.pair]
    return "".join(f'"{plan.source.url(src_node, f.relpath)}" "{plan.dest.url(dst_node, f.relpath)}"\n'
                   for f in batch.files)


def reason_for(plan: Plan, f: PlannedFile, problem: str, attempt: Attempt) -> str:
    """Best explanation of one file's failure: its own error block, else the process's."""
    paths = (plan.source.path.rstrip("/") + "/" + f.relpath, plan.dest.path.rstrip("/") + "/" + f.relpath)
    own = [b for b in attempt.errors if any(p in b for p in paths)]
    detail = (own or attempt.errors or [""])[-1]
    if attempt.killed_for_stall:
        detail = "no progress within the stall timeout; globus-url-copy was stopped"
    text = problem + (f"; globus-url-copy: {detail}" if detail else "")
    return text if len(text) <= 400 else text[:397] + "..."


Batcher = Callable[[Plan, Settings, list[PlannedFile]], dict[int, Iterable[Batch]]]


class Executor:
    """Runs a plan.  ``batcher`` turns the files of a round into batches per node pair; the
    default is ``schedule`` (fixed C/P per size class).  Auto-tuning passes one whose
    per-pair iterables are generators: each batch is formed when the pair is ready for it,
    so C/P can change between batches."""

    def __init__(self, plan: Plan, settings: Settings, run: RunState, journal: Journal,
                 work_dir: str, on_tick: Callable[[RunState], None] | None = None,
                 batcher: Batcher | None = None):
        self.plan, self.settings, self.run, self.journal = plan, settings, run, journal
        self.work_dir = work_dir
        self.on_tick = on_tick
        self.batcher = batcher or schedule
        self.third_party = not plan.source.local and not plan.dest.local
        self._seq = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()

    # -- results ---------------------------------------------------------------
    def _record(self, f: PlannedFile, result: str, reason: str, attempt: int, final: bool) -> None:
        self._record_many([(f, result, reason)], attempt, final)

    def _record_many(self, results: list[tuple[PlannedFile, str, str]], attempt: int, final: bool) -> None:
        """Journal a batch's results in one fsynced append, then count them."""
        now = time.time()
        entries = []
        for f, result, reason in results:
            pair = self.run.pairs[f.pair]
            entries.append({"t": now, "file": f.relpath, "bytes": f.size, "result": result,
                            "reason": reason, "pair": f"{pair.source}>{pair.dest}",
                            "attempt": attempt, "final": final or result != FAILED})
        self.journal.record(entries)
        with self.run._lock:
            for f, result, _ in results:
                pair = self.run.pairs[f.pair]
                if result == DONE:
                    self.run.files_done += 1
                    self.run.bytes_done += f.size
                    pair.files_done += 1
                    pair.bytes_done += f.size
                elif result == SKIPPED:
                    self.run.files_skipped += 1
                    self.run.bytes_done += f.size
                elif final:
                    self.run.files_failed += 1
                if result == FAILED:
                    pair.failures += 1

    # -- one process -------------------------------------------------------------
    def _run_batch(self, batch: Batch) -> Attempt:
        with self._lock:
            self._seq += 1
            stem = os.path.join(self.work_dir, f"batch-{self._seq:05d}")
        with open(stem + ".list", "w", encoding="utf-8") as f:
            f.write(list_file_text(self.plan, batch))
        argv = batch_argv(batch, self.settings, stem + ".list", stem + ".dump", self.third_party)
        pair = self.run.pairs[batch.pair]
        with self.run._lock:
            pair.state, pair.streams = "active", batch.streams
            pair.concurrency, pair.parallelism = batch.tuning.concurrency, batch.tuning.parallelism
            pair.pipelining = batch.tuning.pipelining
        tracker = ProgressTracker()
        stalled = False
        with open(stem + ".stderr", "wb") as err:
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err,
                                    stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
            assert proc.stdout is not None
            pending, last_output = b"", time.monotonic()
            fd = proc.stdout.fileno()
            while True:
                ready, _, _ = select.select([fd], [], [], 0.5)
                if ready:
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        break
                    last_output = time.monotonic()
                    pending += chunk
                    *records, pending = pending.replace(b"\r", b"\n").split(b"\n")
                    for record in records:
                        line = parse_progress_line(record.decode("ascii", "replace"))
                        if line is not None:
                            tracker.feed(line)
                    with self.run._lock:
                        pair.inflight_bytes = tracker.nbytes
                if self._stop.is_set() or \
                        time.monotonic() - last_output > 2 * self.settings.stall_timeout + 10:
                    stalled = not self._stop.is_set()
                    proc.kill()
                    break
                self._tick()
            proc.wait()
        with self.run._lock:
            pair.inflight_bytes, pair.streams = 0, 0
        with open(stem + ".stderr", encoding="utf-8", errors="replace") as f:
            errors = error_blocks(f.read())
        return Attempt(proc.returncode, errors, stalled)

    def _tick(self) -> None:
        if self.run.publish() is not None and self.on_tick is not None:
            self.on_tick(self.run)

    # -- one pair's work in one round -----------------------------------------------
    def _work_pair(self, pair_index: int, batches: Iterable[Batch], attempt_no: int,
                   failed: dict[str, tuple[PlannedFile, str]]) -> None:
        for batch in batches:
            if self._stop.is_set():
                return
            attempt = self._run_batch(batch)
            checks = verify_files(self.plan.source, self.plan.dest, batch.files,
                                  self.plan.pairs[batch.pair], self.settings.verify)
            results = []
            for f in batch.files:
                problem = checks.get(f.relpath, "not verified")
                if problem is None:
                    results.append((f, DONE, ""))
                else:
                    reason = reason_for(self.plan, f, problem, attempt)
                    results.append((f, FAILED, reason))
                    with self._lock:
                        failed[f.relpath] = (f, reason)
            self._record_many(results, attempt_no, False)
            pair = self.run.pairs[batch.pair]
            src_node, dst_node = self.plan.pairs[batch.pair]
            if any(problem is not None for problem in checks.values()) and not (
                    node_answers(src_node) and node_answers(dst_node)):
                with self.run._lock:
                    pair.state = "down"   # a node does not answer: retries go to other pairs
            self._tick()
        pair_state = self.run.pairs[pair_index]
        if pair_state.state == "active":
            with self.run._lock:
                pair_state.state = "idle"

    def _reassign(self, f: PlannedFile, tried: set[int]) -> PlannedFile:
        """Another pair for a retry: untried and not down if possible, least loaded first."""
        pairs = range(len(self.plan.pairs))
        healthy = [p for p in pairs if self.run.pairs[p].state != "down"]
        choices = [p for p in healthy if p not in tried] or healthy or list(pairs)
        target = min(choices, key=lambda p: (self.run.pairs[p].failures, p))
        return PlannedFile(f.relpath, f.size, f.bin, target)

    # -- the whole transfer -----------------------------------------------------------
    def execute(self, todo: list[PlannedFile]) -> dict[str, str]:
        """Move ``todo``; returns {relpath: reason} for every file that did not make it."""
        remote = not (self.plan.source.local and self.plan.dest.local)
        unsendable = [f for f in todo if remote and not nameable(f.relpath)]
        lost: dict[str, str] = {}
        for f in unsendable:
            lost[f.relpath] = ("name has bytes outside printable ASCII, which the GridFTP control "
                               "channel drops; not sent (it would land under a different name)")
            self._record(f, FAILED, lost[f.relpath], 0, True)
        pending = [f for f in todo if f not in unsendable]
        if self.settings.sync and pending:
            pending = self._skip_identical(pending)
        tried: dict[str, set[int]] = {}
        for attempt_no in range(self.settings.retries + 1):
            if not pending or self._stop.is_set():
                break
            if attempt_no:
                with self.run._lock:
                    self.run.retries += len(pending)
                    for f in pending:
                        self.run.pairs[f.pair].retries += 1
            for f in pending:
                tried.setdefault(f.relpath, set()).add(f.pair)
            failed: dict[str, tuple[PlannedFile, str]] = {}
            threads = [threading.Thread(target=self._work_pair, args=(p, batches, attempt_no, failed),
                                        name=f"pair-{p}", daemon=True)
                       for p, batches in self.batcher(self.plan, self.settings, pending).items() if batches]
            for t in threads:
                t.start()
            for t in threads:
                while t.is_alive():
                    t.join(0.5)
                    self._tick()
            last = attempt_no == self.settings.retries
            if last or self._stop.is_set():
                self._record_many([(f, FAILED, reason) for f, reason in failed.values()], attempt_no, True)
                lost.update({f.relpath: reason for f, reason in failed.values()})
                break
            pending = [self._reassign(f, tried[f.relpath]) for f, _ in failed.values()]
        return lost

    def _skip_identical(self, files: list[PlannedFile]) -> list[PlannedFile]:
        """--sync: files already identical at the destination are skipped, not re-sent."""
        out = []
        for pair in range(len(self.plan.pairs)):
            mine = [f for f in files if f.pair == pair]
            if not mine:
                continue
            checks = verify_files(self.plan.source, self.plan.dest, mine, self.plan.pairs[pair],
                                  self.settings.verify)
            same = [f for f in mine if checks.get(f.relpath) is None]
            self._record_many([(f, SKIPPED, "already identical at the destination") for f in same], 0, True)
            out += [f for f in mine if checks.get(f.relpath) is not None]
        return out

    def stop(self) -> None:
        """Ask every pair to stop (SIGINT/SIGTERM): running processes are killed, state kept."""
        self._stop.set()
