"""The pcp-hpc dashboards: cluster summary → node → job / bpftrace, plus per-subsystem views.

History panels query pmproxy's /series API through the PCP Valkey data source
(every host the logger farm records); the few live panels query one node's
pmcd through pmproxy's /pmapi API (PCP Vector).  Links carry the host or job
from the panel the admin clicked.
"""
from __future__ import annotations

from . import catalog
from .model import (
    VALKEY,
    VECTOR,
    Board,
    Panel,
    Query,
    after_slash,
    datasource_variable,
    job_of_id,
    link,
    named_by_query,
    only_named,
    query_variable,
    summed,
    top,
    top_summed,
)

HOST = {"hostname": "$host"}
JOB = {"job": "$job"}
# A job by its instance name, not its job label: PCP 6.0.3's pmlogger logs instance labels
# once per instance domain, when it first logs it, so a job that starts later has no job
# label in the archive (fixed in PCP 6.3.4).  hpc.job.* names a job's instance by its id,
# hpclustre names it <filesystem>/<job id>.
JOB_NAME = {"instance.name": "$job"}
# <filesystem>/<job>, or a raw id of it (job_by_host, archives from before ids were folded)
JOB_LUSTRE = {"instance.name": ("*/$job", "*/*$job[:._]*")}
ONLY_JOB = [only_named("job")]
LUSTRE_JOBS = [after_slash(), job_of_id()]     # instance name → job id
ONLY_JOB_LUSTRE = [*LUSTRE_JOBS, only_named("job")]
# Ranking by the current rate needs a few samples, not the board's range (measured in
# bench/logger_scale.py: the values read fall with the window).
TOP_N_WINDOW = "5m"
BUSIEST = 20
AGENTS_WINDOW = "15m"
# Panels over every host of the cluster, and the job board's panels whose series hold every job
# of a host or server, read one sample a minute (Grafana's min interval, which pmproxy honours):
# a 3-hour view of 1,000 hosts, or of every job on a server, needs no 10 s detail.
CLUSTER_STEP = "1m"
UIDS = {"cluster": "hpc-cluster", "node": "hpc-node", "job": "hpc-job", "lustre": "hpc-lustre",
        "ib": "hpc-ib", "bpftrace": "hpc-bpftrace", "dtn": "hpc-dtn"}

TO_NODE = link("Node detail for ${__field.labels.hostname}", UIDS["node"],
               "&var-host=${__field.labels.hostname}")
TO_JOB = link("Job detail for job ${__field.labels.job}", UIDS["job"], "&var-job=${__field.labels.job}")
TO_JOB_ROW = link("Job detail for job ${__data.fields.Field}", UIDS["job"],
                  "&var-job=${__data.fields.Field}")   # a top-N row, named by the job id
TO_NODE_ROW = link("Node detail for ${__data.fields.Field}", UIDS["node"],
                   "&var-host=${__data.fields.Field}")   # a top-N row, named by the host
TO_BPFTRACE = link("Kernel analysis (bpftrace) of ${__field.labels.hostname}", UIDS["bpftrace"],
                   "&var-host=${__field.labels.hostname}")

ALL_BOARDS = {"type": "dashboards", "tags": ["pcp-hpc"], "asDropdown": True, "title": "pcp-hpc",
              "includeVars": False, "keepTime": True, "icon": "external link", "targetBlank": False,
              "tooltip": "", "url": ""}


def _variables(*extra: dict) -> list[dict]:
    return [datasource_variable("history", VALKEY, "PCP Valkey (history)"),
            datasource_variable("live", VECTOR, "PCP Vector (live)"), *extra]


def _host_variable() -> dict:
    return query_variable("host", "Host", "label_values(hostname)")


def _pick(agent: str, predicate, fallback: str) -> list[str]:
    """Metric names of ``agent`` chosen by ``predicate`` from its table; a pattern if none match.

    Used where an agent's table decides what is worth showing (alarm states,
    bpftrace histograms): new rules or scripts then appear without editing here.
    """
    names = sorted(n for n, info in catalog.catalog().items()
                   if info.agent == agent and ".agent." not in n and predicate(n, info))
    return names or [fallback]


