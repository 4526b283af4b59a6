"""The refresh loop: sources → agent snapshot → flat values, published atomically.

Runs in one background thread.  Fetches never wait for it: they read whatever
``Published`` object is current.  Everything slow (I/O, parsing, evaluating the
metric table, numbering instances) happens here, not on the fetch path.
"""
from __future__ import annotations

import dataclasses
import gc
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from .agent import Agent
from .health import HEALTH_INDOMS, Health, SourceHealth
from .instances import InstanceIds
from .namespace import AgentTable
from .sources import Results, SourceRunner
from .table import Metric

log = logging.getLogger(__name__)


@contextmanager
def collector_paused() -> Iterator[None]:
    """Run a block with Python's cyclic garbage collector paused, then let it catch up.

    A cluster-view refresh allocates a few hundred thousand objects (50,000 jobs),
    nearly all freed by reference counting.  The collector, woken every 700
    allocations, would walk the half-built snapshot again and again, a third of the
    refresh.  Paused, it runs once at the end, on the refreshing thread rather than
    on whichever thread (a fetch) allocates next, collecting the generation its own
    thresholds say is due: the same collections, at the end of the refresh instead
    of during it.
    """
    if not gc.isenabled():   # someone else manages the collector
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect(_due_generation())


def _due_generation() -> int:
    """The oldest generation whose count passed its threshold, as the collector picks it."""
    counts, thresholds = gc.get_count(), gc.get_threshold()
    return next((g for g in (2, 1) if counts[g] > thresholds[g]), 0)


@dataclass(frozen=True)
class Published:
    """One refresh's outcome, ready to serve.

    values:     full metric name → scalar, or {instance name: value}
    instances:  indom name → {instance name: (instance id, labels)}
    """

    taken: float
    values: Mapping[str, Any]
    instances: Mapping[str, Mapping[str, tuple[int, Mapping[str, Any]]]]
    health: Health
    snapshot: Any = None
    extras: dict = field(default_factory=dict)  # room for the glue's prebuilt structures


