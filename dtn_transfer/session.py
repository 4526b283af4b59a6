"""A run session: one dtn-transfer run from its creation (or ``--resume``) to its report.

Two callers run transfers, the command line and the lab's trials, and both need the same
wiring: the run's directory with its plan and options (kept for ``--resume``), live
state seeded from the journal of earlier attempts (so finished files are neither sent
again nor counted twice), the online search when ``--auto`` asked for it, a way to stop
(signals, a trial's time limit) that leaves a resumable run, and the report made from
the journal.  The session is that wiring, once; callers only say what to run and how to
show it.  Live counters change only through ``RunState``'s methods.
"""
from __future__ import annotations

import contextlib
import dataclasses
import ftplib
import json
import os
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pmdas.common.durable import sync_directory

from .execute import Executor
from .options import RunOptions
from .plan import Plan, PlanError, PlannedFile, size_bin
from .state import (
    DONE,
    SKIPPED,
    Journal,
    PairState,
    RunState,
    new_run_id,
    prune_runs,
    read_journal_entries,
    read_state,
    runs_dir,
    write_json_atomic,
)
from .verify import current_sizes

if TYPE_CHECKING:     # --auto's modules load only when a run searches (start-up time counts)
    from .run_search import Meter, Report, RunSearch, SearchOptions

# what a run keeps: its plan and options (for --resume), the search's options and its report
PLAN_FILE, OPTIONS_FILE = "plan.json", "settings.json"
SEARCH_FILE, SEARCH_REPORT = "auto-options.json", "auto.json"


class SessionError(Exception):
    """A run cannot be resumed: its directory or the files it keeps are missing or damaged."""


@dataclass(frozen=True, kw_only=True)
class RunReport:
    """How a run ended: counts, and every file that did not make it and why."""

    run_id: str
    state: str                        # completed, incomplete, interrupted
    files: dict
    bytes: dict
    throughput_average: float | None
    not_transferred: dict[str, str]   # relpath → reason
    search: dict | None = None        # what the online search chose and why (--auto)
    stopped_because: str | None = None   # why the run stopped early by itself (a full destination)

    @property
    def interrupted(self) -> bool:
        return self.state == "interrupted"

    def to_json(self) -> dict:
        doc = {"run": self.run_id, "state": self.state, "files": self.files, "bytes": self.bytes,
               "throughput_average": self.throughput_average,
               "not_transferred": [{"file": r, "reason": why}
                                   for r, why in sorted(self.not_transferred.items())]}
        if self.search is not None:
            doc["auto"] = self.search
        if self.stopped_because is not None:
            doc["stopped_because"] = self.stopped_because
        return doc


