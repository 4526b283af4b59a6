"""One batch = one globus-url-copy process, with each file journaled as it finishes.

A process per few files is what made many small files slow: every process logs in
``-cc`` control channels on both servers (a fork and a login each) and lets its slots
idle while its last files drain.  So a batch is now long (thousands of files), and the
process's debug transcript (``-dbg``, see transcript.py) says when each file is closed
at the destination.  Beside the reader, a checker thread

- verifies finished files a few at a time (pipelined SIZE, MD5 with --verify) and
  journals them at once, so a killed run resumes without re-sending them;
- polls the destination size of files in flight once a second, so live progress moves
  while big files are written, not only when they end;
- checks that both nodes still answer when the transcript shows connection faults, and
  stops the process if one does not (its files then go to another pair at once instead
  of failing one by one through restart timeouts).

A file counts as sent only when this process wrote it (the destination's own 226 for it
in the transcript) and the destination then checks out; a file that failed or never
started is never verified into done, however well its size matches (a stale copy the
server could not overwrite has the right size).
"""
from __future__ import annotations

import fcntl
import os
import select
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from .children import start
from .gsi import data_channel_flags
from .options import RunOptions
from .plan import Plan, PlannedFile
from .progress import destination_full, error_blocks
from .schedule import Batch
from .state import DONE, RunState
from .transcript import CLIENT_ERROR, FAILED, PERF, STARTED, Transcript
from .transcript import DONE as CLOSED
from .verify import Checker, pair_answers

GLOBUS_URL_COPY = os.environ.get("DTN_TRANSFER_GLOBUS_URL_COPY", "globus-url-copy")
VERIFY_EVERY = 0.2     # s: finished files are verified and journaled in groups this often
POLL_EVERY = 1.0       # s: destination sizes of files in flight (live progress)
HEALTH_EVERY = 2.0     # s: at most this often, after connection faults, are the nodes asked
READ_EVERY = 0.05      # s: the transcript is read in gulps this far apart
PIPE_BYTES = 1 << 20   # the transcript pipe's size (the default 64 KiB fills in ~50 ms)
DIRS_AHEAD_FILES_PER_SLOT = 12  # files per slot from which directories are made ahead (dirs_ahead)

def batch_argv(batch: Batch, options: RunOptions, list_file: str, dump_file: str,
               third_party: bool, make_dirs: bool = True) -> list[str]:
    """The globus-url-copy command line for one batch (an argv list, never a shell string).
    ``make_dirs``: globus-url-copy makes the destination directories (-cd), which costs it a
    round trip per file; off when they were made beforehand (``dirs_ahead``)."""
    t = batch.tuning
    argv = [GLOBUS_URL_COPY, "-dbg", "-c", *(["-cd"] if make_dirs else []), "-rst", "-rst-retries", "1",
            "-rst-interval", "1", "-stall-timeout", str(options.stall_timeout),
            "-p", str(t.parallelism), "-cc", str(t.concurrency)]
    if t.pipelining:
        argv.append("-pp")
    if options.fast:
        argv.append("-fast")
    if options.tcp_buffer:
        argv += ["-tcp-bs", str(options.tcp_buffer)]
    # no -verify-checksum with --verify: it hashes both ends, then our CKSM (verify.py) hashed
    # them again; one hash per side is the Checker's, which the journal needs anyway
    return argv + data_channel_flags(options.data_channel) + ["-df", dump_file, "-f", list_file]


def dest_dirs(batch: Batch) -> list[str]:
    """Directories (relative to the destination, "" for itself) the batch's files go into,
    parents before children."""
    dirs = {""}
    for f in batch.files:
        parts = f.relpath.split("/")[:-1]
        dirs.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
    return sorted(dirs, key=lambda d: (d.count("/") + bool(d), d))


def dirs_ahead(batch: Batch) -> bool:
    """Make the directories before the process instead of with -cd?  -cd costs a round trip per
    file in each slot (2.3 s of 9.5 for 100 files at 130 ms); making them ahead puts the login
    to the destination (reused for the checks) and the MKDs before the process starts: ~9
    round trips (1.2 s at 130 ms), so it pays from about a dozen files per slot."""
    return len(batch.files) > DIRS_AHEAD_FILES_PER_SLOT * batch.tuning.concurrency