def _queries(names: list[str], where: dict | None = None, legend: str = "$hostname $instance") -> list[Query]:
    return [Query(n, where or {}, legend, glob=n.endswith("*")) for n in names]


def _health_queries(where: dict | None = None) -> list[Query]:
    roots = catalog.agent_roots()
    return [Query(f"{roots[a]}.agent.up", where or {}, f"{a} $hostname")
            for a in sorted(roots) if a != "hpcsample"]


def cluster() -> Board:
    alarms = _pick("hpcalarm", lambda n, i: n.rsplit(".", 1)[-1] in ("state", "firing", "active"),
                   "hpc.alarm.*")
    return Board(UIDS["cluster"], "HPC cluster summary",
                 "Alarms, node and job states, aggregate Lustre, InfiniBand and DTN throughput of every "
                 "host the logger records. Click a series to open that node or job.",
                 _variables(), [ALL_BOARDS]).row(
        "Alarms and agent health",
        Panel("table", "Alarm states", "State of every pcp-hpc pmie alarm rule (hpc.alarm.*): "
              "non-zero means firing.", _queries(alarms), rate=False, width=12,
              transformations=top(50), links=[TO_NODE]),
        Panel("state-timeline", "Agents up", "hpc.<x>.agent.up per host and agent: 0 means a source "
              f"is down (see hpc-pcp status on that node). The last {AGENTS_WINDOW}, one sample a "
              "minute.", _health_queries(), rate=False, width=12, links=[TO_NODE],
              min_interval=CLUSTER_STEP, time_from=AGENTS_WINDOW),
    ).row(
        "Nodes and jobs",
        *[Panel("stat", f"Nodes {state}", f"Nodes the scheduler reports {state}.",
                [Query(f"hpc.job.nodes.{state}", {}, "$hostname")], width=4, height=4, rate=False)
          for state in ("allocated", "mixed", "idle", "drain", "down", "reserved")],
        Panel("timeseries", "Running jobs by partition", "Running jobs per partition or PBS queue.",
              [Query("hpc.job.partition.jobs.running", {}, "$instance")], rate=False, stack=True),
        Panel("timeseries", "Pending jobs by partition", "Pending jobs per partition or PBS queue.",
              [Query("hpc.job.partition.jobs.pending", {}, "$instance")], rate=False, stack=True),
    ).row(
        "Throughput",
        *[Panel("bargauge", f"Busiest nodes: {what}", f"The {BUSIEST} nodes moving the most {how} now: "
                f"each node's latest rate, {parts} summed. Reads the last {TOP_N_WINDOW} only: a "
                "history of every node's lines is unreadable at a thousand nodes and reads a "
                "million points (the node board has each node's history).", queries,
                transformations=top_summed(BUSIEST), links=[TO_NODE_ROW],
                options={"displayMode": "gradient"}, time_from=TOP_N_WINDOW)
          for what, how, parts, queries in (
              ("Lustre client I/O", "Lustre data", "reads and writes over its filesystems",
               [Query("hpc.lustre.client.read.bytes", {}, "$hostname"),
                Query("hpc.lustre.client.write.bytes", {}, "$hostname")]),
              ("InfiniBand traffic", "InfiniBand data", "bytes sent and received on all its ports",
               [Query("hpc.ib.total.xmit.bytes", {}, "$hostname"),
                Query("hpc.ib.total.rcv.bytes", {}, "$hostname")]))],
        *[Panel("bargauge", f"Top jobs by Lustre {word}", f"Jobs {verb} the most now: each job's "
                "latest rate on every OST/MDT server and filesystem (job_stats), summed. Reads the "
                f"last {TOP_N_WINDOW} only, whatever the board's range: a series holds every job of "
                "a server, so a 3-hour read would fetch every job's every sample.",
                [Query(f"hpc.lustre.job.{kind}.bytes", {}, "$instance")],
                transformations=[*LUSTRE_JOBS, *top_summed(10)], links=[TO_JOB_ROW],
                options={"displayMode": "gradient"}, time_from=TOP_N_WINDOW)
          for word, verb, kind in (("writes", "writing", "write"), ("reads", "reading", "read"))],
        Panel("timeseries", "DTN transfer throughput", "Throughput of each dtn-transfer run and "
              "bytes moved by the GridFTP servers.",
              [Query("hpc.dtn.run.throughput.instant", {}, "run $instance"),
               Query("hpc.dtn.gridftp.bytes", {}, "gridftp $hostname")], unit="Bps", width=24),
    )


