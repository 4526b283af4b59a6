"""Metric table of hpcdtn (hpc.dtn.*): per transfer run, per DTN node pair, per remote host."""
from __future__ import annotations

from pmdas.common.table import (
    BYTES,
    BYTES_PER_SEC,
    COUNT,
    COUNTER,
    DISCRETE,
    DOUBLE,
    INSTANT,
    NONE,
    SEC,
    STRING,
    U32,
    U64,
    Indom,
    Metric,
    cluster,
)

from .parsers import STATES

CARRY = (" It goes on across 'dtn-transfer run --resume' (the instance keeps its name) since "
         "dtn-transfer of 2026-12-05; before, it restarted at 0 on each resume, which "
         "hpc.dtn.run.sessions growing shows.")

STATE_HELP = ("0 running, 1 completed (every file at the destination), 2 incomplete (finished "
              "with files that did not make it), 3 interrupted (killed or stopped; resumable with "
              "dtn-transfer run --resume RUN)")


def _state_code(state: str) -> int | None:
    return STATES.index(state) if state in STATES else None


def _runs(s, value):  # noqa: ANN001, ANN202 - extractor helper
    return {name: value(run) for name, run in s.runs.items()}


def _pairs(s, value):  # noqa: ANN001, ANN202
    return {f"{run.run}/{p.name}": value(p) for run in s.runs.values() for p in run.pairs}


def _remotes(s, value):  # noqa: ANN001, ANN202
    return {} if s.log is None else {h: value(r) for h, r in s.log.remotes.items()}


def _in_force(run, attr):  # noqa: ANN001, ANN202
    values = [getattr(p, attr) for p in run.pairs if getattr(p, attr) is not None and p.state == "active"]
    return max(values) if values else 0


INDOMS = [
    Indom("run", 0, "dtn-transfer runs", "One instance per dtn-transfer run that is running, plus the "
          "most recent finished ones (agent option recent_runs). The instance name is the run id "
          "(start time and a random suffix) as shown by 'dtn-transfer list'.",
          lambda s: {n: {"run": n, "source": r.source, "dest": r.dest} for n, r in s.runs.items()}),
    Indom("node", 1, "DTN node pairs of each run", "One instance per source/destination DTN node pair "
          "of each exported run, named RUN/SOURCE>DEST (host:port of each GridFTP node, or 'local').",
          lambda s: {f"{r.run}/{p.name}": {"run": r.run, "source": p.source, "dest": p.dest}
                     for r in s.runs.values() for p in r.pairs}),
    Indom("remote", 2, "remote hosts in GridFTP transfer logs", "One instance per data-channel peer "
          "address (the DEST=[ip] field) seen in the configured GridFTP server transfer logs.",
          lambda s: {} if s.log is None else {h: {"remote": h} for h in s.log.remotes}),
]

