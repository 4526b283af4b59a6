"""One measured transfer on the testbed: fixed C/P or --auto, bounded in time.

A trial copies a testbed data set between the first N nodes of each cluster in a real
dtn-transfer run session (globus-url-copy, verification, journal, the online search
with ``auto``), while a ``LinkMeter`` samples
the bytes delivered to the destination nodes.  Throughput is the steady rate over a
window: after ``warmup`` (process start, logins, first data channels) until the trial
is stopped after ``seconds`` or, if the data set ran out first, until 90% of its bytes
had arrived (the last files finish one by one, which says nothing about C and P).  For
``--auto`` the window starts ``warmup`` (at least a second) after the search settled, so probing is reported
separately (its length and the whole-run rate) from the rate it settled at.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from dtn_transfer.endpoints import Endpoint, parse_endpoint
from dtn_transfer.options import RunOptions
from dtn_transfer.plan import SourceFile, make_plan, walk
from dtn_transfer.run_search import SearchOptions
from dtn_transfer.session import RunReport, RunSession

from .path import testbed_path
from .testbed import Testbed
from .testbed.meter import LinkMeter, Trace


@dataclass(kw_only=True)
class TrialResult:
    """One trial: its point, the steady rate at the links, and the samples it came from."""

    label: str
    dataset: str
    nodes: int
    concurrency: int | None
    parallelism: int | None
    auto: bool
    rate: float                  # bytes/s, steady window (link level)
    window: tuple[float, float]
    whole_rate: float            # bytes/s from warmup to the end (auto: probing included)
    verified_bytes: int
    seconds: float
    completed: bool
    trace: Trace = field(default_factory=Trace)
    auto_summary: dict | None = None
    note: str = ""

    def to_json(self) -> dict:
        return {"label": self.label, "dataset": self.dataset, "nodes": self.nodes,
                "concurrency": self.concurrency, "parallelism": self.parallelism, "auto": self.auto,
                "rate": self.rate, "window": [round(x, 2) for x in self.window],
                "whole_rate": self.whole_rate, "verified_bytes": self.verified_bytes,
                "seconds": round(self.seconds, 2), "completed": self.completed,
                "samples": self.trace.to_json(), "auto_summary": self.auto_summary, "note": self.note}


MIN_WINDOW = 2.0   # seconds a settled --auto run must have for a rate of its own

_listings: dict[tuple[str, str], list[SourceFile]] = {}


def _endpoint(text: str) -> Endpoint:
    """A testbed endpoint: gsiftp://, or ftp:// on a testbed built --anonymous."""
    return parse_endpoint(text, anonymous=text.startswith("ftp://"))


def _listing(src: str) -> list[SourceFile]:
    endpoint = _endpoint(src)
    key = (endpoint.nodes[0] if endpoint.nodes else "", endpoint.path)
    if key not in _listings:
        _listings[key] = walk(endpoint)
    return _listings[key]


def _quiet(meter: LinkMeter, timeout: float = 5.0) -> None:
    """Wait until nothing flows any more (server sessions of a stopped trial wind down)."""
    deadline = time.monotonic() + timeout
    last = meter.delivered()
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = meter.delivered()
        if now - last < 64 * 1024:
            return
        last = now


def run_trial(bed: Testbed, dataset: str, nodes: int, options: RunOptions | None = None, *,
              auto: bool = False, seconds: float = 6.0, warmup: float = 1.0, probe_budget: float = 30.0,
              label: str = "", report: Callable[[str], None] | None = None) -> TrialResult:
    """Run one trial: a dtn-transfer run session with fixed ``options`` (C/P), or ``auto=True``
    (the online search, told the testbed's path figures), stopped when its window is measured."""
    options = options or RunOptions()
    bed.clear_dest(dataset)
    src, dst = bed.endpoints(dataset, nodes)
    os.environ.update(bed.client_environment())     # the testbed's proxy, for this process's runs
    plan = make_plan(_endpoint(src), _endpoint(dst), _listing(src), 64 << 20, nodes)
    work = tempfile.mkdtemp(prefix="dtn-trial-")
    search = SearchOptions(path=testbed_path(bed.layout), probe_budget=probe_budget) if auto else None
    session = RunSession.new(plan, options, search=search, runs_base=work, run_id="trial")
    meter = LinkMeter(bed.layout, [n.wan_port for n in bed.nodes("dest")[:nodes]])
    _quiet(meter)
    meter.start()
    ended: list[RunReport] = []
    worker = threading.Thread(target=lambda: ended.append(session.run(say=report)), name="trial", daemon=True)
    worker.start()
    settled_at = None
    limit = warmup + seconds + (probe_budget + 15.0 if auto else 0.0)
    while worker.is_alive() and meter.now() < limit:
        time.sleep(0.1)
        if auto and settled_at is None and session.settled():
            settled_at = meter.now()
            limit = min(limit, settled_at + max(1.0, warmup) + seconds)
    completed = not worker.is_alive()
    stopped_at = meter.sample()[0]      # the window ends here, before processes are killed
    session.stop()
    worker.join(30)
    trace = meter.stop()
    trace.samples = [s for s in trace.samples if s[0] <= stopped_at]    # after it: processes killed
    elapsed = trace.samples[-1][0]
    end = stopped_at
    if completed:
        total = trace.samples[-1][1]
        end = next((t for t, b in trace.samples if b >= 0.9 * total), elapsed)
    whole = trace.rate_between(warmup, end) if end > warmup else 0.0
    start, note = warmup, ""
    # The settled batch starts its processes, logs in and ramps up like a fixed trial's first
    # batch: its window starts ``warmup`` after the search settled (at least a second).
    after = max(1.0, warmup)
    if auto and settled_at is not None and end - (settled_at + after) >= MIN_WINDOW:
        start = settled_at + after
    elif auto:
        note = ("the data set ran out before the search settled and ran a window of its own: "
                "the rate is the whole run's, probing included")
    c, p = options.concurrency, options.parallelism
    result = TrialResult(
        label=label or (f"auto N={nodes}" if auto else f"N={nodes} C={c} P={p}"),
        dataset=dataset, nodes=nodes, concurrency=c, parallelism=p, auto=auto,
        rate=trace.rate_between(start, end) if end > start else 0.0, window=(start, end), whole_rate=whole,
        verified_bytes=session.state.bytes_done, seconds=elapsed, completed=completed, trace=trace,
        auto_summary=ended[0].search if ended else None, note=note)
    shutil.rmtree(work, ignore_errors=True)
    _quiet(meter)
    return result