def node() -> Board:
    return Board(UIDS["node"], "HPC node detail",
                 "One node: CPU and memory (PCP linux agent), Lustre client, InfiniBand ports, the jobs "
                 "running there and bpftrace histograms.", _variables(_host_variable()),
                 [ALL_BOARDS, link("Kernel analysis (bpftrace)", UIDS["bpftrace"], "&var-host=${host}")]).row(
        "CPU and memory",
        Panel("timeseries", "CPU utilisation", "Time spent in user, system and I/O wait, summed over "
              "CPUs (1.0 = one CPU busy).",
              [Query(f"kernel.all.cpu.{m}", HOST, m) for m in ("user", "sys", "wait.total")], stack=True),
        Panel("timeseries", "Memory", "Used, cached and free memory.",
              [Query(f"mem.util.{m}", HOST, m) for m in ("used", "cached", "free")], rate=False),
        Panel("timeseries", "CPU now (live)", "User CPU time from the node's pmcd, polled live.",
              [Query("kernel.all.cpu.user", {}, "user", live=True)], height=6),
        Panel("timeseries", "Processes in D state", "Processes in uninterruptible sleep (state D "
              "in ps) at each sample, from PCP's proc agent (proc.runq.blocked), and those of "
              "them waiting for I/O (/proc/stat procs_blocked, kernel.all.blocked). Brief D "
              "states are ordinary I/O; a level that stays above 0 means tasks stuck in the "
              "kernel, usually waiting for Lustre (RPCs in flight, below) or a disk, with I/O "
              "wait in CPU utilisation (above). The node.d_state alarm fires when it lasts 5 "
              "evaluations (2 minutes).",
              [Query("proc.runq.blocked", HOST, "D state"),
               Query("kernel.all.blocked", HOST, "waiting for I/O")], rate=False, height=6),
    ).row(
        "Lustre client",
        Panel("timeseries", "Lustre I/O", "Bytes read and written per filesystem.",
              [Query("hpc.lustre.client.read.bytes", HOST, "read $instance"),
               Query("hpc.lustre.client.write.bytes", HOST, "write $instance")]),
        Panel("timeseries", "RPCs in flight", "Read and write RPCs in flight per OSC/MDC.",
              [Query("hpc.lustre.client.target.rpcs_in_flight.read", HOST, "read $instance"),
               Query("hpc.lustre.client.target.rpcs_in_flight.write", HOST, "write $instance")],
              rate=False),
    ).row(
        "InfiniBand",
        Panel("timeseries", "Port traffic", "Bytes sent and received per HCA port.",
              [Query("hpc.ib.port.xmit.bytes", HOST, "xmit $instance"),
               Query("hpc.ib.port.rcv.bytes", HOST, "rcv $instance")]),
        Panel("timeseries", "Port errors and congestion", "Symbol errors, link downs, receive errors "
              "and transmit waits (congestion) per port.",
              [Query(f"hpc.ib.port.errors.{e}", HOST, f"{e} $instance")
               for e in ("symbol", "link_downed", "rcv", "xmit_discards")]
              + [Query("hpc.ib.port.xmit.wait", HOST, "xmit_wait $instance")]),
    ).row(
        "Jobs on this node",
        Panel("timeseries", "Job CPU", "CPU time of each job's cgroup on this node.",
              [Query("hpc.job.job.cgroup.cpu_time", HOST, "job $instance")], links=[TO_JOB]),
        Panel("timeseries", "Job memory", "Current memory of each job's cgroup on this node.",
              [Query("hpc.job.job.cgroup.memory.current", HOST, "job $instance")], rate=False,
              links=[TO_JOB]),
    ).row(
        "Kernel (bpftrace)",
        *_bpftrace_panels(HOST),
    )


