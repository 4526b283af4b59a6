"""Schedule: turn a plan into globus-url-copy batches, each with its tuning (C, P, pipelining).

One batch = one globus-url-copy process on one node pair, for one size class.  Files are
journaled as they finish whatever the batch length (batchrun.py), so batches are long:
each process start costs a fork and a login per concurrency slot on both servers, and
each batch end leaves slots idle while its last files drain.  They are still bounded,
so that files which failed wait at most one batch for their retry on another pair.
"""
from __future__ import annotations

from dataclasses import dataclass

from .options import RunOptions
from .plan import LARGE, MEDIUM, SMALL, Plan, PlannedFile
from .tuning import Tuning, default_tuning

MAX_BATCH_FILES = 16384
MIN_BATCH_FILES = 1024
FILES_PER_SLOT = 256   # a batch holds this many files per concurrency slot (within the bounds)
MAX_BATCH_BYTES = 64 * 1024 ** 3


@dataclass(frozen=True, kw_only=True)
class Batch:
    """Files of one size class for one node pair, and the tuning their process runs with."""

    pair: int
    bin: str
    files: tuple[PlannedFile, ...]
    tuning: Tuning

    @property
    def nbytes(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def streams(self) -> int:
        """TCP data streams this batch keeps open at most: files in flight × streams each."""
        return min(self.tuning.concurrency, len(self.files)) * self.tuning.parallelism


def batch_files(concurrency: int) -> int:
    """Files per batch: many per slot, so process starts and batch tails are rare."""
    return max(MIN_BATCH_FILES, min(MAX_BATCH_FILES, FILES_PER_SLOT * concurrency))


def _chunks(files: list[PlannedFile], max_files: int) -> list[tuple[PlannedFile, ...]]:
    out: list[tuple[PlannedFile, ...]] = []
    current: list[PlannedFile] = []
    current_bytes = 0
    for f in files:
        if current and (len(current) >= max_files or current_bytes + f.size > MAX_BATCH_BYTES):
            out.append(tuple(current))
            current, current_bytes = [], 0
        current.append(f)
        current_bytes += f.size
    if current:
        out.append(tuple(current))
    return out


def schedule(plan: Plan, options: RunOptions, files: list[PlannedFile] | None = None
             ) -> dict[int, list[Batch]]:
    """Batches per node pair, small files first (they finish and report early)."""
    third_party = not plan.source.local and not plan.dest.local
    todo = list(plan.files if files is None else files)
    by_pair: dict[int, list[Batch]] = {p: [] for p in range(len(plan.pairs))}
    for size_class in (SMALL, MEDIUM, LARGE):
        tuning = default_tuning(size_class, options, third_party)
        for pair in by_pair:
            selected = [f for f in todo if f.pair == pair and f.bin == size_class]
            for chunk in _chunks(selected, batch_files(tuning.concurrency)):
                by_pair[pair].append(Batch(pair=pair, bin=size_class, files=chunk, tuning=tuning))
    return by_pair
