"""Tuning: the concurrency (C), parallelism (P) and pipelining a batch runs with, and how
they are chosen before anything is measured.

Two ways, one idea:

- **By size class** (``default_tuning``): what the user forced, else Globus
  transfer-service practice (small files many in flight with pipelining, large files
  several streams each).  Plain runs use it.
- **By model** (``model_tuning``, in the manner of Yildirim, Arslan, Kim and Kosar's
  heuristics for GridFTP): a node pair needs about ``bandwidth / stream_rate`` TCP
  streams to fill its link (on a WAN ``stream_rate`` is window / RTT, so this is their
  ⌈BDP / buffer⌉), plus a little headroom because streams share paths unevenly.  A file
  can only use as many streams as it has MODE E blocks, so parallelism is the smaller of
  "streams needed" and "blocks per average file"; concurrency supplies the rest of the
  streams with files in flight, and at least a few files are in flight so that one
  file's start and end (streams idle) are covered by the others.  Pipelining is on when
  a pair has more files than slots (queued commands to overlap) and files are small
  (below the BDP, or 4 MiB when no RTT is known).  Everything is rounded up to a power
  of two (the lattice the online search walks, ``search.py``) and kept within ``Limits``.
  When the RTT is known, a file's streams are not busy all its time in a slot: each file
  spends about ``FILE_ROUND_TRIPS`` round trips on its command and reply, data channels and
  slow start before and after its data moves, so streams are counted at their duty cycle
  (data time / (data time + those round trips)) and more files or streams are started to
  make up for it.  ``--auto`` starts from it.

The model needs the path's figures (``PathFigures``).  They are inputs: a transfer tool
cannot know a WAN's capacity, so the user (or a lab that shaped the links) says it, and
what nobody said is assumed (a 10 Gb/s NIC, streams reaching 1/16 of it).
Pure logic, no I/O.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from .options import RunOptions
from .plan import LARGE, MEDIUM, SMALL

BLOCK = 256 * 1024   # globus-url-copy's default MODE E block: smaller files ride one stream
PIPELINE_BELOW = 16 * BLOCK   # without an RTT: files this small gain from overlapping commands
# A file's transfer starts and ends with streams idle (data channels opening, receiver buffers
# filling, the last blocks trickling in on a few streams): ~0.5-1 s per file on the testbed.
# A few files in flight hide that from each other.
MIN_FILES_IN_FLIGHT = 4
# Round trips a file costs besides its data when the RTT is known: RETR/STOR and the reply,
# data channels (opened and authenticated, or reused), slow start up to the window, the last
# blocks and the transfer-complete reply.  At 130 ms on the delay-line testbed the 26 MB files
# of the large set ran 13% below C=4 P=8 at C=4 P=4 (16 streams for ~6 needed, idle a third
# of the time); with the duty cycle the model starts at C=4 P=8.
FILE_ROUND_TRIPS = 6
# Round trips from a globus-url-copy process's start to its first file moving: GSI logins on
# every control channel (connect, AUTH/ADAT handshake, USER/PASS), then the first commands and
# data channels.  On the delay-line testbed at 130 ms: 3.1-3.5 s, paid by every batch (probe).
STARTUP_ROUND_TRIPS = 25
DEFAULT_BANDWIDTH = 1.25e9     # 10 Gb/s NIC, when nothing is known of the path
DEFAULT_STREAMS_TO_FILL = 16   # and a WAN stream reaching 1/16 of it

# Per size class when the user does not force a value: small files want many in flight and
# pipelining; large files want parallel streams (Globus transfer-service practice).
DEFAULT_CONCURRENCY = {SMALL: 8, MEDIUM: 4, LARGE: 2}
DEFAULT_PARALLELISM = {SMALL: 1, MEDIUM: 4, LARGE: 8}


@dataclass(frozen=True, kw_only=True)
class Tuning:
    """C, P and pipelining for a batch, and why (the model says; empty otherwise)."""

    concurrency: int
    parallelism: int
    pipelining: bool
    reason: str = ""

    @property
    def streams(self) -> int:
        return self.concurrency * self.parallelism


def default_tuning(size_class: str, options: RunOptions, third_party: bool) -> Tuning:
    """C, P and pipelining in force for one size class of a plain run."""
    concurrency = options.concurrency or DEFAULT_CONCURRENCY[size_class]
    parallelism = options.parallelism or DEFAULT_PARALLELISM[size_class]
    if options.pipelining is None:
        # Pipelining helps third-party transfers of many small files and nothing else.
        pipelining = third_party and size_class in (SMALL, MEDIUM)
    else:
        pipelining = options.pipelining
    return Tuning(concurrency=concurrency, parallelism=parallelism, pipelining=pipelining)


@dataclass(frozen=True, kw_only=True)
class PathFigures:
    """What is known of the path between one source and one destination node."""

    bandwidth: float          # bytes/s a node pair can move (its NIC or WAN share)
    stream_rate: float        # bytes/s one TCP stream reaches (window / RTT on a WAN)
    rtt: float = 0.0          # seconds (for the BDP)
    origin: str = "defaults"  # who gave the figures: reported with the choice

    @property
    def streams_to_fill(self) -> float:
        return self.bandwidth / self.stream_rate

    @property
    def bdp(self) -> float:
        return self.bandwidth * self.rtt

    def to_json(self) -> dict:
        return {"bandwidth": self.bandwidth, "stream_rate": self.stream_rate, "rtt": self.rtt,
                "origin": self.origin}


def path_figures(bandwidth: float | None = None, stream_rate: float | None = None, rtt: float = 0.0,
                 tcp_buffer: int | None = None, known: PathFigures | None = None) -> PathFigures:
    """The path as the user gave it; what they left out from ``known`` (figures the caller
    has: those a run started with, or a lab's for its own links), else defaults.

    A stream's rate is window / RTT, so with ``tcp_buffer`` and ``rtt`` and no stream rate
    given, that is the stream rate."""
    if bandwidth and stream_rate:
        return PathFigures(bandwidth=bandwidth, stream_rate=stream_rate, rtt=rtt, origin="options")
    if known is not None:
        return PathFigures(bandwidth=bandwidth or known.bandwidth,
                           stream_rate=stream_rate or known.stream_rate, rtt=rtt or known.rtt,
                           origin=known.origin)
    given = bool(bandwidth or stream_rate)
    bandwidth = bandwidth or DEFAULT_BANDWIDTH
    if not stream_rate and tcp_buffer and rtt:
        stream_rate, given = min(bandwidth, tcp_buffer / rtt), True
    return PathFigures(bandwidth=bandwidth, stream_rate=stream_rate or bandwidth / DEFAULT_STREAMS_TO_FILL,
                       rtt=rtt, origin="options and defaults" if given else "defaults")


@dataclass(frozen=True)
class Limits:
    """What keeps tuning from overloading nodes: files in flight (one GridFTP session process
    per file on each end), streams per file, streams per node pair."""

    max_concurrency: int = 16
    max_parallelism: int = 32
    max_streams: int = 128

    def clamp(self, concurrency: int, parallelism: int) -> tuple[int, int]:
        c = max(1, min(concurrency, self.max_concurrency))
        p = max(1, min(parallelism, self.max_parallelism, self.max_streams // c))
        return c, p


def pow2_up(x: float) -> int:
    """The smallest power of two at or above ``x`` (at least 1)."""
    return 1 << max(0, math.ceil(math.log2(max(1.0, x)) - 1e-9))


def model_tuning(sizes: list[int], files_per_pair: int, path: PathFigures, limits: Limits = Limits(),
                 headroom: float = 1.5) -> Tuning:
    """The model's starting point for one group of files (sizes) on one node pair."""
    if not sizes:
        return Tuning(concurrency=1, parallelism=1, pipelining=False, reason="no files")
    avg = statistics.fmean(sizes)
    needed = path.streams_to_fill * headroom
    blocks = max(1, math.ceil(avg / BLOCK))
    p = pow2_up(min(needed, blocks))
    busy = duty_cycle(avg, p, path)
    c = max(pow2_up(needed / (p * busy)), pow2_up(min(files_per_pair, MIN_FILES_IN_FLIGHT)))
    c = min(c, pow2_up(max(1, files_per_pair)))
    # files in flight share the work: no more streams than 2x needed (counted at their duty cycle)
    p = min(p, pow2_up(2 * needed / (c * busy)))
    wanted_c = c
    c, p = limits.clamp(c, p)
    if c < wanted_c and c * p < needed:
        # The files-in-flight limit cut concurrency short of the streams needed: let files that
        # span more than one block use more streams (small set, 30-400 KB: C=16 P=1 gave 16
        # streams of the 24 wanted and ran 1-6% below C=16 P>=2 on the testbed).
        most = max(1, math.ceil(max(sizes) / BLOCK))
        c, p = limits.clamp(c, max(p, pow2_up(min(most, needed / c))))
    capped = ""
    if c < wanted_c and p > 1 and blocks == 1:
        capped = (f", raised to {p}: at most {c} files may be in flight and the largest span "
                  f"{math.ceil(max(sizes) / BLOCK)} blocks")
    pipelining = files_per_pair > c and avg < max(path.bdp, PIPELINE_BELOW)
    idle = (f"streams busy {busy:.0%} of a file's time ({FILE_ROUND_TRIPS} round trips of "
            f"{path.rtt * 1000:.0f} ms per file); " if busy < 1 else "")
    reason = (f"avg file {avg / 2**20:.2f} MiB = {blocks} block(s); {idle}"
              f"filling {path.bandwidth / 2**20:.1f} MiB/s at {path.stream_rate / 2**20:.2f} MiB/s "
              f"per stream needs ~{needed:.0f} streams "
              f"({path.streams_to_fill:.1f} x {headroom} headroom; path from {path.origin}); "
              f"P={p} (streams a file can use{capped}), C={c} (files in flight for the rest, at least "
              f"{MIN_FILES_IN_FLIGHT} to hide per-file start and end; {files_per_pair} files per pair); "
              f"pipelining {'on' if pipelining else 'off'}")
    return Tuning(concurrency=c, parallelism=p, pipelining=pipelining, reason=reason)


def duty_cycle(avg_size: float, parallelism: int, path: PathFigures) -> float:
    """Share of a file's time in a slot that its streams move data: 1 when no RTT is known."""
    if path.rtt <= 0:
        return 1.0
    moving = avg_size / (parallelism * path.stream_rate)
    return moving / (moving + FILE_ROUND_TRIPS * path.rtt)
