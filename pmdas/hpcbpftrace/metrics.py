"""Metric table of hpcbpftrace: script status, script data by kind, and the controls.

Script variables are mapped onto five fixed metrics by kind (counter, instant,
histogram, string, and counters in bytes) rather than one dynamic metric per variable, so the PMNS never
changes at run time; the instance labels (script, variable, key, bucket, unit) let
Grafana and pmseries select one script's variable, e.g.
``hpc.bpftrace.data.histogram{script=="runqlat"}``.
"""
from pmdas.common.table import (
    BYTES,
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
    Column,
    Indom,
    Metric,
    cluster,
)

STATE_CODES = {"stopped": 0, "starting": 1, "running": 2, "restarting": 3, "failed": 4, "unsupported": 5}


def _data_indom(kind: str, serial: int, what: str) -> Indom:
    return Indom(f"data.{kind}", serial, f"{what} exported by bpftrace scripts",
                 f"One instance per {what} of every running script: 'script:@variable' for a "
                 "single value, 'script:@variable:key' for a keyed map"
                 + (", 'script:@variable:bucket' (or 'key|bucket') for histogram buckets, "
                    "listed in bucket order" if kind == "histogram" else "")
                 + ". Labels: script, variable, key, bucket, unit.",
                 lambda s: s.data[kind].labels if s else {})


INDOMS = [
    Indom("script", 0, "bpftrace scripts known to the agent",
          "One instance per curated or admin-added script, enabled or not.",
          lambda s: {n: {"script": n, "origin": sc.origin} for n, sc in s.scripts.items()}),
    _data_indom("counter", 1, "counter"),
    _data_indom("instant", 2, "instantaneous value"),
    _data_indom("histogram", 3, "histogram bucket"),
    _data_indom("string", 4, "text value"),
    _data_indom("counter_bytes", 5, "byte counter"),
]


def _status(field, default=None):
    return lambda s: {n: getattr(st, field) for n, st in s.statuses.items()}


def _every_script(field, idle):
    """``field`` for every known script; ``idle`` for one that has not run since the agent started
    (alarm rules need a value on every instance to tell "fine" from "unknown")."""
    return lambda s: {n: getattr(s.statuses[n], field) if n in s.statuses else idle for n in s.scripts}


def _points(kind):
    """A data metric's values as a Column over its kind's instance names (converted in bulk)."""
    return lambda s: Column(s.data[kind].names, s.data[kind].values)


STATUS = cluster(0, [
    Metric("script.enabled", U32, INSTANT, NONE, "1 if the script is enabled",
           "1 if the script is enabled (it runs, or is being restarted), 0 if disabled. Curated "
           "scripts start enabled per the 'enabled' setting; admins change it with "
           "'hpc-pcp bpftrace enable|disable' or a store to hpc.bpftrace.control.*.",
           lambda s: {n: int(sc.enabled) for n, sc in s.scripts.items()}, indom="script"),
    Metric("script.state", STRING, INSTANT, NONE, "script state",
           "One of stopped, starting, running, restarting, failed, unsupported. 'unsupported' "
           "means the kernel lacks the probes (e.g. kprobes): it is not retried. 'failed' means a "
           "broken script or a limit (output rate, CPU budget) stopped it; see script.error.",
           _every_script("state", "stopped"), indom="script"),
    Metric("script.state_code", U32, INSTANT, NONE, "script state as a number",
           "0 stopped, 1 starting, 2 running, 3 restarting, 4 failed, 5 unsupported (for alarms "
           "and dashboards).",
           lambda s: {n: STATE_CODES[st] for n, st in _every_script("state", "stopped")(s).items()},
           indom="script"),
    Metric("script.error", STRING, INSTANT, NONE, "why the script is not running",
           "bpftrace's reason when a script failed or is unsupported on this kernel, or the limit "
           "that stopped it; empty while it runs.", _status("error"), indom="script"),
    Metric("script.pid", U32, INSTANT, NONE, "process ID of the script's bpftrace",
           "Process ID of the bpftrace process running the script; 0 when not running.",
           _status("pid"), indom="script"),
    Metric("script.probes", U32, INSTANT, COUNT, "probes attached",
           "Number of probes bpftrace attached for the script.", _status("probes"), indom="script"),
    Metric("script.output_lines", U64, COUNTER, COUNT, "output lines read from the script",
           "Lines of JSON output read from the script's bpftrace since it first started.",
           _status("lines"), indom="script"),
    Metric("script.lost_events", U64, COUNTER, COUNT, "events the kernel dropped",
           "Events lost between the kernel and bpftrace (perf buffer overruns).",
           _status("lost_events"), indom="script"),
    Metric("script.cpu", DOUBLE, COUNTER, SEC, "CPU time of the script's bpftrace process",
           "User and system CPU seconds of the script's bpftrace process, summed over its runs. "
           "Scripts over the cpu_budget setting are stopped.", _status("cpu_seconds"), indom="script"),
    Metric("script.restarts", U64, COUNTER, COUNT, "restarts after a crash",
           "Times the script was restarted (with exponential back-off) after bpftrace exited.",
           _status("restarts"), indom="script"),
    Metric("scripts.running", U32, INSTANT, COUNT, "scripts running now",
           "Number of scripts whose bpftrace is running.",
           lambda s: sum(1 for st in s.statuses.values() if st.state == "running")),
    Metric("scripts.failed", U32, INSTANT, COUNT, "scripts failed or unsupported",
           "Number of enabled scripts that failed or are unsupported on this kernel.",
           lambda s: sum(1 for st in s.statuses.values() if st.state in ("failed", "unsupported"))),
    Metric("script.recent_restarts", U32, INSTANT, COUNT, "restarts in the last 10 minutes",
           "Times the script was restarted after bpftrace exited within the last 10 minutes "
           "(restart_window); the alarm bpftrace.script_restarting watches it.",
           _every_script("recent_restarts", 0), indom="script"),
    Metric("script.full_map_prints", U64, COUNTER, COUNT, "prints of a map at bpftrace's key limit",
           "Prints of a keyed count()/sum() map that held as many keys as bpftrace allows "
           "(BPFTRACE_MAP_KEYS_MAX, 4,096 by default). While a map is full, the kernel drops "
           "events with new keys without a word, so the script's figures are short. Maps the "
           "script clears after each print (exports declared delta, as in the curated scripts) "
           "are checked at every print and only fill up when that many keys come in one print "
           "interval; other maps are checked when a refresh reads them.",
           _status("full_map_prints"), indom="script"),
])

