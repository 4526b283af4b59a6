"""dtn-transfer command line: plan, run (and resume), status, list, remove.

Exit codes (stable, for scripts):
  0  every file is at the destination (sent and verified by this run, or skipped as already
     there at the sync level asked for)
  1  the run finished but some files did not make it (listed, with reasons), or it stopped
     by itself because the destination is full or over quota (one message)
  2  usage error (bad option or endpoint)
  3  nothing could start: the source could not be listed or the run is unknown (remove:
     no such run, or it is still running)
  4  interrupted (SIGINT/SIGTERM); `run --resume RUN` continues without re-sending
"""
from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import click

from . import control
from .endpoints import EndpointError, parse_endpoint
from .options import RunOptions
from .plan import BINS, Plan, PlanError, make_plan, walk
from .schedule import schedule
from .security_options import GsiError, Security, security_options
from .session import RunReport, RunSession, SessionError
from .sizes import Size, human
from .state import RunState, list_runs, read_journal, read_state, remove_run, runs_dir
from .tuning import PathFigures, path_figures

if TYPE_CHECKING:     # --auto's modules load only when a run searches (start-up time counts)
    from .run_search import Meter, SearchOptions

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_FATAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 4


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Move large data sets between DTN clusters with globus-url-copy.

    An endpoint is either a local directory or a DTN cluster written as
    host:port,host:port/abs/path (GridFTP nodes sharing one file system).
    Live state is kept under $DTN_TRANSFER_STATE_DIR/runs (default
    /var/lib/pcp-hpc/dtn/runs), where the hpcdtn PCP agent reads it.
    """


def _build_plan(src: str, dst: str, bdp: int, nodes: int | None, security: Security) -> Plan:
    security.check()
    try:
        source, dest = parse_endpoint(src, security.anonymous), parse_endpoint(dst, security.anonymous)
    except EndpointError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        security.use_credentials(source, dest)
        files = walk(source)
    except (PlanError, GsiError) as exc:
        click.echo(f"dtn-transfer: {exc}", err=True)
        sys.exit(EXIT_FATAL)
    return make_plan(source, dest, files, bdp, nodes)


def _plan_summary(plan: Plan, options: RunOptions) -> dict:
    batches = schedule(plan, options)
    return {
        "source": str(plan.source), "dest": str(plan.dest), "bdp": plan.bdp,
        "files": len(plan.files), "bytes": plan.total_bytes,
        "bins": {b: {"files": sum(1 for f in plan.files if f.bin == b),
                     "bytes": sum(f.size for f in plan.files if f.bin == b)} for b in BINS},
        "pairs": [{"source": s, "dest": d, "bytes": n,
                   "files": sum(1 for f in plan.files if f.pair == i),
                   "batches": [{"bin": b.bin, "files": len(b.files), "concurrency": b.tuning.concurrency,
                                "parallelism": b.tuning.parallelism, "pipelining": b.tuning.pipelining}
                               for b in batches[i]]}
                  for i, ((s, d), n) in enumerate(zip(plan.pairs, plan.bytes_per_pair(), strict=False))],
    }


def _print_plan(summary: dict) -> None:
    click.echo(f"{summary['files']} files, {human(summary['bytes'])}, "
               f"BDP {human(summary['bdp'])}: {summary['source']} -> {summary['dest']}")
    for name, b in summary["bins"].items():
        click.echo(f"  {name:6} {b['files']:8} files {human(b['bytes']):>12}")
    for p in summary["pairs"]:
        click.echo(f"  pair {p['source'] or 'local'} -> {p['dest'] or 'local'}: "
                   f"{p['files']} files, {human(p['bytes'])}, {len(p['batches'])} batches")


def _common_options(f):
    options = [
        click.option("-c", "--concurrency", type=click.IntRange(1, 256), default=None,
                     help="Files in flight per node pair (globus-url-copy -cc). Default: by file size."),
        click.option("-p", "--parallelism", type=click.IntRange(1, 64), default=None,
                     help="TCP streams per file (-p). Default: 1 for small files, up to 8 for large."),
        click.option("--pipelining/--no-pipelining", default=None,
                     help="Pipeline commands (-pp). Default: on for small files between GridFTP nodes."),
        click.option("--nodes", type=click.IntRange(1, 1024), default=None,
                     help="Use at most this many source/destination node pairs."),
        click.option("--tcp-buffer", type=Size(), default=None, help="TCP buffer size (-tcp-bs), e.g. 4M."),
        click.option("--bdp", type=Size(), default="64M", show_default=True,
                     help="Bandwidth-delay product of the path; sets the small/medium/large file classes."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


@main.command("plan")
@click.argument("src")
@click.argument("dst")
@_common_options
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@security_options
def plan_command(src, dst, concurrency, parallelism, pipelining, nodes, tcp_buffer, bdp, as_json,
                 security) -> None:
    """Show how SRC would be binned, spread over node pairs and batched; move nothing."""
    plan = _build_plan(src, dst, bdp, nodes, security)
    summary = _plan_summary(plan, RunOptions(concurrency=concurrency, parallelism=parallelism,
                                             pipelining=pipelining, tcp_buffer=tcp_buffer))
    click.echo(json.dumps(summary, indent=1)) if as_json else _print_plan(summary)


def run_parameters(f):
    """The arguments and options of ``run``; the lab's ``dtn-lab run`` takes the same."""
    options = [
        click.argument("src", required=False),
        click.argument("dst", required=False),
        _common_options,
        security_options,
        click.option("--sync", is_flag=True, help="Skip files already identical at the destination "
                     "(by size, or MD5 with --verify, unless --sync-level says otherwise)."),
        click.option("--sync-level", type=click.IntRange(0, 3), default=None,
                     help="With --sync (implied): what makes a destination file identical, as "
                          "globus-url-copy's -sync-level: 0 it exists, 1 same size, 2 same size and the "
                          "same modification time (files get it with --preserve-mtime; a newer one, "
                          "such as a half-written file, is sent again), 3 same size and MD5."),
        click.option("--preserve-mtime", is_flag=True,
                     help="Give each file its source's modification time once it verified at the "
                          "destination (GridFTP MFMT)."),
        click.option("--verify", is_flag=True,
                     help="Compare MD5 checksums (CKSM on GridFTP nodes), not only sizes."),
        click.option("--retries", type=click.IntRange(0, 20), default=2, show_default=True,
                     help="Rounds of retries for failed files, on other node pairs where possible."),
        click.option("--stall-timeout", type=click.IntRange(5, 3600), default=60, show_default=True,
                     help="Seconds without data movement before a transfer is restarted."),
        click.option("--resume", "resume", metavar="RUN", default=None,
                     help="Continue an earlier run: files it finished are not sent again."),
        click.option("--dry-run", is_flag=True, help="Plan and print, move nothing."),
        click.option("--quiet", "-q", is_flag=True,
                     help="No progress display; only failures and the exit code."),
        click.option("--json", "as_json", is_flag=True, help="Print the final report as JSON."),
        click.option("--auto", is_flag=True,
                     help="Choose C, P and pipelining: start from a model of the path (--path-bandwidth, "
                          "--stream-rate, --rtt) and the file sizes, then adjust between batches from "
                          "measured throughput (report in the run's auto.json)."),
        click.option("--path-bandwidth", "--bandwidth", "bandwidth", type=Size(), default=None,
                     help="With --auto: bytes/s one node pair can move (the smaller of the two nodes' "
                          "NICs or WAN shares), e.g. 1G. Default: 10 Gb/s."),
        click.option("--stream-rate", type=Size(), default=None,
                     help="With --auto: bytes/s one TCP stream reaches (window / RTT), e.g. 64M. Default: "
                          "--tcp-buffer / --rtt when both are given, else the path bandwidth / 16."),
        click.option("--rtt", type=click.FloatRange(0, 60000), default=None, metavar="MS",
                     help="With --auto: round-trip time of the path in milliseconds; with the path "
                          "bandwidth it gives the BDP below which files are pipelined."),
        click.option("--probe-budget", type=click.FloatRange(1, 600), default=30.0, show_default=True,
                     help="With --auto: most seconds of probing per size class (a class probes for at "
                          "most a third of its expected time, and not at all when two probes do not "
                          "fit); then the search settles."),
        click.option("--split", type=Size(), default=None, metavar="SIZE",
                     help="Send files larger than SIZE as byte ranges of about SIZE over every node pair "
                          "at once (globus-url-copy -off/-len), e.g. 1G. GridFTP nodes on both sides only."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


@main.command("run")
@run_parameters
def run_command(**params) -> None:
    """Copy the data set SRC to DST (both endpoints), or --resume RUN."""
    sys.exit(run_transfer(RunRequest(**params)))


@dataclass(frozen=True, kw_only=True)
class RunRequest:
    """The values of ``run_parameters``, as click passes them."""

    src: str | None
    dst: str | None
    concurrency: int | None
    parallelism: int | None
    pipelining: bool | None
    nodes: int | None
    tcp_buffer: int | None
    bdp: int
    sync: bool
    verify: bool
    retries: int
    stall_timeout: int
    resume: str | None
    dry_run: bool
    quiet: bool
    as_json: bool
    auto: bool
    bandwidth: int | None
    stream_rate: int | None
    rtt: float | None      # milliseconds
    probe_budget: float
    split: int | None
    security: Security = Security()      # credentials, --anonymous, data channel level
    sync_level: int | None = None
    preserve_mtime: bool = False

    def options(self) -> RunOptions:
        return RunOptions(concurrency=self.concurrency, parallelism=self.parallelism,
                          pipelining=self.pipelining, tcp_buffer=self.tcp_buffer,
                          sync=self.sync or self.sync_level is not None, sync_level=self.sync_level,
                          preserve_mtime=self.preserve_mtime,
                          verify=self.verify, retries=self.retries, stall_timeout=self.stall_timeout,
                          split=self.split, data_channel=self.security.data_channel)


PathSource = Callable[[Plan], PathFigures | None]   # figures a caller knows for a plan's nodes
MeterSource = Callable[[Plan], "Meter | None"]


def run_transfer(request: RunRequest, *, figures: PathSource | None = None,
                 meter: MeterSource | None = None) -> int:
    """``run``: open the session, run it, render its report; returns the exit code.

    ``figures`` and ``meter`` let a caller that knows the plan's nodes (the lab, for its
    testbed) supply what --auto's path options leave out, and a meter of throughput.
    Control connections logged in for the listing and checks are reused within the run."""
    with control.kept():
        return _run_transfer(request, figures, meter)


def _run_transfer(request: RunRequest, figures: PathSource | None, meter: MeterSource | None) -> int:
    r = request
    if r.auto and (r.concurrency or r.parallelism):
        raise click.UsageError("--auto chooses -c/-p itself; leave them out")
    if r.resume:
        try:
            session = RunSession.resume(r.resume)
            r.security.use_credentials(session.plan.source, session.plan.dest)
        except (SessionError, GsiError) as exc:
            click.echo(f"dtn-transfer: {exc}", err=True)
            return EXIT_FATAL
    else:
        if not r.src or not r.dst:
            raise click.UsageError("run needs SRC and DST (or --resume RUN)")
        plan = _build_plan(r.src, r.dst, r.bdp, r.nodes, r.security)
        if r.split is not None and (plan.source.local or plan.dest.local):
            raise click.UsageError("--split needs GridFTP nodes on both sides (ranges of ftp URLs)")
        if r.dry_run:
            summary = _plan_summary(plan, r.options())
            click.echo(json.dumps(summary, indent=1)) if r.as_json else _print_plan(summary)
            return EXIT_OK
        session = RunSession.new(plan, r.options())
    if r.auto or session.search is not None:
        session.search = _search_options(r, session, figures)
    show = not r.quiet and not r.as_json and sys.stderr.isatty()
    say = None if r.quiet or r.as_json else (lambda line: click.echo(f"\r{line}", err=True))
    with session.stopping_on_signals():
        report = session.run(on_tick=_progress_line if show else None, say=say,
                             meter=meter(session.plan) if meter and session.search else None)
    if show:
        click.echo("", err=True)
    _print_report(report, r.quiet, r.as_json)
    if report.interrupted:
        click.echo(f"interrupted; continue with: dtn-transfer run --resume {report.run_id}", err=True)
        return EXIT_INTERRUPTED
    return EXIT_PARTIAL if report.not_transferred else EXIT_OK


def _search_options(r: RunRequest, session: RunSession, figures: PathSource | None) -> SearchOptions:
    """--auto's inputs: the path figures given as options; what they leave out comes from the
    run (as it started, on --resume), else the caller, else defaults."""
    from .run_search import SearchOptions
    kept = session.search
    known = kept.path if kept else (figures(session.plan) if figures else None)
    path = path_figures(r.bandwidth, r.stream_rate, (r.rtt or 0.0) / 1000,
                        r.tcp_buffer or session.options.tcp_buffer, known)
    return SearchOptions(path=path, probe_budget=kept.probe_budget if kept else r.probe_budget)


def _print_report(report: RunReport, quiet: bool, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=1, ensure_ascii=False))
        return
    if not quiet:
        files = report.files or {}
        click.echo(f"run {report.run_id}: {report.state}; {files.get('done')} sent, "
                   f"{files.get('skipped')} skipped, "
                   f"{len(report.not_transferred)} not transferred of {files.get('total')}; "
                   f"{human(report.bytes.get('done', 0))} at {human(report.throughput_average or 0)}/s")
        if report.search is not None:
            _print_auto(report.search)
    if report.stopped_because:
        click.echo(f"dtn-transfer: stopped: {report.stopped_because}; "
                   f"{len(report.not_transferred)} files not sent", err=True)
        return
    for relpath, why in sorted(report.not_transferred.items()):
        click.echo(f"NOT TRANSFERRED {relpath!r}: {why}", err=True)


def _print_auto(summary: dict) -> None:
    """What --auto chose per size class and why, and throughput over time (one line per sample)."""
    for size_class, c in summary["classes"].items():
        m, f = c["model"], c["final"]
        click.echo(f"auto [class {size_class}]: model C={m['concurrency']} P={m['parallelism']} -> chose "
                   f"C={f['concurrency']} P={f['parallelism']} after {c['probing_seconds']:.1f}s probing "
                   f"{c['points_tried']} points")
    rates = " ".join(f"{s['rate'] / 2**20:.1f}" for s in summary["timeline"])
    click.echo(f"throughput over time (MiB/s, 1 s apart, {summary['timeline_measured_at']}): {rates}")


def _progress_line(run: RunState) -> None:
    pct = 100.0 * run.bytes_done / run.bytes_total if run.bytes_total else 100.0
    click.echo(f"\r{pct:5.1f}%  {human(run.moved())}/{human(run.bytes_total)}  "
               f"{human(run.rate)}/s  files {run.files_done + run.files_skipped}/{run.files_total}  "
               f"failed {run.files_failed}  retries {run.retries}   ", nl=False, err=True)


@main.command("status")
@click.argument("run", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the run's state file as JSON.")
def status_command(run, as_json) -> None:
    """Show a run's live state (the most recent run if RUN is omitted)."""
    runs = list_runs()
    run = run or (runs[-1] if runs else None)
    doc = read_state(os.path.join(runs_dir(), run)) if run else None
    if doc is None:
        click.echo(f"dtn-transfer: no state for run {run or '(none yet)'}", err=True)
        sys.exit(EXIT_FATAL)
    if as_json:
        click.echo(json.dumps(doc, indent=1, ensure_ascii=False))
        return
    f, b = doc["files"], doc["bytes"]
    click.echo(f"run {doc['run']} {doc['state']}: {doc['source']} -> {doc['dest']}")
    click.echo(f"  files {f['done']} done, {f['skipped']} skipped, {f['failed']} failed of {f['total']}")
    click.echo(f"  bytes {human(b['done'])} of {human(b['total'])}; "
               f"{human(doc['throughput']['instant'])}/s now, "
               f"{human(doc['throughput']['average'])}/s average; {doc['streams_in_flight']} streams; "
               f"{doc['retries']} retries")
    for name, p in doc["pairs"].items():
        click.echo(f"  {name}: {p['state']}, {p['files_done']}/{p['files_total']} files, "
                   f"{human(p['bytes_done'])}, {p['failures']} failures")
    journal = read_journal(os.path.join(runs_dir(), doc["run"], "journal.jsonl"))
    for name, entry in sorted(journal.items()):
        if entry.get("result") == "failed" and entry.get("final"):
            click.echo(f"  FAILED {name!r}: {entry.get('reason')}")


@main.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON.")
def list_command(as_json) -> None:
    """List kept runs, oldest first."""
    rows = []
    for run in list_runs():
        doc = read_state(os.path.join(runs_dir(), run)) or {}
        rows.append({"run": run, "state": doc.get("state", "unknown"),
                     "files": doc.get("files", {}), "bytes": doc.get("bytes", {}),
                     "source": doc.get("source"), "dest": doc.get("dest")})
    if as_json:
        click.echo(json.dumps(rows, indent=1, ensure_ascii=False))
        return
    for r in rows:
        click.echo(f"{r['run']}  {r['state']:11}  "
                   f"{r['files'].get('done', 0)}/{r['files'].get('total', 0)} files  "
                   f"{human(r['bytes'].get('done', 0))}  {r['source']} -> {r['dest']}")


@main.command("remove")
@click.argument("run")
def remove_command(run) -> None:
    """Delete a kept run (it can then no longer be resumed).  Completed runs beyond the
    newest 20 go by themselves; interrupted and incomplete ones stay until removed."""
    try:
        remove_run(runs_dir(), run)
    except (ValueError, OSError) as exc:
        click.echo(f"dtn-transfer: {exc}", err=True)
        sys.exit(EXIT_FATAL)


if __name__ == "__main__":
    main()
