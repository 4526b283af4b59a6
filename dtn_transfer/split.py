"""Byte-range splitting: one very large file sent as ranges over every node pair at once.

A file is otherwise one transfer on one node pair, so a data set that is mostly one huge
file uses one DTN of each cluster however many there are.  With ``--split SIZE`` a file
larger than SIZE is cut into ranges of about SIZE; each range is one globus-url-copy
process (``-off``/``-len``: the source reads, and the destination writes, only that
range, at its own offset) on whichever node pair is free next, so every pair works on
the file.  Nodes of a cluster share a file system, which is what makes this possible.

The destination file is deleted first: ranges never truncate, so a longer stale file
would otherwise keep its tail.  With --verify each range is hashed on both sides as it
lands (CKSM with its offset and length) and sent again if it differs, so a bad range
costs one range, not the file; the file counts as done when every range has landed
(and matched) and the destination has its whole size.  A range
that fails is retried on another pair; the file fails when a range has failed on every
pair or ``retries`` times.
"""
from __future__ import annotations

import ftplib
import math
import subprocess
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from .batchrun import GLOBUS_URL_COPY
from .children import start
from .gsi import data_channel_flags
from .options import RunOptions
from .plan import LARGE, Plan, PlanError, PlannedFile, ftp_connect, safe_relpath
from .state import RunState
from .tuning import default_tuning
from .verify import Checker, pair_answers
from .workers import run_ticking

MIB = 1 << 20


def ranges(size: int, piece: int) -> list[tuple[int, int]]:
    """(offset, length) pieces covering ``size`` bytes exactly: at least two, about ``piece``
    bytes each, whole MiB where possible (aligned writes)."""
    if size <= 0 or piece <= 0:
        raise ValueError("size and piece must be positive")
    count = max(2, math.ceil(size / piece))
    step = math.ceil(size / count)
    if step > MIB:
        step = math.ceil(step / MIB) * MIB
    return [(offset, min(step, size - offset)) for offset in range(0, size, step)]


def range_argv(options: RunOptions, src_url: str, dst_url: str, offset: int, length: int) -> list[str]:
    argv = [GLOBUS_URL_COPY, "-cd", "-rst", "-rst-retries", "1", "-rst-interval", "1",
            "-stall-timeout", str(options.stall_timeout),
            "-p", str(default_tuning(LARGE, options, third_party=True).parallelism)]
    if options.fast:
        argv.append("-fast")
    if options.tcp_buffer:
        argv += ["-tcp-bs", str(options.tcp_buffer)]
    argv += data_channel_flags(options.data_channel)
    return argv + ["-off", str(offset), "-len", str(length), src_url, dst_url]


def should_split(plan: Plan, options: RunOptions, f: PlannedFile) -> bool:
    """Ranges need GridFTP nodes on both sides (partial transfers of ftp URLs)."""
    return options.split is not None and not plan.source.local and not plan.dest.local \
        and f.size > options.split


def _delete_at_destination(plan: Plan, nodes: list[str], relpath: str) -> None:
    """Remove the destination file (any node of the cluster will do: they share a file system)."""
    if not safe_relpath(relpath):    # plans are checked when built; a hand-edited one is not
        raise PlanError(f"refusing to delete {relpath!r}: it would leave the destination tree")
    path = (plan.dest.path.rstrip("/") + "/" + relpath).encode("utf-8", "surrogateescape").decode("latin-1")
    errors = []
    for node in nodes:
        try:
            ftp = ftp_connect(node, scheme=plan.dest.scheme)
        except PlanError as exc:
            errors.append(str(exc))
            continue
        try:
            ftp.delete(path)
        except ftplib.error_perm:
            pass                  # not there yet
        finally:
            try:
                ftp.quit()
            except (OSError, ftplib.Error):
                ftp.close()
        return
    raise PlanError("; ".join(errors) or "no destination node")