METRICS = [
    *cluster(0, [
        Metric("runs.active", U32, INSTANT, COUNT, "dtn-transfer runs in progress",
               "Number of dtn-transfer runs whose state is running (a run whose process died is "
               "reported as interrupted instead).",
               lambda s: sum(1 for r in s.runs.values() if r.state == "running")),
        Metric("runs.exported", U32, INSTANT, COUNT, "runs exported as instances",
               "Number of run instances exported: running runs plus the most recent finished ones.",
               lambda s: len(s.runs)),
        Metric("runs.unreadable", U32, INSTANT, COUNT, "run state files that could not be used",
               "Number of run directories whose state.json was skipped at the last refresh: not a "
               "regular file (a symbolic link, a FIFO, a device), over the size limit, not UTF-8, "
               "or not a dtn-transfer run state. Users write the runs directory, so such a file "
               "is never followed or waited on; hpc.dtn.runs.problems says which and why.",
               lambda s: len(s.problems)),
        Metric("runs.problems", STRING, INSTANT, NONE, "why run state files could not be used",
               "One sentence per skipped run state file (see hpc.dtn.runs.unreadable), joined "
               "with '; '; empty when every run could be read.",
               lambda s: "; ".join(s.problems)),
    ]),
    *cluster(1, [
        Metric("run.state", STRING, INSTANT, NONE, "run state: running, completed, incomplete, interrupted",
               "State of the run as a word: running; completed (every file verified at the "
               "destination); incomplete (finished, some files did not make it: see "
               "'dtn-transfer status RUN'); interrupted (killed or stopped, resumable).",
               lambda s: _runs(s, lambda r: r.state), indom="run"),
        Metric("run.state_code", U32, INSTANT, NONE, "run state as a number (for alarms)",
               "The run state as a number: " + STATE_HELP + ".",
               lambda s: _runs(s, lambda r: _state_code(r.state)), indom="run"),
        Metric("run.files.total", U64, DISCRETE, COUNT, "files in the run's data set",
               "Number of files the run's plan holds.", lambda s: _runs(s, lambda r: r.files["total"]),
               indom="run"),
        Metric("run.files.done", U64, COUNTER, COUNT, "files sent and verified",
               "Files copied and verified at the destination (size, and MD5 with --verify) so far.",
               lambda s: _runs(s, lambda r: r.files["done"]), indom="run"),
        Metric("run.files.skipped", U64, COUNTER, COUNT, "files skipped as already identical",
               "Files not sent because --sync found them identical at the destination.",
               lambda s: _runs(s, lambda r: r.files["skipped"]), indom="run"),
        Metric("run.files.failed", U64, COUNTER, COUNT, "files that did not make it after all retries",
               "Files given up on after every retry round (other node pairs included); their "
               "reasons are in the run's journal and in 'dtn-transfer status RUN'. A file given "
               "up on in two sessions of the run counts twice, also when a later resume delivers it." + CARRY,
               lambda s: _runs(s, lambda r: r.files["failed"]), indom="run"),
        Metric("run.bytes.total", U64, DISCRETE, BYTES, "bytes in the run's data set",
               "Sum of the sizes of the files in the run's plan.",
               lambda s: _runs(s, lambda r: r.bytes["total"]), indom="run"),
        Metric("run.bytes.done", U64, COUNTER, BYTES, "bytes of files sent and verified (or skipped)",
               "Bytes of files verified at the destination or skipped as identical. Grows in "
               "whole files; run.bytes.moved includes files still in flight.",
               lambda s: _runs(s, lambda r: r.bytes["done"]), indom="run"),
        Metric("run.bytes.moved", U64, INSTANT, BYTES, "bytes moved including files in flight",
               "Verified bytes plus an estimate of bytes of files still in flight, from "
               "globus-url-copy's performance markers (an under-estimate when files interleave).",
               lambda s: _runs(s, lambda r: r.bytes["moved"]), indom="run"),
        Metric("run.throughput.instant", DOUBLE, INSTANT, BYTES_PER_SEC, "current transfer rate",
               "Bytes per second moved over the last state update (about one second); 0 when the "
               "run is not running.", lambda s: _runs(s, lambda r: r.throughput_instant), indom="run"),
        Metric("run.throughput.average", DOUBLE, INSTANT, BYTES_PER_SEC, "average rate since the run started",
               "Verified bytes divided by elapsed time of this session of the run (a resumed run "
               "counts from its resume).", lambda s: _runs(s, lambda r: r.throughput_average), indom="run"),
        Metric("run.streams", U32, INSTANT, COUNT, "TCP data streams in flight",
               "Data streams the run's globus-url-copy processes keep open now: for each active "
               "node pair, files in flight (concurrency) times streams per file (parallelism).",
               lambda s: _runs(s, lambda r: r.streams), indom="run"),
        Metric("run.concurrency", U32, INSTANT, COUNT, "files in flight per node pair now (-cc)",
               "Largest concurrency (globus-url-copy -cc) in force on any active node pair; 0 idle.",
               lambda s: _runs(s, lambda r: _in_force(r, "concurrency")), indom="run"),
        Metric("run.parallelism", U32, INSTANT, COUNT, "streams per file now (-p)",
               "Largest parallelism (globus-url-copy -p) in force on any active node pair; 0 idle.",
               lambda s: _runs(s, lambda r: _in_force(r, "parallelism")), indom="run"),
        Metric("run.pipelining", U32, INSTANT, NONE, "1 if pipelining (-pp) is in force",
               "1 when any active node pair runs globus-url-copy with pipelining (-pp), else 0.",
               lambda s: _runs(s, lambda r: _in_force(r, "pipelining")), indom="run"),
        Metric("run.retries", U64, COUNTER, COUNT, "file transfer retries",
               "Number of file retries so far (each file sent again in a later round counts once "
               "per round), a sign of failing nodes or servers." + CARRY,
               lambda s: _runs(s, lambda r: r.retries), indom="run"),
        Metric("run.started", DOUBLE, DISCRETE, SEC, "run start time (seconds since the epoch)",
               "When this session of the run started, seconds since 1970-01-01 UTC.",
               lambda s: _runs(s, lambda r: r.started), indom="run"),
        Metric("run.update_age", DOUBLE, INSTANT, SEC, "seconds since the run last updated its state",
               "Age of the run's state file at the agent's last refresh. A running run updates it "
               "every second or so; a large age means a stalled or hung dtn-transfer.",
               lambda s: _runs(s, lambda r: max(0.0, s.taken - r.updated) if r.updated else None),
               indom="run"),
        Metric("run.sessions", U64, COUNTER, COUNT, "sessions of the run: 1 plus its resumes",
               "How many times the run was started: 1, plus 1 for each 'dtn-transfer run --resume'. "
               "The run's counters go on across resumes; a state written by dtn-transfer before "
               "2026-12-05 has no such field (the metric is then unavailable), and its counters "
               "restarted at 0 on each resume.",
               lambda s: _runs(s, lambda r: r.sessions), indom="run"),
    ]),
    *cluster(2, [
        Metric("node.state", STRING, INSTANT, NONE, "node pair state: active, idle or down",
               "active: a globus-url-copy process is moving files on this pair; idle: nothing "
               "assigned now; down: a whole batch failed there, so its retries go to other pairs.",
               lambda s: _pairs(s, lambda p: p.state), indom="node"),
        Metric("node.files.total", U64, DISCRETE, COUNT, "files planned on this node pair",
               "Files the plan assigned to this pair at the start (retries may move files away).",
               lambda s: _pairs(s, lambda p: p.files_total), indom="node"),
        Metric("node.files.done", U64, COUNTER, COUNT, "files sent and verified through this pair",
               "Files this pair delivered and that verified at the destination." + CARRY,
               lambda s: _pairs(s, lambda p: p.files_done), indom="node"),
        Metric("node.bytes.total", U64, DISCRETE, BYTES, "bytes planned on this node pair",
               "Bytes the plan assigned to this pair (bytes are spread evenly over pairs).",
               lambda s: _pairs(s, lambda p: p.bytes_total), indom="node"),
        Metric("node.bytes.done", U64, COUNTER, BYTES, "bytes sent and verified through this pair",
               "Bytes of files this pair delivered and that verified at the destination." + CARRY,
               lambda s: _pairs(s, lambda p: p.bytes_done), indom="node"),
        Metric("node.throughput.instant", DOUBLE, INSTANT, BYTES_PER_SEC, "current rate of this pair",
               "Bytes per second this pair moved over the last state update; 0 when not active.",
               lambda s: _pairs(s, lambda p: p.throughput_instant), indom="node"),
        Metric("node.throughput.average", DOUBLE, INSTANT, BYTES_PER_SEC, "average rate of this pair",
               "Bytes verified through this pair in this session of the run divided by the "
               "session's elapsed time (a resumed run counts from its resume).",
               lambda s: _pairs(s, lambda p: p.throughput_average), indom="node"),
        Metric("node.streams", U32, INSTANT, COUNT, "TCP data streams in flight on this pair",
               "Files in flight times streams per file of the pair's running globus-url-copy.",
               lambda s: _pairs(s, lambda p: p.streams), indom="node"),
        Metric("node.concurrency", U32, INSTANT, COUNT, "files in flight setting (-cc) last used",
               "Concurrency (globus-url-copy -cc) of the pair's current or last batch.",
               lambda s: _pairs(s, lambda p: p.concurrency), indom="node"),
        Metric("node.parallelism", U32, INSTANT, COUNT, "streams per file setting (-p) last used",
               "Parallelism (globus-url-copy -p) of the pair's current or last batch.",
               lambda s: _pairs(s, lambda p: p.parallelism), indom="node"),
        Metric("node.pipelining", U32, INSTANT, NONE, "1 if the pair's last batch used pipelining",
               "1 when the pair's current or last batch ran with -pp, else 0.",
               lambda s: _pairs(s, lambda p: p.pipelining), indom="node"),
        Metric("node.failures", U64, COUNTER, COUNT, "failed file attempts on this pair",
               "File attempts on this pair that did not verify at the destination (each may have "
               "been retried elsewhere)." + CARRY, lambda s: _pairs(s, lambda p: p.failures), indom="node"),
        Metric("node.retries", U64, COUNTER, COUNT, "retried files sent through this pair",
               "Files this pair was given in retry rounds after failing somewhere." + CARRY,
               lambda s: _pairs(s, lambda p: p.retries), indom="node"),
    ]),
    *cluster(3, [
        Metric("gridftp.transfers", U64, COUNTER, COUNT, "transfers logged per remote host",
               "File transfers (RETR/STOR and their extended forms; directory listings are not "
               "counted) the GridFTP server logged with this data-channel peer, since the agent "
               "started following the transfer logs.",
               lambda s: _remotes(s, lambda r: r.transfers), indom="remote"),
        Metric("gridftp.failed_transfers", U64, COUNTER, COUNT, "logged transfers that did not end with 226",
               "Logged transfers with this peer whose FTP reply code was not 226 (success).",
               lambda s: _remotes(s, lambda r: r.failed), indom="remote"),
        Metric("gridftp.bytes", U64, COUNTER, BYTES, "bytes moved per remote host",
               "Sum of NBYTES of logged transfers with this peer (sent or received).",
               lambda s: _remotes(s, lambda r: r.nbytes), indom="remote"),
        Metric("gridftp.seconds", DOUBLE, COUNTER, SEC, "time spent transferring per remote host",
               "Sum of transfer durations (DATE minus START) of logged transfers with this peer; "
               "the rate of gridftp.bytes over the rate of this is the achieved throughput.",
               lambda s: _remotes(s, lambda r: r.seconds), indom="remote"),
        Metric("gridftp.streams", U32, INSTANT, COUNT, "streams of the last logged transfer",
               "Parallel TCP streams (STREAMS=) of the most recent logged transfer with this peer.",
               lambda s: _remotes(s, lambda r: r.last_streams), indom="remote"),
        Metric("gridftp.throughput", DOUBLE, INSTANT, BYTES_PER_SEC, "rate of the last logged transfer",
               "Bytes per second of the most recent logged transfer with this peer.",
               lambda s: _remotes(s, lambda r: r.last_throughput), indom="remote"),
        Metric("gridftp.skipped_lines", U64, COUNTER, COUNT, "malformed transfer-log lines skipped",
               "Lines of the transfer logs that looked like transfer records but could not be "
               "parsed; they are skipped.", lambda s: None if s.log is None else s.log.skipped_lines),
    ]),
]
