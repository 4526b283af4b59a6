"""dtn-transfer command line: plan, run (and resume), status, list.

Exit codes (stable, for scripts):
  0  every file is at the destination (sent, or skipped as already identical)
  1  the run finished but some files did not make it (listed, with reasons)
  2  usage error (bad option or endpoint)
  3  nothing could start: the source could not be listed or the run is unknown
  4  interrupted (SIGINT/SIGTERM); `run --resume RUN` continues without re-sending
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from .endpoints import EndpointError, parse_endpoint
from .execute import Executor
from .plan import BINS, Plan, PlanError, make_plan, walk
from .schedule import Settings, schedule
from .sizes import Size, human
from .state import (
    DONE,
    SKIPPED,
    Journal,
    PairState,
    RunState,
    list_runs,
    new_run_id,
    prune_runs,
    read_journal,
    read_state,
    runs_dir,
    write_json_atomic,
)

if TYPE_CHECKING:
    from . import adaptive

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_FATAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 4


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Move large data sets between DTN clusters with globus-url-copy.

    An endpoint is either a local directory or a DTN cluster written as
    host:port,host:port/abs/path (GridFTP nodes sharing one file system).
    Live state is kept under $DTN_TRANSFER_STATE_DIR/runs (default
    /var/lib/pcp-hpc/dtn/runs), where the hpcdtn PCP agent reads it.
    """


def _build_plan(src: str, dst: str, bdp: int, nodes: int | None) -> Plan:
    try:
        source, dest = parse_endpoint(src), parse_endpoint(dst)
    except EndpointError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        files = walk(source)
    except PlanError as exc:
        click.echo(f"dtn-transfer: {exc}", err=True)
        sys.exit(EXIT_FATAL)
    return make_plan(source, dest, files, bdp, nodes)


def _plan_summary(plan: Plan, settings: Settings) -> dict:
    batches = schedule(plan, settings)
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
def plan_command(src, dst, concurrency, parallelism, pipelining, nodes, tcp_buffer, bdp, as_json) -> None:
    """Show how SRC would be binned, spread over node pairs and batched; move nothing."""
    plan = _build_plan(src, dst, bdp, nodes)
    summary = _plan_summary(plan, Settings(concurrency, parallelism, pipelining, tcp_buffer))
    click.echo(json.dumps(summary, indent=1)) if as_json else _print_plan(summary)


def run_parameters(f):
    """The arguments and options of ``run``; the lab's ``dtn-lab run`` takes the same."""
    options = [
        click.argument("src", required=False),
        click.argument("dst", required=False),
        _common_options,
        click.option("--sync", is_flag=True, help="Skip files already identical at the destination."),
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
                     help="With --auto: seconds of probing per size class; then the search settles."),
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
    sys.exit(run_transfer(params))


PathSource = Callable[[Plan], "adaptive.PathModel | None"]
MeterSource = Callable[[Plan], "adaptive.Meter | None"]


