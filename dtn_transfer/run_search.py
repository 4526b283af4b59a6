"""The online search of one run (``--auto``): batches formed on demand with the C/P the
search currently wants, and throughput over time.

``RunSearch.batcher`` plugs into ``Executor`` in place of ``schedule``.  Each node pair
gets a generator over its files (small size class first, as ``schedule`` does); when
the pair is ready for work, the generator asks the size class's ``OnlineSearch`` for
its current point and cuts a batch big enough to keep all C slots busy for about
``probe_seconds`` (once settled: as many files as ``schedule`` would batch, and at
least ``exploit_seconds`` of data).  When the executor comes back
for the next batch, the previous one has finished and been verified, so the bytes the
pair verified over that wall time are an honest sample of the setting's throughput,
process start and verification included: the run measures itself, it needs no meter
on the wire.  The search then moves, and the next batch runs with the new C/P:
switching happens between batches, never inside one.  Each size class starts from the
tuning model's point for the path figures it was given (``SearchOptions``).
"""
from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from .options import RunOptions
from .plan import BINS, Plan, PlannedFile
from .schedule import MAX_BATCH_BYTES, MAX_BATCH_FILES, Batch, batch_files
from .search import OnlineSearch, Point, Sample, steady_rate
from .state import PairState, RunState
from .tuning import BLOCK, STARTUP_ROUND_TRIPS, Limits, PathFigures, Tuning, model_tuning, path_figures

Report = Callable[[str], None]
PROBE_SHARE = 1 / 3     # of a class's expected time per pair, at most, is spent probing
SAMPLE_EVERY = 0.25     # s between samples of a pair's progress while a batch runs


@dataclass(frozen=True, kw_only=True)
class SearchOptions:
    """What ``--auto`` was given: the path's figures and seconds of probing per size class.
    Kept in the run (``auto-options.json``) so that ``--resume`` searches the same way."""

    path: PathFigures
    probe_budget: float = 30.0

    def to_json(self) -> dict:
        return {"path": self.path.to_json(), "probe_budget": self.probe_budget}

    @classmethod
    def from_json(cls, doc: dict) -> SearchOptions:
        """Read what a run kept.  Runs started before the figures were kept have only the
        user's bandwidth and stream rate; the rest is assumed as for a new run."""
        if isinstance(doc.get("path"), dict):
            path = PathFigures(**doc["path"])
        else:
            path = path_figures(doc.get("bandwidth"), doc.get("stream_rate"))
        return cls(path=path, probe_budget=float(doc.get("probe_budget", 30.0)))


@dataclass(frozen=True)
class Meter:
    """Where throughput over time is read: ``delivered()`` counts bytes since any fixed origin.

    By default the run's own progress; a caller that can see the wire (a lab's link
    counters) passes its own, and ``measures`` says which it was in the report."""

    measures: str
    delivered: Callable[[], int]


@dataclass
class _Progress:
    """A running batch's progress: where its pair's counters stood at its start, and samples."""

    started: float
    verified: int
    files: int
    samples: list[Sample] = field(default_factory=list)


