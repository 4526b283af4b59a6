"""The online search (``--auto``, in the manner of Falcon): C and P adjusted between batches
from the throughput the batches measured.

Each setting is tried on real batches, scored by a utility
``throughput × (1 - stream_cost) ** log2(C × P)`` that rewards throughput and charges for
streams, so the search stops adding streams once they buy less than ``stream_cost`` per
doubling.  From the model's point (``tuning.model_tuning``) it polls the lattice
neighbours (C×2, P×2; then C traded for P at equal streams, C×2 P/2 and C/2 P×2, since
throughput often lies on a ridge C×P ≈ constant; then C/2, P/2; the direction that
helped last time first) and moves as soon as one beats the current point by
``min_gain``; when none does, or when the next probe would end after ``probe_budget``
seconds, it settles on the point it stands on.  The next probe is taken to last as long
as the last one, longer by the difference of their batch lengths (``probe_length``, from
the caller) if it holds more: a probe holds at least one file per slot, so on the
testbed's 3 MiB files C=16 takes ~13 s where C=8 takes ~6 s (taking it to last as long
as the last one let it end at 37 s of a 30 s budget).  Never shorter: points below the
model's rate (C=2 P=32 there: 2.85 of 4 MiB/s) take longer than their batch length says.
``min_gain`` is set above the noise of a single batch's rate (±5% on the testbed), so
the search moves on evidence, not luck.  When a point already moves the pair's whole
bandwidth (``ceiling``, the path's figure) within ``min_gain``, no neighbour can beat it
by that much, so the search settles there instead of spending its budget.  While it
exploits, a sustained drop of ``drift`` re-opens a short search.

A probe is scored by its **steady rate** (``steady_rate``): the bytes its pair moved while
every slot had a file, after the data channels' ramp and before the batch's tail, not the
batch's bytes over its wall time.  Every batch is a new globus-url-copy process that logs
in before any byte moves (~3.5 s of a ~10 s probe at 130 ms with GSI) and ends with slots
idle while its last files drain; measured over the whole batch, a point that filled the
link for 24 s (large files, 130 ms) scored 82% of it, and medium-file probes ~55%.  Those
costs belong to the batch, not to the point: the settled run pays them once.

It stays within ``tuning.Limits``.  Pure logic, no I/O; time is passed in.  How batches
are cut for it and measured is ``run_search.py``.
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from .tuning import Limits, Tuning


@dataclass(frozen=True)
class Point:
    """A place on the search's lattice: C files in flight, P streams each."""

    concurrency: int
    parallelism: int

    @classmethod
    def of(cls, tuning: Tuning) -> Point:
        return cls(tuning.concurrency, tuning.parallelism)

    @property
    def streams(self) -> int:
        return self.concurrency * self.parallelism

    def __str__(self) -> str:
        return f"C={self.concurrency} P={self.parallelism}"


def utility(rate: float, point: Point, stream_cost: float) -> float:
    return rate * (1.0 - stream_cost) ** math.log2(point.streams)


# Round trips a batch's data channels take to reach their window after the first bytes land:
# connect, authenticate (DCAU), slow start, for every stream of the first files.  Measured on
# the delay line at 130 ms: 2.5-3 s from the first file started to the link's full rate.
RAMP_ROUND_TRIPS = 15
MIN_RAMP = 1.0           # s: without an RTT (or a short one), still skip the first second
MIN_STEADY = 2.0         # s: a shorter stretch is mostly sampling steps (sizes are polled each second)


class Sample(NamedTuple):
    """A running batch's progress on its pair, counted from the batch's start."""

    t: float          # seconds
    verified: int     # bytes of files verified at the destination
    inflight: int     # bytes of files at the destination not verified yet (polled sizes)
    files: int        # files verified


def steady_rate(samples: list[Sample], *, files: int, slots: int, rtt: float = 0.0) -> float | None:
    """Bytes/s a batch moved once it had started; None when nothing moved.

    The process's start (logins: no byte moves) is never counted.  When the batch had a
    stretch of at least ``MIN_STEADY`` seconds with every slot busy, the rate is that
    stretch's: from a ramp (``RAMP_ROUND_TRIPS`` round trips, at least ``MIN_RAMP``, at most
    half the stretch) after the first bytes landed, to where the tail begins (fewer files
    left than slots: the last ones drain on fewer streams), counting the bytes at the
    destination, verified or not.  Else the batch's bytes over the time from its first
    bytes to its end."""
    if len(samples) < 2 or files <= 0:
        return None
    moving = next((s.t for s in samples if s.verified + s.inflight > 0), None)
    if moving is None:
        return None
    tail_from = files - min(slots, files) + 1          # files verified when the tail begins
    end = next((s.t for s in samples if s.files >= tail_from), samples[-1].t)
    start = moving + min(max(MIN_RAMP, RAMP_ROUND_TRIPS * rtt), (end - moving) / 2)
    if end - start >= MIN_STEADY:
        return (_moved_at(samples, end) - _moved_at(samples, start)) / (end - start)
    last = samples[-1]
    return last.verified / (last.t - moving) if last.t - moving >= MIN_STEADY else None


