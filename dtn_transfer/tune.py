"""Auto-tuning of concurrency (C), parallelism (P) and pipelining: a model, then a search.

1. **Model** (in the manner of Yildirim, Arslan, Kim and Kosar's heuristics for GridFTP):
   a node pair needs about ``bandwidth / stream_rate`` TCP streams to fill its link
   (on a WAN ``stream_rate`` is window / RTT, so this is their ⌈BDP / buffer⌉), plus a
   little headroom because streams share paths unevenly.  A file can only use as many
   streams as it has MODE E blocks, so parallelism is the smaller of "streams needed"
   and "blocks per average file"; concurrency supplies the rest of the streams with
   files in flight, and at least a few files are in flight so that one file's start
   and end (streams idle) are covered by the others.  Pipelining is on when a pair
   has more files than slots (queued commands to overlap) and files are small (below
   the BDP, or 4 MiB when no RTT is known).  Everything is rounded up to a
   power of two (the lattice the search walks) and kept within ``Limits``.

2. **Online search** (in the manner of Falcon): each setting is tried on real batches,
   scored by a utility ``throughput × (1 - stream_cost) ** log2(C × P)`` that rewards
   throughput and charges for streams, so the search stops adding streams once they
   buy less than ``stream_cost`` per doubling.  From the model's point it polls the
   lattice neighbours (C×2, P×2; then C traded for P at equal streams, C×2 P/2 and
   C/2 P×2, since throughput often lies on a ridge C×P ≈ constant; then C/2, P/2; the
   direction that helped last time first) and moves as soon as one beats the current
   point by ``min_gain``; when none does, or when the next probe would end after
   ``probe_budget`` seconds, it settles on the point it stands on.  The next probe is
   taken to last as long as the last one, longer by the difference of their batch
   lengths (``probe_length``, from the caller) if it holds more: a probe holds at least
   one file per slot, so on the testbed's 3 MiB files C=16 takes ~13 s where C=8 takes
   ~6 s (taking it to last as long as the last one let it end at 37 s of a 30 s budget).
   Never shorter: points below the model's rate (C=2 P=32 there: 2.85 of 4 MiB/s) take
   longer than their batch length says.
   ``min_gain`` is set above the noise of a single batch's rate (±5% on the testbed), so
   the search moves on evidence, not luck.
   While it exploits, a sustained drop of ``drift`` re-opens a short search.

Limits keep it from overloading nodes: at most ``max_streams`` streams per node pair,
``max_concurrency`` files in flight (one GridFTP session process per file on each end),
``max_parallelism`` streams per file.  Pure logic, no I/O; time is passed in.
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

BLOCK = 256 * 1024   # globus-url-copy's default MODE E block: smaller files ride one stream
PIPELINE_BELOW = 16 * BLOCK   # without an RTT: files this small gain from overlapping commands
# A file's transfer starts and ends with streams idle (data channels opening, receiver buffers
# filling, the last blocks trickling in on a few streams): ~0.5-1 s per file on the testbed.
# A few files in flight hide that from each other.
MIN_FILES_IN_FLIGHT = 4


@dataclass(frozen=True)
class PathModel:
    """What is known of the path between one source and one destination node."""

    bandwidth: float          # bytes/s a node pair can move (its NIC)
    stream_rate: float        # bytes/s one TCP stream reaches (window / RTT on a WAN)
    rtt: float = 0.0          # seconds (for the BDP in reports)
    origin: str = "defaults"  # where the numbers come from

    @property
    def streams_to_fill(self) -> float:
        return self.bandwidth / self.stream_rate

    @property
    def bdp(self) -> float:
        return self.bandwidth * self.rtt


@dataclass(frozen=True)
class Limits:
    max_concurrency: int = 16
    max_parallelism: int = 32
    max_streams: int = 128

    def clamp(self, concurrency: int, parallelism: int) -> tuple[int, int]:
        c = max(1, min(concurrency, self.max_concurrency))
        p = max(1, min(parallelism, self.max_parallelism, self.max_streams // c))
        return c, p


@dataclass(frozen=True)
class Point:
    concurrency: int
    parallelism: int

    @property
    def streams(self) -> int:
        return self.concurrency * self.parallelism

    def __str__(self) -> str:
        return f"C={self.concurrency} P={self.parallelism}"


@dataclass(frozen=True)
class Choice:
    point: Point
    pipelining: bool
    reason: str


def _pow2_up(x: float) -> int:
    return 1 << max(0, math.ceil(math.log2(max(1.0, x)) - 1e-9))


def model_choice(sizes: list[int], files_per_pair: int, path: PathModel, limits: Limits = Limits(),
                 headroom: float = 1.5) -> Choice:
    """The model's starting point for one group of files (sizes) on one node pair."""
    if not sizes:
        return Choice(Point(1, 1), False, "no files")
    avg = statistics.fmean(sizes)
    needed = path.streams_to_fill * headroom
    blocks = max(1, math.ceil(avg / BLOCK))
    p = _pow2_up(min(needed, blocks))
    c = max(_pow2_up(needed / p), _pow2_up(min(files_per_pair, MIN_FILES_IN_FLIGHT)))
    c = min(c, _pow2_up(max(1, files_per_pair)))
    p = min(p, _pow2_up(2 * needed / c))     # files in flight share the work: no more than 2x needed
    wanted_c = c
    c, p = limits.clamp(c, p)
    if c < wanted_c and c * p < needed:
        # The files-in-flight limit cut concurrency short of the streams needed: let files that
        # span more than one block use more streams (small set, 30-400 KB: C=16 P=1 gave 16
        # streams of the 24 wanted and ran 1-6% below C=16 P>=2 on the testbed).
        most = max(1, math.ceil(max(sizes) / BLOCK))
        c, p = limits.clamp(c, max(p, _pow2_up(min(most, needed / c))))
    capped = ""
    if c < wanted_c and p > 1 and blocks == 1:
        capped = (f", raised to {p}: at most {c} files may be in flight and the largest span "
                  f"{math.ceil(max(sizes) / BLOCK)} blocks")
    pipelining = files_per_pair > c and avg < max(path.bdp, PIPELINE_BELOW)
    reason = (f"avg file {avg / 2**20:.2f} MiB = {blocks} block(s); "
              f"filling {path.bandwidth / 2**20:.1f} MiB/s at {path.stream_rate / 2**20:.2f} MiB/s "
              f"per stream needs ~{needed:.0f} streams "
              f"({path.streams_to_fill:.1f} x {headroom} headroom; path from {path.origin}); "
              f"P={p} (streams a file can use{capped}), C={c} (files in flight for the rest, at least "
              f"{MIN_FILES_IN_FLIGHT} to hide per-file start and end; {files_per_pair} files per pair); "
              f"pipelining {'on' if pipelining else 'off'}")
    return Choice(Point(c, p), pipelining, reason)


