"""Refreshes in a child process, for agents whose refresh is big (a cluster's 50,000 jobs,
an OSS's job_stats).

Python threads share one interpreter lock.  A refresh thread that parses, evaluates and
prepares for half a second holds it most of that time, and a fetch waits for it: in
bench/job_refresh.py fetches took ×5 their idle median (×11 at p90) while refreshes ran.
Here the agent's process only serves: a child process (``python -m pmdas.common.worker``,
the same agent class built from the same configuration) reads the sources, builds the
snapshot, evaluates the metric table and prepares values by instance id, then ships the
result over a pipe in pieces of at most PIECE values.  The agent's receiving thread
unpickles one piece at a time (a fraction of a millisecond) and the pipe read between
pieces lets the interpreter lock go, so a fetch waits for one piece at most.

Faults: if the child exits, the agent keeps serving the last values with agent.up 0 and
agent.last_error saying so, and starts a new child after a pause.  The child dies with
the agent (PR_SET_PDEATHSIG) and exits when its pipe is gone.  Agents that accept PCP
stores keep the refresh thread: a store is handled in the agent's process.
"""
from __future__ import annotations

import argparse
import contextlib
import ctypes
import importlib
import logging
import os
import pickle
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from itertools import islice
from typing import Any

from .agent import Agent
from .config import Config
from .namespace import AgentTable
from .prepare import Plain, Preparer
from .refresh import Refresher
from .start import build_agent

log = logging.getLogger("pmdas")

PIECE = 4096                  # values (or names) per message
FIRST_REFRESH_WAIT = 120      # seconds a 'notready' agent waits for the child's first refresh
_HEADER = struct.Struct("<Q")
_END = ("end", 0, None, True)


# -- child → parent protocol ----------------------------------------------------------
# A message is a pickled list of (kind, key, payload, first) items:
#   ("ids" | "labels", indom id, {...} piece, first)   names / label JSON of an instance domain
#   ("value", pmid, scalar or {inst: value} piece, first)
#   ("patch", pmid, ({inst: value} changed, [inst] gone), first)   against the last refresh
#   (kind, key, None, True)   the same object as in the last refresh
#   ("end", 0, None, True)    the refresh is complete
# Between refreshes only about one value in twelve changes (50,000 jobs: 77,000 of 940,000),
# so patches keep what the agent's process unpickles small.
_MISSING = object()


def _pieces(mapping: dict) -> Iterator[dict]:
    items = iter(mapping.items())
    while piece := dict(islice(items, PIECE)):
        yield piece


def _patch(old: dict, new: dict) -> tuple[dict, list]:
    changed = {k: v for k, v in new.items() if old.get(k, _MISSING) != v}
    return changed, list(old.keys() - new.keys())


class Sender:
    """Writes each Plain as messages of at most about PIECE values (child side)."""

    def __init__(self, fd: int):
        self.fd = fd
        self._sent: dict[tuple[str, int], Any] = {}
        self._values: dict[int, Any] = {}

    def _items(self, plain: Plain) -> Iterator[tuple[tuple, int]]:
        for kind, table in (("ids", plain.ids), ("labels", plain.labels)):
            for key, mapping in table.items():
                if self._sent.get((kind, key)) is mapping:
                    yield (kind, key, None, True), 1
                    continue
                self._sent[(kind, key)] = mapping
                yield (kind, key, {}, True), 1
                for piece in _pieces(mapping):
                    yield (kind, key, piece, False), len(piece)
        for pmid, value in plain.values.items():
            old = self._values.get(pmid)
            if not isinstance(value, dict):
                yield ("value", pmid, value, True), 1
            elif isinstance(old, dict) and len(value) > 16:
                changed, gone = _patch(old, value)
                if not changed and not gone:
                    yield ("value", pmid, None, True), 1
                    continue
                yield ("patch", pmid, ({}, gone), True), 1 + len(gone)
                for piece in _pieces(changed):
                    yield ("patch", pmid, (piece, []), False), len(piece)
            else:
                yield ("value", pmid, {}, True), 1
                for piece in _pieces(value):
                    yield ("value", pmid, piece, False), len(piece)
        self._values = plain.values
        yield _END, 1

    def send(self, plain: Plain) -> None:
        batch: list[tuple] = []
        weight = 0
        for item, size in self._items(plain):
            if batch and weight + size > PIECE:
                self._write(batch)
                batch, weight = [], 0
            batch.append(item)
            weight += size
        self._write(batch)

    def _write(self, batch: list[tuple]) -> None:
        body = pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL)
        view = memoryview(_HEADER.pack(len(body)) + body)
        while view:
            view = view[os.write(self.fd, view):]