def _moved_at(samples: list[Sample], t: float) -> float:
    """Bytes at the destination at ``t``, interpolated between the samples around it."""
    before = [s for s in samples if s.t <= t]
    after = [s for s in samples if s.t >= t]
    if not before or not after:
        edge = before[-1] if before else after[0]
        return float(edge.verified + edge.inflight)
    s0, s1 = before[-1], after[0]
    b0, b1 = s0.verified + s0.inflight, s1.verified + s1.inflight
    return float(b0) if s1.t <= s0.t else b0 + (b1 - b0) * (t - s0.t) / (s1.t - s0.t)


@dataclass
class Probe:
    """The batches measured at one point: their per-pair rates, and when the first began."""

    point: Point
    rates: list[float] = field(default_factory=list)     # bytes/s per pair, one per batch
    started: float = 0.0

    @property
    def rate(self) -> float:
        return statistics.median(self.rates) if self.rates else 0.0


@dataclass(kw_only=True)
class Decision:
    """One step of the search, for the report: where it stood, what it measured, what it did."""

    t: float
    point: Point
    rate: float
    utility: float
    action: str      # "start", "probe", "move", "settle", "reprobe"
    why: str

    @property
    def settles(self) -> bool:
        return self.action == "settle"

    def to_json(self) -> dict:
        return {"t": round(self.t, 3), "concurrency": self.point.concurrency,
                "parallelism": self.point.parallelism, "rate": self.rate, "utility": self.utility,
                "action": self.action, "why": self.why}


