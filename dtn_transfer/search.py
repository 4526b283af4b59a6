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
the search moves on evidence, not luck.  While it exploits, a sustained drop of
``drift`` re-opens a short search.

It stays within ``tuning.Limits``.  Pure logic, no I/O; time is passed in.  How batches
are cut for it and measured is ``run_search.py``.
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

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
                 probe_length: Callable[[Point], float] | None = None):
        self.limits, self.budget, self.stream_cost = limits, probe_budget, stream_cost
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
        if not self.pending or self.probing_time + next_takes > self.budget:
            base = self.base
            reason = "no neighbour is better" if not self.pending else \
                f"another probe would overrun the {self.budget:.0f}s budget"
            self.current, self.settled = base, True
            made.append(Decision(t=now, point=base, rate=self.probes[base].rate, utility=self._score(base),
                                 action="settle", why=f"{reason}; {len(self.probes)} points tried"))
        else:
            self.current = self.pending.pop(0)
            self.probes.setdefault(self.current, Probe(self.current, started=now))
        self.decisions += made
        return made

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