def _bpftrace_panels(where: dict) -> list[Panel]:
    hists = _pick("hpcbpftrace", lambda n, i: "hist" in n or "lat" in n, "hpc.bpftrace.*")
    return [Panel("heatmap", f"{n.removeprefix('hpc.bpftrace.')}", "Histogram from a curated bpftrace "
                  "script (buckets as instances).", [Query(n, where, "$instance", glob=n.endswith("*"))],
                  rate=True, links=[TO_BPFTRACE], options={"calculate": False})
            for n in hists]


# The other numeric kinds of script variables (hpc.bpftrace.data.<kind>): title and what it shows.
_BPFTRACE_KINDS = {
    "counter": ("Counters", "Events per second of every script's counter and delta variables "
                "(count()/sum() maps), one series per script:@variable:key."),
    "counter_bytes": ("Byte counters", "Bytes per second of every script's variables declared "
                      "'unit bytes' (rwbytes, biolatency's @bio_bytes), one series per "
                      "script:@variable:key."),
    "instant": ("Levels", "Current value of every script's level variables (declared instant, or "
                "undeclared), one series per script:@variable:key."),
}


def _bpftrace_values(where: dict) -> list[Panel]:
    """A panel per numeric kind of script variable besides histograms, from the agent's table.

    Series are named by instance (script:@variable:key) and the query names no script, so a
    script added live shows up here at its first sample, with no change to the board.  Not one
    row per script: a pmseries qualifier selects a host's whole series (every script), and
    PCP 6.0.3's pmlogger records no labels for instances born after it started, so neither a
    {script == ...} query nor a label_values(script) variable would see a live-added script."""
    data = _pick("hpcbpftrace", lambda n, i: n.startswith("hpc.bpftrace.data.")
                 and n.rsplit(".", 1)[-1] in _BPFTRACE_KINDS, "hpc.bpftrace.data.*")
    panels = []
    for n in data:
        kind = n.rsplit(".", 1)[-1]
        title, description = _BPFTRACE_KINDS.get(kind, (kind, "Values of script variables."))
        info = catalog.catalog().get(n)
        panels.append(Panel("timeseries", title, description, [Query(n, where, "$instance")],
                            rate=bool(info and info.is_counter), width=8, links=[TO_BPFTRACE]))
    return panels


def _job_total(title: str, description: str, metric: str, lustre: bool = False) -> Panel:
    """A stat of the job's total: the last value on each node or server, summed."""
    where = {"like": JOB_LUSTRE} if lustre else {"where": JOB_NAME}
    return Panel("stat", title, description, [Query(metric, legend="$instance", **where)], rate=False,
                 width=24 // 5, height=4,
                 transformations=[*(ONLY_JOB_LUSTRE if lustre else ONLY_JOB), *summed()],
                 min_interval=CLUSTER_STEP)