DATA = cluster(1, [
    Metric("data.counter", U64, COUNTER, COUNT, "counters exported by scripts",
           "Values of script variables declared counter or delta, per script, variable and key. "
           "A counter is a count()/sum() map the script never clears: it restarts from zero when "
           "the script's bpftrace restarts. A delta map is cleared by the script after each print "
           "so that it never fills up (bpftrace holds 4,096 keys at most); the agent adds the "
           "prints up, so its totals only grow, across restarts too. A delta variable keeps at "
           "most max_keys keys; the counts of further keys are added to key '[other]'. "
           "Variables declared 'unit bytes' are in data.counter_bytes instead (before, they were "
           "here, in count units).",
           _points("counter"), indom="data.counter"),
    Metric("data.instant", DOUBLE, INSTANT, NONE, "instantaneous values exported by scripts",
           "Values of script variables that are levels (declared instant, or undeclared).",
           _points("instant"), indom="data.instant"),
    Metric("data.histogram", U64, COUNTER, COUNT, "histogram bucket counts exported by scripts",
           "Counts per bucket of hist()/lhist() variables since the script started; the bucket "
           "label gives the range in the variable's unit (label 'unit').",
           _points("histogram"), indom="data.histogram"),
    Metric("data.string", STRING, INSTANT, NONE, "text values exported by scripts",
           "Values of script variables that hold text.", _points("string"), indom="data.string"),
    Metric("data.counter_bytes", U64, COUNTER, BYTES, "byte counters exported by scripts",
           "Values of script variables declared counter or delta with 'unit bytes' (rwbytes "
           "@read_bytes/@write_bytes, biolatency @bio_bytes), per script, variable and key, in "
           "bytes: as data.counter otherwise (delta prints added up by the agent, key "
           "'[other]' past max_keys). Until this metric existed they were exported in "
           "data.counter with count units.",
           _points("counter_bytes"), indom="data.counter_bytes"),
])

CONTROL = cluster(2, [
    Metric("control.add", STRING, DISCRETE, NONE, "store a script's text here to add and enable it",
           "Write (pmstore) the full text of a bpftrace script with a pcp-hpc header (// name:, "
           "// description:, // exports: ...) to add it as an admin script and enable it. Only "
           "users in allowed_users may; see control.result for the outcome.",
           lambda s: ""),
    Metric("control.enable", STRING, DISCRETE, NONE, "store a script name here to enable it",
           "Write a script name to enable (and start) it.", lambda s: ""),
    Metric("control.disable", STRING, DISCRETE, NONE, "store a script name here to disable it",
           "Write a script name to disable (and stop) it.", lambda s: ""),
    Metric("control.remove", STRING, DISCRETE, NONE, "store an admin script name here to remove it",
           "Write the name of an admin-added script to stop and delete it (curated scripts can "
           "only be disabled).", lambda s: ""),
    Metric("control.result", STRING, INSTANT, NONE, "outcome of the last control store",
           "What the last store to a control metric did, or why it was refused.",
           lambda s: s.last_control),
])

METRICS = STATUS + DATA + CONTROL