class SplitSender:
    """Sends one file as ranges over the usable node pairs; ``send`` returns None when the
    destination has all of it, else the reason it does not."""

    def __init__(self, plan: Plan, options: RunOptions, run: RunState, pairs: list[int],
                 stop: threading.Event, tick: Callable[[], None]):
        self.plan, self.options, self.run, self.pairs = plan, options, run, pairs
        self.stop, self.tick = stop, tick
        self._lock = threading.Lock()

    def send(self, f: PlannedFile) -> str | None:
        if not self.pairs:
            return "no node pair answers"
        try:
            nodes = [self.plan.pairs[p][1] for p in self.pairs]
            _delete_at_destination(self.plan, [n for n in dict.fromkeys(nodes) if n], f.relpath)
        except (PlanError, OSError, EOFError, ftplib.Error) as exc:
            return f"could not clear the destination before sending ranges: {exc}"
        pieces = ranges(f.size, self.options.split or f.size)
        # each range has a home pair (round robin), so every pair starts at once; a pair
        # whose own ranges are done takes the others' (a slow pair does not hold the file up)
        job = _Job(deque((offset, length, frozenset(), self.pairs[k % len(self.pairs)])
                         for k, (offset, length) in enumerate(pieces)))
        threads = [threading.Thread(target=self._work, args=(pair, f, job), daemon=True,
                                    name=f"split-{pair}") for pair in self.pairs]
        run_ticking(threads, self.tick)
        for pair in self.pairs:
            self.run.set_inflight(pair, 0)
        if job.failed:
            return job.failed[-1]
        if job.done != len(pieces):   # never trust sizes alone here: a missing range leaves a hole
            return "interrupted before every range was sent"
        first = self.plan.pairs[self.pairs[0]]
        # with --verify each range was hashed on both sides as it landed: the whole file is
        # not hashed again (one read per side), only its size checked (no stale tail)
        checker = Checker(self.plan.source, self.plan.dest, first, False)
        try:
            problem = checker.verify([f]).get(f.relpath, "not verified")
            if problem is None and self.options.preserve_mtime:
                problem = checker.preserve_mtimes([f.relpath]).get(f.relpath)
            return problem
        finally:
            checker.close()

    def _take(self, pair: int, job: _Job) -> tuple[int, int, frozenset, int] | None:
        """The next range for this pair (its own first) that it has not failed; None when
        there is nothing left for it."""
        while not self.stop.is_set():
            with self._lock:
                if job.failed:
                    return None
                mine = [item for item in job.todo if pair not in item[2]]
                pick = next((item for item in mine if item[3] == pair), mine[0] if mine else None)
                if pick is not None:
                    job.todo.remove(pick)
                    job.in_flight += 1
                    return pick
                if not job.in_flight:
                    return None
            self.stop.wait(0.1)    # a range in flight elsewhere may fail and come back
        return None

    def _work(self, pair: int, f: PlannedFile, job: _Job) -> None:
        src_node, dst_node = self.plan.pairs[pair]
        src_url, dst_url = self.plan.source.url(src_node, f.relpath), self.plan.dest.url(dst_node, f.relpath)
        streams = default_tuning(LARGE, self.options, third_party=True).parallelism
        try:
            while (pick := self._take(pair, job)) is not None:
                offset, length, tried, home = pick
                self.run.pair_working(pair, streams=streams)
                ok = self._run(range_argv(self.options, src_url, dst_url, offset, length))
                if ok and self.options.verify:
                    ok = self._range_matches(pair, f, offset, length)
                with self._lock:
                    job.in_flight -= 1
                    if ok:
                        job.done += 1
                    else:
                        tried = tried | {pair}
                        if len(tried) >= min(len(self.pairs), self.options.retries + 1):
                            job.failed.append(f"range {offset}+{length} failed on {len(tried)} node pair(s)")
                        else:
                            job.todo.append((offset, length, tried, home))
                if ok:
                    self.run.add_inflight(pair, length)
                elif not pair_answers(self.plan.source, self.plan.dest, self.plan.pairs[pair]):
                    self.run.pair_stopped(pair, down=True)   # leave the remaining ranges to the others
                    return
        finally:
            self.run.pair_stopped(pair)

    def _range_matches(self, pair: int, f: PlannedFile, offset: int, length: int) -> bool:
        """--verify: the range's MD5 (CKSM with offset and length) on both nodes of the pair."""
        checker = Checker(self.plan.source, self.plan.dest, self.plan.pairs[pair], True)
        try:
            return checker.compare_ranges(f.relpath, [(offset, length)]) is None
        finally:
            checker.close()

    def _run(self, argv: list[str]) -> bool:
        proc = start(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while proc.poll() is None:
            if self.stop.wait(0.2):
                proc.kill()
        return proc.wait() == 0 and not self.stop.is_set()


@dataclass
class _Job:
    todo: deque            # (offset, length, pairs that failed it, home pair)
    in_flight: int = 0
    done: int = 0
    failed: list[str] = field(default_factory=list)


def split_pairs(run: RunState) -> list[int]:
    """Pairs that may carry ranges: every pair not known to be down."""
    return [i for i, p in enumerate(run.pairs) if p.state != "down"] or list(range(len(run.pairs)))
