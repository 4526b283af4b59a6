"""Execute: run globus-url-copy batches on every node pair at once, verify, retry elsewhere.

Each node pair works through its batches in its own thread (L pairs × C files × P
streams in flight).  A batch is one long globus-url-copy process fed a list file of
percent-encoded URL pairs (no shell anywhere), with restart markers (-rst) for
transient faults and a dump file (-df) of what it could not move; its files are
verified at the destination and journaled as they finish (batchrun.py).  Files that
failed go to another pair in the next round (a dead server or an unreachable node then
costs one round, not the data); after the last round the remaining ones are journaled
as failed with the reason.
"""
from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable, Iterable
from urllib.parse import quote

from .batchrun import BatchRun
from .options import RunOptions
from .plan import Plan, PlannedFile
from .schedule import Batch, schedule
from .split import SplitSender, should_split, split_pairs
from .state import DONE, FAILED, SKIPPED, Journal, RunState
from .sync import LEVELS, level_of, unchanged
from .verify import pair_answers
from .workers import run_ticking

Batcher = Callable[[Plan, RunOptions, list[PlannedFile]], dict[int, Iterable[Batch]]]


def _last_batch_number(work_dir: str) -> int:
    try:
        names = os.listdir(work_dir)
    except OSError:
        return 0
    numbers = [int(n[6:11]) for n in names if n.startswith("batch-") and n[6:11].isdecimal()]
    return max(numbers, default=0)


