"""Sources and snapshot for hpcdtn: dtn-transfer run states and GridFTP transfer logs."""
from __future__ import annotations

import copy
import os
import socket
import time
from dataclasses import dataclass, field, replace

from dtn_transfer.state import process_alive
from pmdas.common.agent import Agent
from pmdas.common.config import Option, positive
from pmdas.common.sources import Results, Source, SourceError, under
from pmdas.common.untrusted import UntrustedFileError, read_text

from . import metrics as table
from .parsers import LogTotals, RunView, add_log_text, parse_run_state

MAX_LOG_READ = 64 * 1024 * 1024   # bytes of new log read per refresh, so a huge backlog cannot stall
MAX_STATE_READ = 4 * 1024 * 1024  # bytes of one run's state.json (a run of 16,384 pairs is far less)


@dataclass(frozen=True)
class DtnSnapshot:
    runs: dict[str, RunView] = field(default_factory=dict)
    problems: tuple[str, ...] = ()       # run state files that could not be used, and why
    log: LogTotals | None = None
    taken: float = 0.0


class DtnAgent(Agent):
    name = "hpcdtn"
    domain = 414
    root = "hpc.dtn"
    options = {
        "runs_directory": Option("/var/lib/pcp-hpc/dtn/runs", "Directory where dtn-transfer keeps "
                                 "one sub-directory per run (DTN_TRANSFER_STATE_DIR/runs).", str),
        "recent_runs": Option(5, "How many finished runs to keep exporting besides running ones.",
                              int, positive),
        "transfer_logs": Option([], "GridFTP server transfer logs (-log-transfer files) to "
                                "follow; empty for none.", list),
    }
    metrics = table.METRICS
    indoms = table.INDOMS

    def __init__(self, config):  # noqa: ANN001 - Agent's signature
        super().__init__(config)
        self._log_offsets: dict[str, tuple[int, int]] = {}   # path → (inode, offset)
        self._log_totals = LogTotals()
        self._host = socket.gethostname()

    def sources(self):
        found = [Source("runs", self._read_runs, self.config.timeout)]
        if self.config.transfer_logs:
            found.append(Source("transfer_logs", self._read_logs, self.config.timeout))
        return found

    def _read_runs(self) -> tuple[dict[str, RunView], tuple[str, ...]]:
        """Runs to export, and one line per run whose state file could not be used.

        Users write the runs directory; the agent may be root.  A state file is read only
        if it is a regular file (no symlink followed, no FIFO waited on) of bounded size and
        valid UTF-8; anything else is skipped and said, the other runs still served."""
        directory = under(self.config.root, self.config.runs_directory)
        try:
            names = sorted(os.listdir(directory))
        except FileNotFoundError:
            raise SourceError(f"runs directory {directory} does not exist "
                              "(no dtn-transfer run yet)") from None
        except PermissionError:
            raise SourceError(f"runs directory {directory} is not readable (permission denied)") from None
        running, finished = {}, {}
        problems = []
        for name in names:
            path = os.path.join(directory, name, "state.json")
            if not os.path.lexists(path):
                continue    # a run still starting, or not a run directory
            try:
                view = parse_run_state(read_text(path, MAX_STATE_READ))
            except UntrustedFileError as exc:
                problems.append(str(exc))
                continue
            if view is None:
                problems.append(f"{path} is not a dtn-transfer run state")
                continue
            if view.state == "running" and view.host == self._host and not process_alive(view.pid):
                view = replace(view, state="interrupted")  # killed without a chance to say so
            (running if view.state == "running" else finished)[view.run] = view
        recent = dict(list(finished.items())[-self.config.recent_runs:])
        return {**recent, **running}, tuple(problems)

    def _read_logs(self) -> LogTotals:
        errors = []
        for path in [str(p) for p in self.config.transfer_logs]:
            full = under(self.config.root, path)
            try:
                with open(full, "rb") as f:
                    st = os.fstat(f.fileno())
                    inode, offset = self._log_offsets.get(full, (st.st_ino, 0))
                    if inode != st.st_ino or st.st_size < offset:
                        offset = 0   # rotated or truncated: start the new file from its beginning
                    f.seek(offset)
                    chunk = f.read(MAX_LOG_READ)
            except FileNotFoundError:
                errors.append(f"transfer log {full} does not exist")
                continue
            except OSError as exc:
                errors.append(f"transfer log {full} could not be read: {exc.strerror}")
                continue
            complete = chunk[:chunk.rfind(b"\n") + 1]   # a half-written last line waits
            add_log_text(self._log_totals, complete.decode("utf-8", "replace"))
            self._log_offsets[full] = (st.st_ino, offset + len(complete))
        if errors and len(errors) == len(self.config.transfer_logs):
            raise SourceError(errors[0])
        return copy.deepcopy(self._log_totals)

    def build(self, results: Results) -> DtnSnapshot:
        runs, problems = results.value("runs", ({}, ()))
        return DtnSnapshot(runs=runs, problems=problems, log=results.value("transfer_logs"),
                           taken=time.time())