def job() -> Board:
    by_host = named_by_query({"A": "${__field.labels.hostname}"})
    return Board(UIDS["job"], "HPC job detail",
                 "One job: allocation, its total use over all its nodes and the Lustre servers, "
                 "cgroup use on each node and its Lustre I/O on each server. A job is found by its "
                 "instance name (the job id), so jobs that started after pmlogger are shown too.",
                 _variables(query_variable("job", "Job", "label_values(job)")), [ALL_BOARDS]).row(
        "Allocation",
        *[Panel("stat", title, description, [Query(metric, JOB_NAME, "$instance")], rate=False,
                width=6, height=4, transformations=[*ONLY_JOB, *summed(aggregation="max")],
                min_interval=CLUSTER_STEP)
          for title, description, metric in (
              ("CPUs", "CPUs allocated to the job.", "hpc.job.job.cpus"),
              ("Nodes", "Nodes allocated to the job.", "hpc.job.job.nodes"),
              ("Elapsed", "Run time so far.", "hpc.job.job.elapsed"),
              ("Memory requested", "Memory allocated to the job.", "hpc.job.job.memory"))],
    ).row(
        "Whole job (sum over its nodes and the Lustre servers)",
        _job_total("CPU time", "CPU time of the job's cgroups, summed over its nodes (the last "
                   "value recorded on each).", "hpc.job.job.cgroup.cpu_time"),
        _job_total("Memory", "Memory of the job's cgroups, summed over its nodes (the last value "
                   "recorded on each).", "hpc.job.job.cgroup.memory.current"),
        _job_total("Lustre bytes read", "Bytes the job read, summed over every OST/MDT server and "
                   "filesystem (job_stats; the ids of all its client nodes are one job).",
                   "hpc.lustre.job.read.bytes", lustre=True),
        _job_total("Lustre bytes written", "Bytes the job wrote, summed over every OST/MDT server "
                   "and filesystem.", "hpc.lustre.job.write.bytes", lustre=True),
        _job_total("Metadata operations", "Metadata requests of the job, summed over every MDT "
                   "server and filesystem.", "hpc.lustre.job.mdt.ops", lustre=True),
    ).row(
        "Use on each node",
        Panel("timeseries", "CPU by node", "CPU time of the job's cgroup per node.",
              [Query("hpc.job.job.cgroup.cpu_time", JOB_NAME, "$instance")], links=[TO_NODE],
              transformations=ONLY_JOB, overrides=by_host),
        Panel("timeseries", "Memory by node", "Memory of the job's cgroup per node.",
              [Query("hpc.job.job.cgroup.memory.current", JOB_NAME, "$instance")], rate=False,
              links=[TO_NODE], transformations=ONLY_JOB, overrides=by_host),
    ).row(
        "Lustre I/O (server job_stats)",
        Panel("timeseries", "Bytes", "Bytes the job read and wrote, per OST/MDT server (all "
              "filesystems).",
              [Query("hpc.lustre.job.read.bytes", legend="$instance", like=JOB_LUSTRE),
               Query("hpc.lustre.job.write.bytes", legend="$instance", like=JOB_LUSTRE)],
              transformations=ONLY_JOB_LUSTRE, min_interval=CLUSTER_STEP,
              overrides=named_by_query({"A": "read ${__field.labels.hostname}",
                                        "B": "write ${__field.labels.hostname}"})),
        Panel("timeseries", "Metadata operations", "Opens, closes and getattrs the job made.",
              [Query(f"hpc.lustre.job.mdt.{op}", legend="$instance", like=JOB_LUSTRE) for op in
               ("open", "close", "getattr")],
              transformations=ONLY_JOB_LUSTRE, min_interval=CLUSTER_STEP,
              overrides=named_by_query({ref: f"{op} ${{__field.labels.hostname}}" for ref, op in
                                        zip("ABC", ("open", "close", "getattr"), strict=True)})),
    )


def lustre() -> Board:
    return Board(UIDS["lustre"], "Lustre servers",
                 "OST and MDT servers: throughput, operations, capacity, recovery, job_stats.",
                 _variables(), [ALL_BOARDS]).row(
        "Throughput",
        Panel("timeseries", "OST/MDT bytes", "Bytes read and written per target.",
              [Query("hpc.lustre.server.target.read.bytes", {}, "read $instance"),
               Query("hpc.lustre.server.target.write.bytes", {}, "write $instance")], links=[TO_NODE]),
        Panel("timeseries", "Operations", "Operations per target and type.",
              [Query("hpc.lustre.server.target.op.count", {}, "$instance")]),
    ).row(
        "Capacity and health",
        Panel("bargauge", "Free space", "Free kilobytes per target.",
              [Query("hpc.lustre.server.target.kbytes.free", {}, "$instance")], rate=False,
              transformations=top(50)),
        Panel("timeseries", "job_stats entries", "Jobs tracked in job_stats per target: large "
              "counts slow the servers and the agent.",
              [Query("hpc.lustre.server.target.job_stats.entries", {}, "$instance")], rate=False),
    )