def utility(rate: float, point: Point, stream_cost: float) -> float:
    return rate * (1.0 - stream_cost) ** math.log2(point.streams)


@dataclass
class Probe:
    point: Point
    rates: list[float] = field(default_factory=list)     # bytes/s per pair, one per batch
    started: float = 0.0

    @property
    def rate(self) -> float:
        return statistics.median(self.rates) if self.rates else 0.0


@dataclass
class Decision:
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

    def __init__(self, start: Point, limits: Limits = Limits(), now: float = 0.0, probe_budget: float = 30.0,
                 stream_cost: float = 0.02, min_gain: float = 0.06, drift: float = 0.25,
                 samples_needed: int = 1, max_point: Point | None = None,
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
        self.decisions: list[Decision] = [Decision(now, self.current, 0.0, 0.0, "start", "model's point")]
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
        made = [Decision(now, current, rate, score, action, why)]
        took = now - self.probes[current].started
        next_takes = took
        if self.pending and self.probe_length is not None:   # longer if it holds more data
            next_takes = max(took, took + self.probe_length(self.pending[0]) - self.probe_length(current))
        if not self.pending or self.probing_time + next_takes > self.budget:
            base = self.base
            reason = "no neighbour is better" if not self.pending else \
                f"another probe would overrun the {self.budget:.0f}s budget"
            self.current, self.settled = base, True
            made.append(Decision(now, base, self.probes[base].rate, self._score(base), "settle",
                                 f"{reason}; {len(self.probes)} points tried"))
        else:
            self.current = self.pending.pop(0)
            self.probes.setdefault(self.current, Probe(self.current, started=now))
        self.decisions += made
        return made

    def settle_now(self, now: float, why: str) -> Decision:
        """Keep the current point without probing (e.g. one batch would outlast the budget)."""
        self.base, self.settled = self.current, True
        self.decisions.append(Decision(now, self.current, 0.0, 0.0, "settle", why))
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
            self.decisions.append(Decision(now, base, statistics.median(recent), 0.0, "reprobe",
                                           f"throughput fell below {1 - self.drift:.0%} of "
                                           f"{expected:.0f} B/s"))
            if self.pending:
                self.current = self.pending.pop(0)
                self.probes[self.current] = Probe(self.current, started=now)
            else:
                self.settled = True
            return [self.decisions[-1]]
        return []


def _step_dir(a: int, b: int) -> int:
    return (b > a) - (b < a)