class Refresher:
    """Refreshes one agent and hands each outcome to ``on_publish``.

    ``table``: the agent's checked table (AgentTable.of(agent) when not given), the one the
    PMDA registers, so what is evaluated here is exactly what pmcd was told exists.
    ``state_dir``: where instance numbers are kept across restarts (None: in memory only).
    """

    def __init__(self, agent: Agent, state_dir: str | None = None,
                 on_publish: Callable[[Published], None] | None = None, config_error: str = "",
                 table: AgentTable | None = None):
        self.agent = agent
        self.table = table or AgentTable.of(agent)
        self._runner = SourceRunner()
        self._ids = {
            i.name: InstanceIds(os.path.join(state_dir, f"{agent.name}.{i.serial}.json")
                                if state_dir else None)
            for i in self.table.indoms
        }
        self._on_publish = on_publish
        self._stop = threading.Event()
        self._wake = threading.Event()
        agent.request_refresh = self._wake.set  # e.g. after a PCP store changed something
        self._thread: threading.Thread | None = None
        self._source_failures: dict[str, int] = {}
        self.health = Health(interval=float(agent.config.interval), config_error=config_error)
        self.published = Published(0.0, {}, {i.name: {} for i in self.table.indoms}, self.health)

    def full_name(self, metric: Metric) -> str:
        return self.table.full_name(metric)

    # -- one refresh -------------------------------------------------------
    def refresh_once(self) -> Published:
        with collector_paused():
            return self._refresh_once()

    def _refresh_once(self) -> Published:
        started = time.monotonic()
        try:
            sources = list(self.agent.sources())
            results = self._runner.run(sources)
            build_error = ""
            try:
                snapshot = self.agent.build(results)
            except Exception as exc:  # never let an agent bug stop the refresh loop
                log.exception("%s: building the snapshot failed", self.agent.name)
                snapshot, build_error = None, f"building the snapshot failed: {type(exc).__name__}: {exc}"
        except Exception as exc:
            log.exception("%s: listing sources failed", self.agent.name)
            results, snapshot = Results({}), None
            build_error = f"listing sources failed: {type(exc).__name__}: {exc}"
        health = self._health(results, time.monotonic() - started, build_error)
        published = self._evaluate(snapshot, health)
        if self._on_publish is not None:
            try:
                self._on_publish(published)
            except BrokenPipeError:    # the refresh child's agent is gone: nobody to serve
                raise
            except Exception as exc:   # what cannot be served must not look healthy
                log.exception("%s: publishing the refresh failed", self.agent.name)
                down = dataclasses.replace(
                    published.health, up=False,
                    last_error=f"publishing the refresh failed: {type(exc).__name__}: {exc}")
                published = self._evaluate(None, down)
                self._on_publish(published)
        self.health = published.health
        self.published = published
        return published

    def _health(self, results: Results, seconds: float, build_error: str) -> Health:
        sources: dict[str, SourceHealth] = {}
        errors = []
        for name, r in results.items():
            if not r.ok:
                self._source_failures[name] = self._source_failures.get(name, 0) + 1
                errors.append(r.error)
                log.warning("%s: %s", self.agent.name, r.error)
            sources[name] = SourceHealth(r.ok, r.error, r.seconds, self._source_failures.get(name, 0))
        if build_error:
            errors.append(build_error)
        failed = bool(errors)
        prev = self.health
        return Health(
            up=not failed, refreshes=prev.refreshes + 1,
            failed_refreshes=prev.failed_refreshes + int(failed),
            last_refresh=time.time(), refresh_seconds=seconds,
            last_error=errors[-1] if errors else "", interval=prev.interval,
            sources=sources, extractor_errors=prev.extractor_errors, config_error=prev.config_error)

    def _evaluate(self, snapshot: Any, health: Health) -> Published:
        values: dict[str, Any] = {}
        extractor_errors = 0
        for metric in self.table.metrics:
            is_health = metric.name in self.table.health_names
            if snapshot is None and not is_health:
                continue
            try:
                values[self.full_name(metric)] = metric.value(health if is_health else snapshot)
            except Exception as exc:
                extractor_errors += 1
                log.warning("%s: metric %s: %s: %s", self.agent.name, metric.name,
                            type(exc).__name__, exc)
        instances: dict[str, dict[str, tuple[int, Mapping[str, Any]]]] = {}
        for indom in self.table.indoms:
            if indom is HEALTH_INDOMS[0]:  # the agent's own indoms are numbered: count them
                counts = {name: len(members) for name, members in instances.items()}
                health = dataclasses.replace(health, instance_counts=counts)
                values[f"{self.agent.root}.agent.instances"] = counts
            source = health if indom in HEALTH_INDOMS else snapshot
            try:
                labelled = dict(indom.instances(source)) if source is not None else {}
            except Exception as exc:
                extractor_errors += 1
                log.warning("%s: instances of %s: %s: %s", self.agent.name, indom.name,
                            type(exc).__name__, exc)
                labelled = {}
            ids = self._ids[indom.name].assign(labelled)
            self._ids[indom.name].save()
            # {name: (id, labels)}, built in C: a cluster-view job indom has 50,000 names.
            instances[indom.name] = dict(zip(labelled, zip(map(ids.__getitem__, labelled),
                                                           labelled.values(), strict=True), strict=True))
        if extractor_errors:
            health = dataclasses.replace(health, extractor_errors=health.extractor_errors + extractor_errors)
            values[f"{self.agent.root}.agent.extractor_errors"] = health.extractor_errors
        return Published(time.time(), values, instances, health, snapshot)

    # -- background loop ---------------------------------------------------
    def start(self, first_here: bool = False) -> None:
        """Refresh in a background thread from now on.

        ``first_here``: refresh once on the calling thread before that, and let the thread's
        first refresh wait an interval.  An agent pmcd started 'notready' does so between
        its handshake and READY, so pmcd's first fetch finds values.
        """
        if first_here:
            try:
                self.refresh_once()
            except Exception:
                log.exception("%s: first refresh failed", self.agent.name)
        self._thread = threading.Thread(target=self.run_forever, kwargs={"first_wait": first_here},
                                        name=f"{self.agent.name}-refresh", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def run_forever(self, first_wait: bool = False) -> None:
        """Refresh every ``interval`` seconds until stopped (start to start, not end to start)."""
        interval = float(self.agent.config.interval)
        if first_wait:
            self._wake.wait(interval)
        while not self._stop.is_set():
            started = time.monotonic()
            self._wake.clear()
            try:
                self.refresh_once()
            except BrokenPipeError:    # a refresh child whose agent is gone ends here
                raise
            except Exception:
                log.exception("%s: refresh failed", self.agent.name)
            self._wake.wait(max(0.05, interval - (time.monotonic() - started)))