class Executor:
    """Runs a plan.  ``batcher`` turns the files of a round into batches per node pair; the
    default is ``schedule`` (fixed C/P per size class).  The online search passes one whose
    per-pair iterables are generators: each batch is formed when the pair is ready for it,
    so C/P can change between batches."""

    def __init__(self, plan: Plan, options: RunOptions, run: RunState, journal: Journal,
                 work_dir: str, on_tick: Callable[[RunState], None] | None = None,
                 batcher: Batcher | None = None):
        self.plan, self.options, self.run, self.journal = plan, options, run, journal
        self.work_dir = work_dir
        self.on_tick = on_tick
        self.batcher = batcher or schedule
        self.third_party = not plan.source.local and not plan.dest.local
        self._seq = _last_batch_number(work_dir)   # a resumed run keeps earlier batches' files
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.full: str | None = None     # the destination's "no space"/"quota" reply, once seen

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
        self.run.count_results([(f.pair, f.size, result) for f, result, _ in results], final)

    def _tick(self) -> None:
        if self.run.publish() is not None and self.on_tick is not None:
            self.on_tick(self.run)

    def _pair_answers(self, pair: int) -> bool:
        return pair_answers(self.plan.source, self.plan.dest, self.plan.pairs[pair])

    # -- one pair's work in one round -----------------------------------------------
    def _work_pair(self, pair_index: int, batches: Iterable[Batch], attempt_no: int,
                   failed: dict[str, tuple[PlannedFile, str]]) -> None:
        pair = self.run.pairs[pair_index]
        for batch in batches:
            if self._stop.is_set():
                return
            if pair.state == "down":
                # A node stopped answering earlier in this round: these files go elsewhere
                # next round instead of each waiting out globus-url-copy's restarts.
                lost = {f.relpath: (f, "not attempted: a node of this pair does not answer")
                        for f in batch.files}
            else:
                lost = self._run_batch(batch, attempt_no)
            if lost:
                self._record_many([(f, FAILED, why) for f, why in lost.values()], attempt_no, False)
                with self._lock:
                    failed.update(lost)
            self._tick()
        self.run.pair_idle(pair_index)

    def _run_batch(self, batch: Batch, attempt_no: int) -> dict[str, tuple[PlannedFile, str]]:
        """Run one batch; its done files are journaled as they finish; returns the rest."""
        with self._lock:
            self._seq += 1
            stem = os.path.join(self.work_dir, f"batch-{self._seq:05d}")
        self.run.pair_working(batch.pair, streams=batch.streams, concurrency=batch.tuning.concurrency,
                              parallelism=batch.tuning.parallelism, pipelining=batch.tuning.pipelining)
        outcome = BatchRun(self.plan, batch, self.options, self.run, stem,
                           lambda results: self._record_many(results, attempt_no, False),
                           self._tick, self._stop, on_full=self._destination_full,
                           first_try=attempt_no == 0).run()
        # a node does not answer: retries go to other pairs
        down = outcome.node_down or bool(outcome.failed and not self._pair_answers(batch.pair))
        self.run.pair_stopped(batch.pair, down=down)
        return outcome.failed

    def _destination_full(self, reply: str) -> None:
        """Out of space or over quota at the destination: every re-send would meet the same,
        so the run stops (its running processes are killed) and says so once."""
        with self._lock:
            if self.full is None:
                self.full = " ".join(reply.split())[:300]
        self._stop.set()

    def _reassign(self, f: PlannedFile, tried: set[int]) -> PlannedFile:
        """Another pair for a retry: untried and not down if possible, least loaded first."""
        pairs = range(len(self.plan.pairs))
        healthy = [p for p in pairs if self.run.pairs[p].state != "down"]
        choices = [p for p in healthy if p not in tried] or healthy or list(pairs)
        target = min(choices, key=lambda p: (self.run.pairs[p].failures, p))
        return dataclasses.replace(f, pair=target)

    # -- the whole transfer -----------------------------------------------------------
    def execute(self, todo: list[PlannedFile]) -> dict[str, str]:
        """Move ``todo``; returns {relpath: reason} for every file that did not make it."""
        remote = not (self.plan.source.local and self.plan.dest.local)
        lost: dict[str, str] = {}
        for f in todo:
            if f.problem is not None:
                lost[f.relpath] = f"not sent: {f.problem}"
            elif remote and not (self.plan.source.nameable(f.relpath) and self.plan.dest.nameable(f.relpath)):
                lost[f.relpath] = ("name has bytes outside printable ASCII, which an anonymous GridFTP "
                                   "control channel drops; not sent (it would land under a different name)")
        if lost:
            self._record_many([(f, FAILED, lost[f.relpath]) for f in todo if f.relpath in lost], 0, True)
        pending = [f for f in todo if f.relpath not in lost]
        if self.options.sync and pending:
            pending = self._skip_identical(pending)
        ranged = [f for f in pending if should_split(self.plan, self.options, f)]
        if ranged:
            names = {f.relpath for f in ranged}
            pending = [f for f in pending if f.relpath not in names]
            lost.update(self._send_ranged(ranged))
        tried: dict[str, set[int]] = {}
        for attempt_no in range(self.options.retries + 1):
            if not pending or self._stop.is_set():
                break
            if attempt_no:
                self.run.add_retries(len(pending), [f.pair for f in pending])
            for f in pending:
                tried.setdefault(f.relpath, set()).add(f.pair)
            for p, state in enumerate(self.run.pairs):
                if state.state == "down" and self._pair_answers(p):
                    self.run.pair_idle(p, was="down")   # back: it may take its share again
            failed: dict[str, tuple[PlannedFile, str]] = {}
            threads = [threading.Thread(target=self._work_pair, args=(p, batches, attempt_no, failed),
                                        name=f"pair-{p}", daemon=True)
                       for p, batches in self.batcher(self.plan, self.options, pending).items() if batches]
            run_ticking(threads, self._tick)
            last = attempt_no == self.options.retries
            if last or self._stop.is_set():
                self._record_many([(f, FAILED, reason) for f, reason in failed.values()], attempt_no, True)
                lost.update({f.relpath: reason for f, reason in failed.values()})
                break
            pending = [self._reassign(f, tried[f.relpath]) for f, _ in failed.values()]
        if self.full is not None:
            lost.update(self._stopped_full(todo))
        self.journal.sync()
        return lost

    def _stopped_full(self, todo: list[PlannedFile]) -> dict[str, str]:
        """Every file not finished when the destination filled up fails with that one reason."""
        reason = f"not sent: the destination is full or over quota ({self.full}); the run stopped"
        results = self.journal.results()
        left = [f for f in todo if results.get(f.relpath, {}).get("result") not in (DONE, SKIPPED)]
        unrecorded = [f for f in left if not results.get(f.relpath, {}).get("final")]
        self._record_many([(f, FAILED, reason) for f in unrecorded], 0, True)
        return {f.relpath: reason for f in left}

    def _send_ranged(self, files: list[PlannedFile]) -> dict[str, str]:
        """--split: each file as byte ranges over every pair, largest first; retried whole."""
        lost: dict[str, str] = {}
        for f in sorted(files, key=lambda f: (-f.size, f.relpath)):
            for attempt_no in range(self.options.retries + 1):
                if self._stop.is_set():
                    return lost
                sender = SplitSender(self.plan, self.options, self.run, split_pairs(self.run),
                                     self._stop, self._tick)
                problem = sender.send(f)
                if problem is None:
                    self._record(f, DONE, "", attempt_no, True)
                    break
                if self._stop.is_set():
                    return lost
                final = attempt_no == self.options.retries
                self._record(f, FAILED, f"sent as byte ranges: {problem}", attempt_no, final)
                if final:
                    lost[f.relpath] = f"sent as byte ranges: {problem}"
                else:
                    self.run.add_retries(1)
        return lost

    def _skip_identical(self, files: list[PlannedFile]) -> list[PlannedFile]:
        """--sync: files the destination already holds (at the run's sync level) are skipped,
        not re-sent; one this run already tried and did not finish is always sent (what it
        left at the destination may be partial)."""
        level = level_of(self.options.sync_level, self.options.verify)
        tried = {r for r, e in self.journal.results().items() if e.get("result") == FAILED}
        tried |= self._listed_before({f.relpath for f in files})
        out = []
        for pair in range(len(self.plan.pairs)):
            mine = [f for f in files if f.pair == pair]
            if not mine:
                continue
            same = unchanged(self.plan.source, self.plan.dest, self.plan.pairs[pair],
                             [f for f in mine if f.relpath not in tried], level)
            why = f"already at the destination (sync level {level}: {LEVELS[level]})"
            self._record_many([(f, SKIPPED, why) for f in mine if f.relpath in same], 0, True)
            out += [f for f in mine if f.relpath not in same]
        return out

    def _listed_before(self, relpaths: set[str]) -> set[str]:
        """Those of ``relpaths`` an earlier batch of this run was given (its ``-f`` list): a
        killed session journals nothing for the files it was writing, which may sit at the
        destination partial, at full size with holes (parallel streams write out of order)."""
        by_path = {quote(self.plan.dest.path.rstrip("/") + "/" + r, safe="/"): r for r in relpaths}
        found: set[str] = set()
        try:
            names = [n for n in os.listdir(self.work_dir) if n.startswith("batch-") and n.endswith(".list")]
        except OSError:
            return found
        for name in names:
            try:
                with open(os.path.join(self.work_dir, name), encoding="utf-8") as f:
                    for line in f:
                        dst_url = line.rstrip("\n").rpartition(' "')[2].rstrip('"')
                        relpath = by_path.get("/" + dst_url.split("/", 3)[-1])
                        if relpath is not None:
                            found.add(relpath)
            except OSError:
                continue
        return found

    def stop(self) -> None:
        """Ask every pair to stop (SIGINT/SIGTERM): running processes are killed, state kept."""
        self._stop.set()