def _read_exactly(fd: int, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


class Assembler:
    """Puts the pieces back together into Plains (the parent's receiving thread).  A Plain
    handed out is never changed afterwards: patches apply to a copy."""

    def __init__(self) -> None:
        self._last = Plain()
        self._building = Plain()

    def feed(self, items: list[tuple]) -> Plain | None:
        """Take one message; return the Plain it completes, if it does."""
        done = None
        for kind, key, payload, first in items:
            if kind == "end":
                done = self._last = self._building
                self._building = Plain()
                continue
            if kind == "patch":
                table, last = self._building.values, self._last.values
                changed, gone = payload
                if first:
                    table[key] = last[key].copy()
                target = table[key]
                target.update(changed)
                for inst in gone:
                    del target[inst]
                continue
            table = {"ids": self._building.ids, "labels": self._building.labels,
                     "value": self._building.values}[kind]
            if payload is None:
                table[key] = getattr(self._last, "values" if kind == "value" else kind)[key]
            elif first:
                table[key] = payload
            else:
                table[key].update(payload)
        return done


def read_message(fd: int) -> list[tuple] | None:
    header = _read_exactly(fd, _HEADER.size)
    if header is None:
        return None
    body = _read_exactly(fd, _HEADER.unpack(header)[0])
    return None if body is None else pickle.loads(body)


# -- parent side ----------------------------------------------------------------------
class RefreshProcess:
    """Starts, watches and restarts the refresh child; hands each complete refresh to
    ``install`` (the PMDA's)."""

    def __init__(self, agent: Agent, install: Callable[[Plain], None],
                 config_path: str | None, state_dir: str, restart_pause: float = 2.0,
                 config_error: str = ""):
        self.agent = agent
        self._config_error = config_error
        self._install = install
        self._pmids = AgentTable.of(agent).pmids  # agent.up, agent.last_error: when the child fails
        self._config_path = config_path
        self._state_dir = state_dir
        self._restart_pause = restart_pause
        self._proc: subprocess.Popen | None = None
        self._stopping = False
        self._last: Plain | None = None
        self.first = threading.Event()            # set when the first refresh arrived
        self.starts = 0

    def _argv(self, fd: int) -> list[str]:
        cls = type(self.agent)
        argv = [sys.executable, "-I", "-m", "pmdas.common.worker", f"{cls.__module__}:{cls.__qualname__}",
                "--fd", str(fd), "--domain", str(self.agent.domain), "--state-dir", self._state_dir,
                "--parent", str(os.getpid())]
        if self._config_path:
            argv += ["--config", self._config_path]   # for ps: the settings come on stdin
        return argv

    def _settings(self) -> bytes:
        """The agent's settings as this process read them, for the child's stdin: the child
        builds the agent from them (start.build_agent) instead of reading the file again,
        which it may not be allowed to (it runs as the pcp user; the file may be root's)."""
        config = self.agent.config
        return pickle.dumps((dict(config), config.path, self._config_error))

    def _spawn(self) -> int:
        read_fd, write_fd = os.pipe()
        try:
            # Isolated (-I), as the agent's launcher starts the agent: pmcd's working
            # directory, which the pcp user writes, is not on its module path.
            self._proc = subprocess.Popen(self._argv(write_fd), pass_fds=(write_fd,),
                                          stdin=subprocess.PIPE, stdout=sys.stderr.fileno())
            with self._proc.stdin as settings:
                settings.write(self._settings())
        except OSError:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        self.starts += 1
        return read_fd

    def start(self, first_here: bool = False) -> None:
        """Start the child and receive its refreshes in a background thread.

        ``first_here``: then wait (at most FIRST_REFRESH_WAIT s) for its first refresh, as an
        agent pmcd started 'notready' does between its handshake and READY.
        """
        threading.Thread(target=self._run, name="refresh-receiver", daemon=True).start()
        if first_here and not self.first.wait(FIRST_REFRESH_WAIT):
            log.warning("%s: no refresh within %d s; ready without values",
                        self.agent.name, FIRST_REFRESH_WAIT)

    def stop(self) -> None:
        self._stopping = True
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
            if proc.poll() is None:
                proc.kill()

    def _run(self) -> None:
        while not self._stopping:
            try:
                fd = self._spawn()
            except OSError as exc:
                self._mark_down(f"cannot start the refresh process: {exc}")
                time.sleep(self._restart_pause)
                continue
            try:
                self._receive(fd)
            except Exception as exc:   # a garbled message: start afresh
                log.exception("%s: reading the refresh process failed", self.agent.name)
                self.stop_child()
                reason = f"reading the refresh process failed: {type(exc).__name__}: {exc}"
            else:
                reason = None
            finally:
                os.close(fd)
            if self._stopping:
                return
            status = self._proc.wait() if self._proc else None
            self._mark_down(reason or f"the refresh process exited (status {status}); restarting it")
            time.sleep(self._restart_pause)

    def stop_child(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()

    def _receive(self, fd: int) -> None:
        assembler = Assembler()
        while (message := read_message(fd)) is not None:
            plain = assembler.feed(message)
            if plain is not None:
                self._last = plain
                self._install(plain)
                self.first.set()

    def _mark_down(self, reason: str) -> None:
        """Serve the last values, with the agent's health saying the refresh is gone."""
        log.error("%s: %s", self.agent.name, reason)
        last = self._last or Plain()
        values = dict(last.values)
        values[self._pmids["agent.up"]] = 0
        values[self._pmids["agent.last_error"]] = reason
        self._install(Plain(values, last.ids, last.labels))
        self.first.set()


# -- child side -----------------------------------------------------------------------
def _die_with_parent(parent: int) -> None:
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)     # PR_SET_PDEATHSIG
    if os.getppid() != parent:                       # it died before prctl took effect
        sys.exit(0)


def child_main(argv: list[str] | None = None) -> None:
    """The refresh child: the agent built as its parent built it (build_agent), refreshing
    and preparing under the same table's numbers, writing each refresh to the pipe."""
    parser = argparse.ArgumentParser(prog="pmdas.common.worker",
                                     description="refresh process of a pcp-hpc agent (started by the agent)")
    parser.add_argument("agent", help="module:Class of the agent")
    parser.add_argument("--fd", type=int, required=True, help="pipe to write refreshes to")
    parser.add_argument("--domain", type=int, required=True)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("--config", help="the agent's file (shown only: the settings come on stdin)")
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="[%(asctime)s] %(name)s refresh %(levelname)s: %(message)s")
    _die_with_parent(args.parent)
    module, _, name = args.agent.partition(":")
    values, path, error = pickle.load(sys.stdin.buffer)   # the parent's settings (RefreshProcess)
    agent, config_error = build_agent(getattr(importlib.import_module(module), name), path,
                                      args.domain, settings=(Config(values, path), error))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    table = AgentTable.of(agent)
    sender, preparer = Sender(args.fd), Preparer(table)
    refresher = Refresher(agent, state_dir=args.state_dir, config_error=config_error, table=table,
                          on_publish=lambda published: sender.send(preparer.prepare(published)))
    try:
        refresher.run_forever()
    except BrokenPipeError:      # the agent is gone
        pass
    finally:
        agent.close()


if __name__ == "__main__":
    child_main()