class RunSession:
    """One run: ``new`` or ``resume``, then ``run`` (once), ``stop`` from anywhere."""

    def __init__(self, *, run_id: str, directory: str, plan: Plan, options: RunOptions,
                 search: SearchOptions | None = None):
        self.run_id, self.directory, self.plan, self.options = run_id, directory, plan, options
        self.search = search     # None: fixed tuning per size class; set before ``run``
        self.journal = Journal(os.path.join(directory, "journal.jsonl"))
        self.state = RunState(run_id=run_id, directory=directory, source=str(plan.source),
                              dest=str(plan.dest), settings=options.to_json(), files_total=len(plan.files),
                              bytes_total=plan.total_bytes, pairs=_pair_states(plan))
        self._stopped = threading.Event()
        self._executor: Executor | None = None
        self._searcher: RunSearch | None = None

    @classmethod
    def new(cls, plan: Plan, options: RunOptions, *, search: SearchOptions | None = None,
            runs_base: str | None = None, run_id: str | None = None) -> RunSession:
        """A fresh run below ``runs_base`` (the state directory's runs by default), its plan and
        options saved for ``--resume``; the oldest finished runs beyond the kept number go."""
        base = runs_base or runs_dir()
        run_id = run_id or new_run_id()
        directory = os.path.join(base, run_id)
        os.makedirs(os.path.join(directory, "work"), exist_ok=True)
        sync_directory(base)     # the run's own name, before what it holds (fsynced below)
        write_json_atomic(os.path.join(directory, PLAN_FILE), plan.to_json(), durable=True)
        write_json_atomic(os.path.join(directory, OPTIONS_FILE), options.to_json(), durable=True)
        prune_runs(base)
        return cls(run_id=run_id, directory=directory, plan=plan, options=options, search=search)

    @classmethod
    def resume(cls, run_id: str, *, runs_base: str | None = None) -> RunSession:
        """An earlier run, with the plan, options and search options it kept."""
        directory = os.path.join(runs_base or runs_dir(), run_id)
        try:
            plan = Plan.from_json(_load(directory, PLAN_FILE))
            options = RunOptions.from_json(_load(directory, OPTIONS_FILE))
            searched = os.path.exists(os.path.join(directory, SEARCH_FILE))
            search = None
            if searched:
                from .run_search import SearchOptions
                search = SearchOptions.from_json(_load(directory, SEARCH_FILE))
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise SessionError(f"run {run_id} cannot be resumed: {exc}") from None
        return cls(run_id=run_id, directory=directory, plan=plan, options=options, search=search)

    # -- running ----------------------------------------------------------------------------
    def run(self, *, on_tick: Callable[[RunState], None] | None = None, say: Report | None = None,
            meter: Meter | None = None) -> RunReport:
        """Move every file earlier attempts did not finish; returns the report, also when stopped.

        ``on_tick`` sees the live state about once a second; ``say`` gets the search's
        decisions; ``meter`` counts throughput over time for the search's report (default:
        the run's own progress)."""
        work = os.path.join(self.directory, "work")
        os.makedirs(work, exist_ok=True)
        todo = self._seed()
        self.state.publish(force=True)
        if self.search is not None:
            self._searcher = self._start_search(say, meter)
        self._executor = Executor(self.plan, self.options, self.state, self.journal, work, on_tick=on_tick,
                                  batcher=self._searcher.batcher if self._searcher else None)
        if self._stopped.is_set():
            self._executor.stop()
        lost = self._executor.execute(todo)
        results = self.journal.results()
        missing = {f.relpath: "not attempted before the run was interrupted" for f in todo
                   if f.relpath not in results or (results[f.relpath]["result"] not in (DONE, SKIPPED)
                                                   and not results[f.relpath].get("final"))}
        missing.update(lost)
        full = self._executor.full
        stopped_because = f"the destination is full or over quota: {full}" if full else None
        ended = "interrupted" if self._stopped.is_set() else ("completed" if not missing else "incomplete")
        final = self.state.finish(ended)
        return RunReport(run_id=self.run_id, state=ended, files=final.get("files", {}),
                         bytes=final.get("bytes", {}),
                         throughput_average=final.get("throughput", {}).get("average"),
                         not_transferred=missing, stopped_because=stopped_because,
                         search=self._finish_search() if self._searcher else None)

    def stop(self) -> None:
        """Stop the run (any thread, a signal handler): processes are killed, the journal kept,
        so ``--resume`` continues; ``run`` then returns an interrupted report."""
        self._stopped.set()
        if self._executor is not None:
            self._executor.stop()

    @contextlib.contextmanager
    def stopping_on_signals(self, signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)
                            ) -> Iterator[None]:
        """While inside, these signals stop the run instead of killing the process (main thread)."""
        previous = {s: signal.signal(s, lambda _signum, _frame: self.stop()) for s in signals}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    def settled(self) -> bool:
        """Whether the online search has settled on every size class it met (False without one)."""
        return self._searcher is not None and self._searcher.settled()

    # -- inside ---------------------------------------------------------------------------------
    def _seed(self) -> list[PlannedFile]:
        """Count what the journal says earlier attempts finished; return the rest."""
        earlier = self.journal.results()
        finished = {r: e["result"] for r, e in earlier.items() if e.get("result") in (DONE, SKIPPED)}
        if earlier:
            finished = self._recheck(finished)
        kept = [f for f in self.plan.files if f.relpath in finished]
        self.state.seed(files_done=sum(finished[f.relpath] == DONE for f in kept),
                        files_skipped=sum(finished[f.relpath] == SKIPPED for f in kept),
                        bytes_done=sum(f.size for f in kept),
                        earlier=read_state(self.directory),   # None for a new run
                        journal=read_journal_entries(self.journal.path))
        return [f for f in self.plan.files if f.relpath not in finished]

    def _recheck(self, finished: dict[str, str]) -> dict[str, str]:
        """On ``--resume``, sizes are asked again instead of trusted: a file the journal has as
        finished whose destination no longer holds its size is sent again, and files still to
        send take the size their source has now (the plan, kept durably, is rewritten), so a
        file that changed since the listing is verified against what it is now."""
        real = [f for f in self.plan.files if f.problem is None]
        done = [f for f in real if f.relpath in finished]
        todo = [f for f in real if f.relpath not in finished]
        try:
            at_dest = current_sizes(self.plan.dest, [f.relpath for f in done]) if done else {}
            at_source = current_sizes(self.plan.source, [f.relpath for f in todo]) if todo else {}
        except (PlanError, OSError, EOFError, ftplib.Error):
            return finished      # nodes down: the transfer meets (and reports) the same
        gone = {f.relpath for f in done if at_dest.get(f.relpath) != f.size}
        changed = {f.relpath: n for f in todo if (n := at_source.get(f.relpath)) is not None and n != f.size}
        if changed:
            files = tuple(dataclasses.replace(f, size=changed[f.relpath], bin=size_bin(changed[f.relpath],
                                                                                      self.plan.bdp))
                          if f.relpath in changed else f for f in self.plan.files)
            self.plan = dataclasses.replace(self.plan, files=files)
            write_json_atomic(os.path.join(self.directory, PLAN_FILE), self.plan.to_json(), durable=True)
            self.state.files_total, self.state.bytes_total = len(files), self.plan.total_bytes
            self.state.pairs = _pair_states(self.plan)
        return {r: result for r, result in finished.items() if r not in gone}

    def _start_search(self, say: Report | None, meter: Meter | None) -> RunSearch:
        from .run_search import RunSearch
        assert self.search is not None
        kept = os.path.join(self.directory, SEARCH_FILE)
        if not os.path.exists(kept):       # a resumed run searches as it started
            write_json_atomic(kept, self.search.to_json(), durable=True)
        searcher = RunSearch(self.plan, self.state, self.search.path, probe_budget=self.search.probe_budget,
                             report=say)
        searcher.start_sampling(meter=meter)
        return searcher

    def _finish_search(self) -> dict:
        assert self._searcher is not None
        self._searcher.stop_sampling()
        summary = self._searcher.summary()
        write_json_atomic(os.path.join(self.directory, SEARCH_REPORT), summary)
        return summary


def _pair_states(plan: Plan) -> list[PairState]:
    pairs = []
    for i, (s, d) in enumerate(plan.pairs):
        mine = [f for f in plan.files if f.pair == i]
        pairs.append(PairState(source=s or "local", dest=d or "local", files_total=len(mine),
                               bytes_total=sum(f.size for f in mine)))
    return pairs


def _load(directory: str, name: str) -> dict:
    with open(os.path.join(directory, name), encoding="utf-8") as f:
        return json.load(f)