def infiniband() -> Board:
    return Board(UIDS["ib"], "InfiniBand",
                 "HCA ports of every host: throughput, errors, congestion and saturated counters.",
                 _variables(), [ALL_BOARDS]).row(
        "Throughput",
        Panel("timeseries", "Transmitted", "Bytes sent per host and port.",
              [Query("hpc.ib.port.xmit.bytes", {}, "$hostname $instance")], links=[TO_NODE]),
        Panel("timeseries", "Received", "Bytes received per host and port.",
              [Query("hpc.ib.port.rcv.bytes", {}, "$hostname $instance")], links=[TO_NODE]),
    ).row(
        "Errors and saturation",
        Panel("timeseries", "Errors", "All error counters of all ports, per host.",
              [Query("hpc.ib.total.errors", {}, "$hostname")], links=[TO_NODE]),
        Panel("timeseries", "Transmit wait", "Ticks with data to send but no credits: congestion.",
              [Query("hpc.ib.port.xmit.wait", {}, "$hostname $instance")], links=[TO_NODE]),
        Panel("stat", "Saturated ports", "Ports with a counter stuck at its maximum: values from them "
              "are no longer trustworthy.", [Query("hpc.ib.total.saturated_ports", {}, "$hostname")],
              rate=False, width=12, height=4, links=[TO_NODE]),
        Panel("stat", "Active ports", "Ports in the ACTIVE state.",
              [Query("hpc.ib.total.ports_active", {}, "$hostname")], rate=False, width=12, height=4),
    )


def bpftrace() -> Board:
    return Board(UIDS["bpftrace"], "Kernel analysis (bpftrace)",
                 "Histograms, counters and levels of the bpftrace scripts (hpc.bpftrace.data.*) of one "
                 "host, curated or added live: every script's variables, named script:@variable:key.",
                 _variables(_host_variable()), [ALL_BOARDS]).row(
        "Histograms", *_bpftrace_panels(HOST),
    ).row(
        "Counters and levels", *_bpftrace_values(HOST),
    )


def dtn() -> Board:
    return Board(UIDS["dtn"], "DTN transfers",
                 "dtn-transfer runs and GridFTP server transfers.", _variables(), [ALL_BOARDS]).row(
        "Runs",
        Panel("timeseries", "Throughput by run", "Instant and average throughput of each run.",
              [Query("hpc.dtn.run.throughput.instant", {}, "instant $instance"),
               Query("hpc.dtn.run.throughput.average", {}, "average $instance")], rate=False),
        Panel("timeseries", "Progress", "Bytes done per run.",
              [Query("hpc.dtn.run.bytes.done", {}, "$instance")], rate=False),
        Panel("timeseries", "Streams", "Concurrency × parallelism actually in use.",
              [Query("hpc.dtn.run.streams", {}, "$instance")], rate=False),
        Panel("timeseries", "Failures and retries", "Files failed and retries per run.",
              [Query("hpc.dtn.run.files.failed", {}, "failed $instance"),
               Query("hpc.dtn.run.retries", {}, "retries $instance")], rate=False),
    ).row(
        "GridFTP servers",
        Panel("timeseries", "Bytes", "Bytes moved by the GridFTP servers (transfer logs).",
              [Query("hpc.dtn.gridftp.bytes", {}, "$hostname")], links=[TO_NODE]),
        Panel("timeseries", "Transfers", "Transfers and failed transfers.",
              [Query("hpc.dtn.gridftp.transfers", {}, "ok $hostname"),
               Query("hpc.dtn.gridftp.failed_transfers", {}, "failed $hostname")]),
    )


BOARDS = {"cluster": cluster, "node": node, "job": job, "lustre": lustre, "infiniband": infiniband,
          "bpftrace": bpftrace, "dtn": dtn}