def list_file_text(plan: Plan, batch: Batch) -> str:
    """``-f`` list: one quoted URL pair per line; URLs are percent-encoded, so quoting is safe."""
    src_node, dst_node = plan.pairs[batch.pair]
    return "".join(f'"{plan.source.url(src_node, f.relpath)}" "{plan.dest.url(dst_node, f.relpath)}"\n'
                   for f in batch.files)


@dataclass
class Outcome:
    """What became of a batch's files that were not journaled as done while it ran."""

    returncode: int
    failed: dict[str, tuple[PlannedFile, str]] = field(default_factory=dict)   # relpath → (file, reason)
    node_down: bool = False
    killed_for_stall: bool = False


class BatchRun:
    """Runs one batch; ``record`` journals and counts results (called from two threads)."""

    def __init__(self, plan: Plan, batch: Batch, options: RunOptions, run: RunState, stem: str,
                 record: Callable[[list[tuple[PlannedFile, str, str]]], None],
                 tick: Callable[[], None], stop: threading.Event,
                 on_full: Callable[[str], None] | None = None, first_try: bool = True):
        self.plan, self.batch, self.options, self.run_state, self.stem = plan, batch, options, run, stem
        self.on_full = on_full      # the destination said it is full: the whole run stops
        self.first_try = first_try  # retries let globus-url-copy make directories itself (-cd)
        self.record, self.tick, self.stop = record, tick, stop
        src_node, dst_node = plan.pairs[batch.pair]
        self.nodes = (src_node, dst_node)
        self.third_party = not plan.source.local and not plan.dest.local
        self.by_dst = {plan.dest.url(dst_node, f.relpath): f for f in batch.files}
        self.by_src = {plan.source.url(src_node, f.relpath): f for f in batch.files}
        # whose 226 means "closed at the destination": the destination server's, unless
        # the destination is local (then the source's end of sending is the last word)
        self.closers = self.by_src if plan.dest.local else self.by_dst
        self.checker = Checker(plan.source, plan.dest, self.nodes, options.verify)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._ended = threading.Event()          # the process has exited
        self._in_flight: dict[str, PlannedFile] = {}
        self._closed: list[PlannedFile] = []     # 226 seen, not yet verified
        self._wrote: set[str] = set()             # 226 seen: this process wrote the file
        self._problems: dict[str, str] = {}      # written, but the check found this
        self._confirmed: set[str] = set()
        self._written: dict[str, int] = {}       # bytes at the destination, polled or reported
        self._file_errors: dict[str, list[str]] = {}
        self._client_errors: deque[str] = deque(maxlen=200)
        self._faults = 0
        self._finished = False
        self._proc: subprocess.Popen | None = None
        self.node_down = False
        self._started = time.time()
        self.last_progress = time.monotonic()

    # -- the process and its transcript (caller's thread) -------------------------------
    def run(self) -> Outcome:
        with open(self.stem + ".list", "w", encoding="utf-8") as f:
            f.write(list_file_text(self.plan, self.batch))
        try:   # globus-url-copy reads an existing dump file INSTEAD of the list (and writes it early)
            os.unlink(self.stem + ".dump")
        except FileNotFoundError:
            pass
        made = self.first_try and dirs_ahead(self.batch) and self.checker.make_dirs(dest_dirs(self.batch))
        self._started = time.time()
        argv = batch_argv(self.batch, self.options, self.stem + ".list", self.stem + ".dump",
                          self.third_party, make_dirs=not made)
        checker = threading.Thread(target=self._check_loop, name=f"check-{self.batch.pair}", daemon=True)
        self._proc = proc = start(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        checker.start()
        stalled = False
        try:
            stalled = self._read(proc)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            assert proc.stderr is not None
            proc.stderr.close()
            self._finished = True
            self._ended.set()
            self._wake.set()
            checker.join()
        return self._conclude(proc.returncode, stalled)

    def _read(self, proc: subprocess.Popen) -> bool:
        """Parse the transcript until the process ends; True if it was killed for a stall."""
        assert proc.stderr is not None
        fd = proc.stderr.fileno()
        try:   # room for a few seconds of transcript, so reading in gulps never blocks the writer
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        except OSError:
            pass
        transcript, pending = Transcript(), b""
        limit = 2 * self.options.stall_timeout + 10
        while True:
            # globus-url-copy writes its transcript line by line: waking for every line
            # cost more CPU than the transfer's control work itself, so read in gulps.
            time.sleep(READ_EVERY)
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                chunk = os.read(fd, PIPE_BYTES)
                if not chunk:
                    return False
                self.last_progress = time.monotonic()
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    for event in transcript.feed(line.decode("latin-1")):
                        self._on_event(event)
            if self.stop.is_set() or self.node_down:
                proc.kill()
                return False
            if time.monotonic() - self.last_progress > limit:
                proc.kill()
                return True
            self.tick()

    def _on_event(self, event) -> None:  # noqa: ANN001 - transcript.Event
        kind, urls = event.kind, event.urls
        if kind == STARTED:
            for url in urls:
                f = self.by_dst.get(url) or self.by_src.get(url)
                if f is not None:
                    with self._lock:
                        self._in_flight[f.relpath] = f
                    return
        elif kind == CLOSED:
            f = self.closers.get(urls[0])
            if f is not None:
                with self._lock:
                    self._in_flight.pop(f.relpath, None)
                    self._closed.append(f)
                    self._wrote.add(f.relpath)
                self._wake.set()
        elif kind == PERF:
            f = self.by_dst.get(urls[0])
            if f is not None and event.nbytes:
                with self._lock:
                    self._written[f.relpath] = max(self._written.get(f.relpath, 0), event.nbytes)
        elif kind == FAILED:
            f = self.by_dst.get(urls[0]) or self.by_src.get(urls[0])
            if not event.text[:1].isdigit() and "responded with an error" not in event.text:
                self._faults += 1           # a connection fault, not a refusal: is a node gone?
                self._wake.set()
            if destination_full(event.text) and self.on_full is not None:
                self.on_full(event.text)
            if f is not None:
                self._file_errors.setdefault(f.relpath, []).append(event.text)
            elif "PATH_EXISTS" not in event.text:   # -cd meeting existing directories is normal
                self._client_errors.append(event.text)
        elif kind == CLIENT_ERROR:
            self._client_errors.append(event.text)

    # -- checker thread ----------------------------------------------------------------------
    def _check_loop(self) -> None:
        last_verify = last_poll = last_health = 0.0
        faults_seen = 0
        try:
            while True:
                self._wake.wait(0.5)
                self._wake.clear()
                finished = self._finished
                now = time.monotonic()
                if not finished and now - last_verify < VERIFY_EVERY:
                    self._ended.wait(VERIFY_EVERY - (now - last_verify))   # let finished files gather
                    now = time.monotonic()
                last_verify = now
                self._verify_closed()
                if finished:
                    return
                if now - last_poll >= POLL_EVERY:
                    last_poll = now
                    self._poll_sizes()
                if self._faults != faults_seen and now - last_health >= HEALTH_EVERY:
                    faults_seen, last_health = self._faults, now
                    if not pair_answers(self.plan.source, self.plan.dest, self.nodes):
                        self.node_down = True
                        if self._proc is not None:
                            self._proc.kill()
        finally:
            self._publish_written()

    def _verify_closed(self) -> None:
        with self._lock:
            closed, self._closed = self._closed, []
        if not closed:
            return
        checks = self.checker.verify(closed)
        good = self._with_mtimes([f for f in closed if checks.get(f.relpath, "") is None], checks)
        if len(good) < len(closed) and any((checks.get(f.relpath) or "").startswith("could not verify")
                                           for f in closed):
            self._faults += 1   # the destination stopped answering us: check the nodes
        with self._lock:
            self._confirmed.update(f.relpath for f in good)
            for f in good:
                self._written.pop(f.relpath, None)
            self._problems.update((f.relpath, checks.get(f.relpath) or "not verified")
                                  for f in closed if f not in good)
        if good:
            self.record([(f, DONE, "") for f in good])
        self._publish_written()

    def _poll_sizes(self) -> None:
        with self._lock:
            flying = sorted(self._in_flight)[:64]
        sizes = self.checker.sizes(flying) if flying else {}
        grew = False
        with self._lock:
            for relpath, size in sizes.items():
                if size is not None and size > self._written.get(relpath, 0):
                    self._written[relpath] = size
                    grew = True
        if grew:
            self.last_progress = time.monotonic()
        self._publish_written()

    def _publish_written(self) -> None:
        """The pair's bytes in flight: what sits at the destination but is not verified yet."""
        with self._lock:
            sizes = {f.relpath: f.size for f in self._closed}
            sizes.update((r, f.size) for r, f in self._in_flight.items())
            written = sum(min(n, sizes.get(r, n)) for r, n in self._written.items()
                          if r not in self._confirmed)
            written += sum(f.size for f in self._closed if f.relpath not in self._written)
        self.run_state.set_inflight(self.batch.pair, 0 if self._finished else written)

    # -- after the process ----------------------------------------------------------------
    def _conclude(self, returncode: int, stalled: bool) -> Outcome:
        client_text = "\n".join(self._client_errors)
        if client_text:
            with open(self.stem + ".stderr", "w", encoding="utf-8", errors="replace") as f:
                f.write(client_text + "\n")
        general = error_blocks(client_text) or [t for t in self._client_errors if t][-1:]
        outcome = Outcome(returncode, node_down=self.node_down, killed_for_stall=stalled)
        remaining = [f for f in self.batch.files if f.relpath not in self._confirmed]
        if self.plan.dest.local:
            self._wrote.update(f.relpath for f in remaining if self._changed_locally(f))
        # Only files this process wrote (their own 226) may still verify into done: one
        # that failed or never started can match by size (a stale copy the server could not
        # overwrite) and is not delivered.  Written ones whose check could not be made
        # (a connection lost meanwhile) are checked once more here.
        again = [f for f in remaining if f.relpath in self._wrote
                 and self._problems.get(f.relpath, "could not verify").startswith("could not verify")]
        checks = self.checker.verify(again) if again else {}
        good = self._with_mtimes([f for f in again if checks.get(f.relpath, "") is None], checks)
        self.checker.close()
        if good:
            self.record([(f, DONE, "") for f in good])
        for f in remaining:
            if f in good:
                continue
            if f.relpath in checks:
                problem = checks[f.relpath] or "not verified"
            elif f.relpath in self._wrote:
                problem = self._problems.get(f.relpath, "not verified")
            else:
                problem = "not written: no transfer reply from the destination for this file"
            outcome.failed[f.relpath] = (f, self._reason(f, problem, general, outcome))
        self.run_state.set_inflight(self.batch.pair, 0)
        return outcome

    def _with_mtimes(self, good: list[PlannedFile], checks: dict[str, str | None]) -> list[PlannedFile]:
        """--preserve-mtime: verified files take their source's time; one whose time cannot be
        set is not done (``checks`` gets why)."""
        if not self.options.preserve_mtime or not good:
            return good
        problems = self.checker.preserve_mtimes([f.relpath for f in good])
        checks.update((r, why) for r, why in problems.items() if why is not None)
        return [f for f in good if problems.get(f.relpath) is None]

    def _changed_locally(self, f: PlannedFile) -> bool:
        """A local destination has no server to say 226 (file:// to file:// has no replies at
        all): this process wrote the file if its inode changed since the process started
        (ctime cannot be set back by anyone)."""
        try:
            return os.stat(self.plan.dest.path.rstrip("/") + "/" + f.relpath).st_ctime >= self._started - 1
        except OSError:
            return False

    def _reason(self, f: PlannedFile, problem: str, general: list[str], outcome: Outcome) -> str:
        """Best explanation of one file's failure: its own server replies, else the process's."""
        own = self._file_errors.get(f.relpath, [])
        replies = [t for t in own if t[:1].isdigit()] or own
        detail = replies[-1] if replies else (general[-1] if general else "")
        if outcome.killed_for_stall:
            detail = "no progress within the stall timeout; globus-url-copy was stopped"
        elif outcome.node_down:
            detail = "a node of this pair stopped answering; globus-url-copy was stopped"
        text = problem + (f"; globus-url-copy: {detail}" if detail else "")
        return text if len(text) <= 400 else text[:397] + "..."