def run_transfer(params: dict, figures: PathSource | None = None, meter: MeterSource | None = None) -> int:
    """``run`` with ``run_parameters``' values; returns the exit code.

    ``figures`` and ``meter`` let a caller that knows the plan's nodes (the lab, for its
    testbed) supply path figures for --auto and a meter of throughput over time."""
    p = params
    if p["auto"] and (p["concurrency"] or p["parallelism"]):
        raise click.UsageError("--auto chooses -c/-p itself; leave them out")
    base = runs_dir()
    resume = p["resume"]
    if resume:
        run_id, run_path = resume, os.path.join(base, resume)
        try:
            with open(os.path.join(run_path, "plan.json"), encoding="utf-8") as f:
                plan = Plan.from_json(json.load(f))
            with open(os.path.join(run_path, "settings.json"), encoding="utf-8") as f:
                settings = Settings(**json.load(f))
        except (OSError, ValueError, TypeError, KeyError) as exc:
            click.echo(f"dtn-transfer: run {resume} cannot be resumed: {exc}", err=True)
            return EXIT_FATAL
    else:
        if not p["src"] or not p["dst"]:
            raise click.UsageError("run needs SRC and DST (or --resume RUN)")
        plan = _build_plan(p["src"], p["dst"], p["bdp"], p["nodes"])
        if p["split"] is not None and (plan.source.local or plan.dest.local):
            raise click.UsageError("--split needs GridFTP nodes on both sides (ranges of ftp URLs)")
        settings = Settings(p["concurrency"], p["parallelism"], p["pipelining"], p["tcp_buffer"], p["sync"],
                            p["verify"], retries=p["retries"], stall_timeout=p["stall_timeout"],
                            split=p["split"])
        if p["dry_run"]:
            summary = _plan_summary(plan, settings)
            click.echo(json.dumps(summary, indent=1)) if p["as_json"] else _print_plan(summary)
            return EXIT_OK
        run_id = new_run_id()
        run_path = os.path.join(base, run_id)
        os.makedirs(os.path.join(run_path, "work"), exist_ok=True)
        write_json_atomic(os.path.join(run_path, "plan.json"), plan.to_json())
        write_json_atomic(os.path.join(run_path, "settings.json"), settings.to_json())
        prune_runs(base)
    quiet, as_json = p["quiet"], p["as_json"]
    os.makedirs(os.path.join(run_path, "work"), exist_ok=True)
    journal = Journal(os.path.join(run_path, "journal.jsonl"))
    earlier = journal.results()
    finished = {r for r, e in earlier.items() if e.get("result") in (DONE, SKIPPED)}
    todo = [f for f in plan.files if f.relpath not in finished]
    run = RunState(run_id, run_path, str(plan.source), str(plan.dest), settings.to_json(),
                   files_total=len(plan.files), bytes_total=plan.total_bytes)
    for i, (s, d) in enumerate(plan.pairs):
        mine = [f for f in plan.files if f.pair == i]
        run.pairs.append(PairState(s or "local", d or "local", len(mine), sum(f.size for f in mine)))
    for f in plan.files:
        if f.relpath in finished:
            run.bytes_done += f.size
            run.files_done += earlier[f.relpath]["result"] == DONE
            run.files_skipped += earlier[f.relpath]["result"] == SKIPPED
    run._bytes_at_start = run.bytes_done
    run.publish(force=True)

    show = not quiet and not as_json and sys.stderr.isatty()
    tuner = None
    if p["auto"] or resume:
        from . import adaptive  # late: plain runs do not need the tuner's imports
    if p["auto"] or (resume and adaptive.is_auto_run(run_path)):
        say = None if quiet or as_json else (lambda line: click.echo(f"\r{line}", err=True))
        inputs = adaptive.PathFigureInputs(p["bandwidth"], p["stream_rate"], (p["rtt"] or 0.0) / 1000,
                                           settings.tcp_buffer, figures(plan) if figures else None)
        tuner = adaptive.start(plan, run, run_path, inputs, p["probe_budget"], say,
                               meter(plan) if meter else None)
    executor = Executor(plan, settings, run, journal, os.path.join(run_path, "work"),
                        on_tick=_progress_line if show else None, batcher=tuner.batcher if tuner else None)
    interrupted = []

    def on_signal(signum, _frame):  # noqa: ANN001
        interrupted.append(signum)
        executor.stop()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    lost = executor.execute(todo)
    results = journal.results()
    unattempted = {f.relpath: "not attempted before the run was interrupted" for f in todo
                   if f.relpath not in results or (results[f.relpath]["result"] not in (DONE, SKIPPED)
                                                   and not results[f.relpath].get("final"))}
    unattempted.update(lost)
    run.state = "interrupted" if interrupted else ("completed" if not unattempted else "incomplete")
    run.finished = time.time()
    final = run.publish(force=True) or {}
    if show:
        click.echo("", err=True)
    report = {"run": run_id, "state": run.state, "files": final.get("files"), "bytes": final.get("bytes"),
              "throughput_average": final.get("throughput", {}).get("average"),
              "not_transferred": [{"file": r, "reason": why} for r, why in sorted(unattempted.items())]}
    if tuner is not None:
        report["auto"] = adaptive.finish(tuner, run_path)
    if as_json:
        click.echo(json.dumps(report, indent=1, ensure_ascii=False))
    else:
        if not quiet:
            files = report["files"] or {}
            click.echo(f"run {run_id}: {run.state}; {files.get('done')} sent, "
                       f"{files.get('skipped')} skipped, "
                       f"{len(unattempted)} not transferred of {files.get('total')}; "
                       f"{human(report['bytes']['done'])} at {human(report['throughput_average'] or 0)}/s")
        if tuner is not None and not quiet:
            _print_auto(report["auto"])
        for item in report["not_transferred"]:
            click.echo(f"NOT TRANSFERRED {item['file']!r}: {item['reason']}", err=True)
    if interrupted:
        click.echo(f"interrupted; continue with: dtn-transfer run --resume {run_id}", err=True)
        return EXIT_INTERRUPTED
    return EXIT_PARTIAL if unattempted else EXIT_OK


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


if __name__ == "__main__":
    main()