class RunSearch:
    """Per size class a model's point and an ``OnlineSearch`` from it; batches cut at the
    current point; measured rates fed back; a timeline of throughput for the report."""

    def __init__(self, plan: Plan, run: RunState, path: PathFigures, *, limits: Limits = Limits(),
                 probe_seconds: float = 4.0, exploit_seconds: float = 15.0, probe_budget: float = 30.0,
                 report: Report | None = None, clock: Callable[[], float] = time.monotonic,
                 sample_every: float | None = SAMPLE_EVERY):
        self.plan, self.run, self.path, self.limits = plan, run, path, limits
        self.sample_every = sample_every     # None: no sampling thread (the caller calls ``sample``)
        self._progress: dict[int, _Progress] = {}     # per pair: its running batch's samples
        self.probe_seconds, self.exploit_seconds = probe_seconds, exploit_seconds
        self.probe_budget = probe_budget
        self.report = report
        self.clock = clock
        self.t0 = clock()
        self._lock = threading.Lock()
        self.models: dict[str, Tuning] = {}
        self.searches: dict[str, OnlineSearch] = {}
        self.timeline: list[dict] = []
        self._sampler: threading.Thread | None = None
        self.measured_at = ""
        self._stop = threading.Event()

    # -- per size class --------------------------------------------------------------
    def _search(self, size_class: str) -> OnlineSearch:
        with self._lock:
            if size_class not in self.searches:
                files = [f for f in self.plan.files if f.bin == size_class]
                pairs = max(1, len({f.pair for f in files}))
                per_pair = max(1, len(files) // pairs)
                model = model_tuning([f.size for f in files], per_pair, self.path, self.limits)
                self.models[size_class] = model
                avg = sum(f.size for f in files) / len(files)
                rate = self._model_rate(Point.of(model), avg)
                lasts = sum(f.size for f in files) / pairs / rate    # s per pair at the model's rate
                budget = min(self.probe_budget, PROBE_SHARE * lasts)
                search = OnlineSearch(
                    Point.of(model), limits=self.limits, now=self.now(), probe_budget=budget,
                    samples_needed=pairs, max_point=Point(max(1, per_pair), self.limits.max_parallelism),
                    probe_length=lambda point: self.probe_length(point, avg, per_pair),
                    ceiling=self.path.bandwidth)
                self.searches[size_class] = search
                self._say(f"auto [class {size_class}] model: {Point.of(model)}, pipelining "
                          f"{'on' if model.pipelining else 'off'} - {model.reason}")
                # A search learns something only if it measures the model's point and at least one
                # neighbour; each probe is a process start and at least one file per slot.
                point = search.current
                least = min(point.concurrency, per_pair)
                probe = self.probe_length(point, avg, per_pair) + STARTUP_ROUND_TRIPS * self.path.rtt
                if 2 * probe > budget:
                    limit = (f"the {budget:.0f}s probe budget" if budget >= self.probe_budget else
                             f"{PROBE_SHARE:.0%} of the class's ~{lasts:.0f}s per pair ({budget:.0f}s)")
                    files_word = "file" if least == 1 else "files"
                    decision = search.settle_now(
                        self.now(), f"two probes (each at least {least} {files_word} and a process start, "
                                    f"~{probe:.0f}s) take more than {limit}: keeping the model's point")
                    self._say(f"auto [class {size_class}] {decision.point}: settle: {decision.why}")
            return self.searches[size_class]

    def now(self) -> float:
        return self.clock() - self.t0

    def settled(self) -> bool:
        """Whether every size class met so far (at least one) has settled on a point."""
        with self._lock:
            return bool(self.searches) and all(s.settled for s in self.searches.values())

    def _say(self, text: str) -> None:
        if self.report is not None:
            self.report(text)

    def expected_rate(self, size_class: str, point: Point, avg_size: float) -> float:
        """Bytes/s per pair: measured for this point if known, else what the path model predicts."""
        probe = self.searches[size_class].probes.get(point)
        if probe is not None and probe.rates:
            return probe.rate
        return self._model_rate(point, avg_size)

    def _model_rate(self, point: Point, avg_size: float) -> float:
        """Bytes/s per pair the path's figures predict at ``point`` (streams a file can use)."""
        streams = point.concurrency * min(point.parallelism, max(1, int(avg_size // BLOCK) + 1))
        return min(self.path.bandwidth, streams * self.path.stream_rate)

    def probe_length(self, point: Point, avg_size: float, files_per_pair: int) -> float:
        """Seconds a probe batch at ``point`` lasts at the model's rate: ``probe_seconds``, or
        longer when one file per slot is more data than that (as ``_pair_batches`` cuts it)."""
        rate = self._model_rate(point, avg_size)
        return max(self.probe_seconds, min(point.concurrency, files_per_pair) * avg_size / rate)

    # -- batches ----------------------------------------------------------------------
    def batcher(self, plan: Plan, options: RunOptions | None, files: list[PlannedFile]
                ) -> dict[int, Iterator[Batch]]:
        """Executor hook: one generator of batches per node pair."""
        order = {b: i for i, b in enumerate(BINS)}
        by_pair: dict[int, list[PlannedFile]] = {}
        for f in sorted(files, key=lambda f: (order[f.bin], f.relpath)):
            by_pair.setdefault(f.pair, []).append(f)
        return {pair: self._pair_batches(pair, queue) for pair, queue in by_pair.items()}

    def _pair_batches(self, pair: int, files: list[PlannedFile]) -> Iterator[Batch]:
        queue = deque(files)
        while queue:
            size_class = queue[0].bin
            search = self._search(size_class)
            with self._lock:
                point, settled = search.current, search.settled
                pipelining = self.models[size_class].pipelining
            same = [f for f in queue if f.bin == size_class]
            avg = sum(f.size for f in same) / len(same)
            target = self.expected_rate(size_class, point, avg) * (
                self.exploit_seconds if settled else self.probe_seconds)
            # Settled: batches as long as ``schedule`` makes them (few boundaries, where slots
            # idle while the last files finish); probing: about probe_seconds each.
            least = batch_files(point.concurrency) if settled else point.concurrency
            chosen: list[PlannedFile] = []
            nbytes = 0
            while queue and queue[0].bin == size_class and len(chosen) < MAX_BATCH_FILES and (
                    len(chosen) < least or nbytes < target) and nbytes < MAX_BATCH_BYTES:
                f = queue.popleft()
                chosen.append(f)
                nbytes += f.size
            batch = Batch(pair=pair, bin=size_class, files=tuple(chosen),
                          tuning=Tuning(concurrency=point.concurrency, parallelism=point.parallelism,
                                        pipelining=pipelining))
            pair_state = self.run.pairs[pair]
            before, started = pair_state.bytes_done, self.clock()
            self._watch_progress(pair, pair_state)
            yield batch
            seconds = max(1e-3, self.clock() - started)
            samples = self._stop_watching(pair)
            whole = (pair_state.bytes_done - before) / seconds
            steady = steady_rate(samples, files=len(chosen), slots=point.concurrency, rtt=self.path.rtt)
            rate = whole if steady is None else steady
            self._say(f"auto [class {size_class}] batch {point}: {len(chosen)} files in {seconds:.1f}s, "
                      f"{whole / 2**20:.2f} MiB/s over the batch, "
                      + ("no steady stretch" if steady is None else f"{steady / 2**20:.2f} MiB/s steady"))
            with self._lock:
                made = search.record(point, rate, self.now())
                following = str(search.current)
            settling = any(d.settles for d in made)
            for decision in made:
                verb = decision.action if settling else f"{decision.action}, next {following}"
                self._say(f"auto [class {size_class}] t={decision.t:5.1f}s {decision.point}: "
                          f"{decision.rate / 2**20:6.2f} MiB/s per pair -> {verb}: {decision.why}")

    # -- a batch's progress (for its steady rate) --------------------------------------------
    def _watch_progress(self, pair: int, state: PairState) -> None:
        """Sample the pair's progress while its batch runs (a thread, unless ``sample_every`` is None)."""
        watch = _Progress(self.clock(), state.bytes_done, state.files_done)
        with self._lock:
            self._progress[pair] = watch
        self.sample(pair)
        if self.sample_every is None:
            return

        def loop() -> None:     # until this batch ends (the pair's next batch has a thread of its own)
            while self._progress.get(pair) is watch and not self._stop.wait(self.sample_every):
                self.sample(pair)
        threading.Thread(target=loop, name=f"auto-progress-{pair}", daemon=True).start()

    def sample(self, pair: int) -> None:
        """One sample of a pair's running batch (counted from its start)."""
        state = self.run.pairs[pair]
        with self._lock:
            watch = self._progress.get(pair)
            if watch is not None:
                watch.samples.append(Sample(self.clock() - watch.started, state.bytes_done - watch.verified,
                                            state.inflight_bytes, state.files_done - watch.files))

    def _stop_watching(self, pair: int) -> list[Sample]:
        self.sample(pair)
        with self._lock:
            watch = self._progress.pop(pair, None)
        return watch.samples if watch is not None else []

    # -- throughput over time -------------------------------------------------------------
    def start_sampling(self, interval: float = 1.0, meter: Meter | None = None) -> None:
        """Throughput over time, every ``interval`` s, as ``meter`` counts it; by default the
        run's bytes (verified at batch ends plus globus-url-copy's progress markers and
        destination sizes, so it moves in steps)."""
        meter = meter or Meter("verified bytes and progress markers", self.run.moved)
        self.measured_at = meter.measures
        count = meter.delivered
        base = count()

        def loop() -> None:
            last = (self.now(), 0)
            while not self._stop.wait(interval):
                now, moved = self.now(), count() - base
                with self._lock:
                    points = {b: str(s.current) for b, s in self.searches.items()}
                self.timeline.append({"t": round(now, 2), "bytes": moved,
                                      "rate": max(0.0, (moved - last[1]) / max(1e-9, now - last[0])),
                                      "settings": points})
                last = (now, moved)
        self._sampler = threading.Thread(target=loop, name="auto-sampler", daemon=True)
        self._sampler.start()

    def stop_sampling(self) -> None:
        self._stop.set()
        if self._sampler is not None:
            self._sampler.join(2.0)

    def summary(self) -> dict:
        """What was chosen and why, per size class, and throughput over time (JSON-able)."""
        with self._lock:
            classes = {}
            for size_class, search in self.searches.items():
                model = self.models[size_class]
                final = search.current
                classes[size_class] = {
                    "model": {"concurrency": model.concurrency, "parallelism": model.parallelism,
                              "pipelining": model.pipelining, "reason": model.reason},
                    "final": {"concurrency": final.concurrency, "parallelism": final.parallelism,
                              "settled": search.settled,
                              "rate_per_pair": search.probes[final].rate if final in search.probes else None},
                    "probing_seconds": round(search.probing_time, 2),
                    "points_tried": len(search.probes),
                    "decisions": [d.to_json() for d in search.decisions]}
            return {"path": self.path.to_json(),
                    "limits": {"max_concurrency": self.limits.max_concurrency,
                               "max_parallelism": self.limits.max_parallelism,
                               "max_streams": self.limits.max_streams},
                    "classes": classes, "timeline": list(self.timeline),
                    "timeline_measured_at": self.measured_at}