class OnlineSearch:
    """Compass search on the (log2 C, log2 P) lattice with a Falcon-like utility."""

    def __init__(self, start: Point, *, limits: Limits = Limits(), now: float = 0.0,
                 probe_budget: float = 30.0, stream_cost: float = 0.02, min_gain: float = 0.06,
                 drift: float = 0.25, samples_needed: int = 1, max_point: Point | None = None,
                 probe_length: Callable[[Point], float] | None = None, ceiling: float | None = None):
        self.limits, self.budget, self.stream_cost = limits, probe_budget, stream_cost
        self.ceiling = ceiling             # bytes/s the pair cannot exceed (the path's bandwidth), if known
        self.probe_length = probe_length   # seconds a probe at a point should last (None: all alike)
        self.min_gain, self.drift, self.samples_needed = min_gain, drift, samples_needed
        self.max_point = max_point   # e.g. C cannot exceed the files a pair has
        self.started = now
        self.probes: dict[Point, Probe] = {}
        self.base: Point | None = None
        self.current = self._fit(start)
        self.pending: list[Point] = []
        self.last_move: tuple[int, int] = (0, 0)
        self.settled = False
        self.probing_time = 0.0
        self.decisions: list[Decision] = [Decision(t=now, point=self.current, rate=0.0, utility=0.0,
                                                    action="start", why="model's point")]
        self._exploit_rates: list[float] = []
        self.probes[self.current] = Probe(self.current, started=now)

    # -- lattice --------------------------------------------------------------------
    def _fit(self, point: Point) -> Point:
        c, p = point.concurrency, point.parallelism
        if self.max_point is not None:
            c = min(c, self.max_point.concurrency)
            p = min(p, self.max_point.parallelism)
        return Point(*self.limits.clamp(c, p))

    def _neighbours(self, base: Point) -> list[Point]:
        # more streams (C×2, P×2), the same streams traded between files and streams
        # (C×2 P/2, C/2 P×2: throughput often lies on a ridge C×P ≈ constant), fewer streams
        moves = [(1, 0), (0, 1), (1, -1), (-1, 1), (-1, 0), (0, -1)]
        if self.last_move != (0, 0):       # momentum: repeat what helped, then the rest
            if self.last_move in moves:
                moves.remove(self.last_move)
            moves.insert(0, self.last_move)
        out = []
        for dc, dp in moves:
            c = base.concurrency * 2 ** dc if dc >= 0 else base.concurrency // 2
            p = base.parallelism * 2 ** dp if dp >= 0 else base.parallelism // 2
            cand = self._fit(Point(max(1, c), max(1, p)))
            if cand != base and cand not in out and cand not in self.probes:
                out.append(cand)
        return out

    def _score(self, point: Point) -> float:
        probe = self.probes.get(point)
        return utility(probe.rate, point, self.stream_cost) if probe and probe.rates else 0.0

    # -- feeding ---------------------------------------------------------------------
    def record(self, point: Point, rate: float, now: float) -> list[Decision]:
        """A batch run at ``point`` moved ``rate`` bytes/s on its pair; returns decisions taken."""
        if self.settled:
            if point == self.current:
                return self._watch(rate, now)
            return []
        probe = self.probes.setdefault(point, Probe(point, started=now))
        probe.rates.append(rate)
        if point != self.current or len(probe.rates) < self.samples_needed:
            return []
        return self._step(now)

    def _step(self, now: float) -> list[Decision]:
        current = self.current
        score = self._score(current)
        rate = self.probes[current].rate
        if self.base is None:
            self.base = current
            self.pending = self._neighbours(current)
            action, why = "probe", "measured the model's point"
        elif score > self._score(self.base) * (1 + self.min_gain):
            b = self.base
            self.last_move = (_step_dir(b.concurrency, current.concurrency), _step_dir(b.parallelism,
                                                                                      current.parallelism))
            self.base = current
            self.pending = self._neighbours(current)
            action, why = "move", f"utility {score / max(self._score(b), 1e-9):.2f}x of {b}"
        else:
            action, why = "probe", (f"no better than {self.base} "
                                    f"(utility {score:.0f} vs {self._score(self.base):.0f})")
        self.probing_time = now - self.started
        made = [Decision(t=now, point=current, rate=rate, utility=score, action=action, why=why)]
        took = now - self.probes[current].started
        next_takes = took
        if self.pending and self.probe_length is not None:   # longer if it holds more data
            next_takes = max(took, took + self.probe_length(self.pending[0]) - self.probe_length(current))
        full = self._fills_the_path(self.base)
        if not self.pending or full or self.probing_time + next_takes > self.budget:
            base = self.base
            reason = full or ("no neighbour is better" if not self.pending else
                              f"another probe would overrun the {self.budget:.0f}s budget")
            self.current, self.settled = base, True
            made.append(Decision(t=now, point=base, rate=self.probes[base].rate, utility=self._score(base),
                                 action="settle", why=f"{reason}; {len(self.probes)} points tried"))
        else:
            self.current = self.pending.pop(0)
            self.probes.setdefault(self.current, Probe(self.current, started=now))
        self.decisions += made
        return made

    def _fills_the_path(self, point: Point) -> str:
        """Why no neighbour can gain ``min_gain`` on ``point`` ("" when one might)."""
        rate = self.probes[point].rate
        if not self.ceiling or rate * (1 + self.min_gain) < self.ceiling:
            return ""
        return (f"{point} moves {rate / self.ceiling:.0%} of the pair's {self.ceiling / 2**20:.1f} MiB/s: "
                f"no setting can gain {self.min_gain:.0%}")

    def settle_now(self, now: float, why: str) -> Decision:
        """Keep the current point without probing (e.g. one batch would outlast the budget)."""
        self.base, self.settled = self.current, True
        self.decisions.append(Decision(t=now, point=self.current, rate=0.0, utility=0.0, action="settle",
                                       why=why))
        return self.decisions[-1]

    def _watch(self, rate: float, now: float) -> list[Decision]:
        """Exploiting: re-open a short search if throughput stays well below what was measured."""
        self._exploit_rates.append(rate)
        expected = self.probes[self.current].rate
        recent = self._exploit_rates[-3:]
        if len(recent) == 3 and expected > 0 and max(recent) < (1 - self.drift) * expected:
            self.settled = False
            self.started, self.budget = now, min(self.budget, 15.0)
            base = self.current
            self.probes = {base: Probe(base, rates=list(recent), started=now)}
            self.base = base
            self.pending = self._neighbours(base)
            self._exploit_rates = []
            why = f"throughput fell below {1 - self.drift:.0%} of {expected:.0f} B/s"
            self.decisions.append(Decision(t=now, point=base, rate=statistics.median(recent), utility=0.0,
                                           action="reprobe", why=why))
            if self.pending:
                self.current = self.pending.pop(0)
                self.probes[self.current] = Probe(self.current, started=now)
            else:
                self.settled = True
            return [self.decisions[-1]]
        return []


def _step_dir(a: int, b: int) -> int:
    return (b > a) - (b < a)
