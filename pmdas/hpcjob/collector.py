"""Sources and snapshot of the job-scheduler agent (hpc.job.*), Slurm or PBS.

One scheduler query set per refresh, never per fetch:

  Slurm  squeue -h -r --states=all -O <fields|...> jobs, one line per array task
                                                 (node view adds -w <node>)
         sinfo -h -N -O <fields|...>             nodes per partition   (cluster view)
         sdiag                                   scheduler statistics  (cluster view)
  PBS    qstat -f -F json                        jobs (node view: only the jobs that
         pbsnodes -av -F json                      pbsnodes -v <node> lists on this node)
         qstat -Bf                               server status         (cluster view)
  both   the jobs' cgroups on this node (no scheduler query at all)

Why ``squeue -O``: measured on the private test cluster with 3,009 jobs
(best of 5): ``squeue -O`` 0.032 s / 0.48 MB, ``squeue -o`` 0.036 s / 0.40 MB,
``scontrol show job -o`` 0.067 s / 2.9 MB, ``squeue --json`` 0.44 s / 9.3 MB.
``-O`` is the only cheap form that carries the exit status (22.05: the raw wait
status; 23.02+: exit:signal) and allocated TRES (memory, GPUs), so one call answers
everything.
"""
from __future__ import annotations

import os
import pwd
import shutil
import socket
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from operator import attrgetter
from typing import Any

from pmdas.common.agent import Agent
from pmdas.common.config import REFRESH_PROCESS, Option
from pmdas.common.sources import Results, Source, SourceError, run_command

from . import metrics as table
from . import pbs, privatedata, slurm
from .cgroups import JobUsage, read_job_usage
from .model import Job, JobCounts, NodeRow, PartitionNodes, count_jobs, count_nodes

_SINFO_ARGS = ("-h", "-N", "-O", slurm.SINFO_FORMAT)
_ID = attrgetter("id")
PRIVATE_DATA_RECHECK = 300.0   # seconds between two 'scontrol show config' (one RPC per node)


def _scheduler_choice(value: Any) -> str | None:
    return None if value in ("slurm", "pbs", "auto") else "must be slurm, pbs or auto"


def _not_negative(value: Any) -> str | None:
    return None if value >= 0 else "must be 0 or more"


def _argv(value: Any) -> str | None:
    if not value or not all(isinstance(a, str) and a for a in value):
        return "must be a non-empty list of strings (a program and its leading arguments)"
    return None


def _command(default: str, what: str) -> Option:
    return Option([default], f"Program (argv list, no shell) that runs {what}; the agent "
                  "appends its own arguments. Tests point it at fake executables.", list, _argv)


@dataclass(frozen=True, kw_only=True)
class JobSnapshot:
    """One refresh: jobs of interest, their cgroup use, and the cluster-view tallies."""

    scheduler: str
    cluster_view: bool
    reachable: bool
    response_time: float | None
    jobs: Mapping[str, Job] = field(default_factory=dict)
    usage: Mapping[str, JobUsage] = field(default_factory=dict)
    counts: JobCounts | None = None
    partitions: Mapping[str, PartitionNodes] | None = None
    node_states: Mapping[str, int] | None = None
    stats: Mapping[str, Any] | None = None
    taken: float = 0.0  # wall-clock time of the snapshot (epoch seconds)

    @cached_property
    def job_names(self) -> tuple[str, ...]:
        """The job instance names in ``jobs`` order: one sequence shared by every per-job
        metric column of this snapshot."""
        return tuple(self.jobs)

    @cached_property
    def job_columns(self) -> dict[str, tuple]:
        """Each Job field over all jobs, in ``jobs`` order: one transposition (in C) for
        every per-job metric, instead of a pass over 50,000 jobs per metric."""
        if not self.jobs:
            return dict.fromkeys(Job._fields, ())
        return dict(zip(Job._fields, zip(*self.jobs.values(), strict=True), strict=True))


class JobAgent(Agent):
    name = "hpcjob"
    domain = 410
    root = "hpc.job"
    options = {
        "scheduler": Option("auto", "Which scheduler to ask: slurm, pbs, or auto (slurm if "
                            "its squeue command is found, else pbs if qstat is found).", str,
                            _scheduler_choice),
        "cluster_view": Option(False, "Also export cluster-wide job, node and scheduler "
                               "metrics and every job; enable on one node per cluster.", bool),
        "node_name": Option("", "This node's name in the scheduler; empty means the host "
                            "name (the short name also matches).", str),
        "slurm_conf": Option("", "Path given to Slurm commands as SLURM_CONF; empty keeps "
                             "the environment's.", str),
        "squeue_command": _command("squeue", "Slurm's squeue"),
        "sinfo_command": _command("sinfo", "Slurm's sinfo"),
        "sdiag_command": _command("sdiag", "Slurm's sdiag"),
        "scontrol_command": _command("scontrol", "Slurm's 'scontrol show config', asked every "
                                     "5 minutes by an agent not running as root: whether "
                                     "PrivateData=jobs hides other users' jobs from it"),
        "qstat_command": _command("qstat", "PBS's qstat"),
        "pbsnodes_command": _command("pbsnodes", "PBS's pbsnodes"),
        "switch_interval": Option(0.001, "Seconds a thread may keep Python's interpreter lock "
                                  "while a fetch waits for it (sys.setswitchinterval; Python's "
                                  "default is 0.005). With refresh_process false, a cluster-view "
                                  "refresh of 50,000 jobs is busy for most of a second in the "
                                  "agent's process: 0.001 cuts the median delay it adds to a fetch "
                                  "about fourfold (bench/job_refresh.py). 0 keeps Python's "
                                  "default.", (int, float), _not_negative),
        "refresh_process": REFRESH_PROCESS,
    }
    metrics = table.METRICS
    indoms = table.INDOMS

    def __init__(self, config):
        super().__init__(config)
        self.node = config.get("node_name") or socket.gethostname()
        self.scheduler = self._choose_scheduler()
        self._squeue = slurm.SqueueParser()
        self.unconfirmed_jobs = 0     # squeue lines the id listing did not confirm (last refresh)
        self._hidden = ("", -PRIVATE_DATA_RECHECK)   # (why jobs are hidden from us, checked at)
        self._answered_hidden = False

    def needs_root(self) -> str:
        """Slurm answers an unprivileged account, minus what PrivateData hides (said per
        refresh, privatedata.py).  PBS shows an unprivileged account only its own jobs
        unless the server's query_other_jobs is true (false by default): root there, and
        'user: pcp' once query_other_jobs is set."""
        if self.scheduler == "pbs":
            return ("PBS shows other users' jobs to an unprivileged account only when the "
                    "server's query_other_jobs is true (false by default)")
        return ""

    def _choose_scheduler(self) -> str:
        choice = self.config.get("scheduler", "auto")
        if choice != "auto":
            return choice
        if shutil.which(self.config.squeue_command[0]):
            return "slurm"
        return "pbs" if shutil.which(self.config.qstat_command[0]) else "slurm"

    def prepare_process(self) -> None:
        if self.config.get("switch_interval"):
            sys.setswitchinterval(float(self.config.switch_interval))

    def host_names(self) -> set[str]:
        return {self.node, self.node.split(".")[0]}

    # -- sources -----------------------------------------------------------------
    def sources(self) -> Sequence[Source]:
        timeout = float(self.config.timeout)
        wanted: list[tuple[str, Callable[[], Any]]] = [("jobs", self._read_jobs)]
        if self.config.cluster_view:
            wanted += [("nodes", self._read_nodes), ("scheduler", self._read_stats)]
        wanted.append(("cgroups", lambda: read_job_usage(self.config.root, self.host_names())))
        return [Source(name, read, timeout) for name, read in wanted]

    def _run(self, option: str, args: Sequence[str]) -> str:
        env = {"SLURM_CONF": self.config.slurm_conf} if self.config.get("slurm_conf") else None
        # The command's own timeout sits just inside the source's, so a hung controller
        # is killed and reported by the command, not left running.
        return run_command([*self.config[option], *args], max(0.5, self.config.timeout - 0.2), env)

    def _squeue_args(self, fields: str = slurm.SQUEUE_FORMAT) -> list[str]:
        # -r: one line per array task, so that a pending array of 10,000 tasks counts as
        # 10,000 pending jobs, as Slurm's own tools count them.
        args = ["-h", "-r", "--states=all", "-O", fields]
        return args if self.config.cluster_view else [*args, "-w", self.node]

    def scheduler_commands(self) -> dict[str, list[str]]:
        """Source name → the full argv each refresh runs (Slurm; for benchmarks and docs)."""
        commands = {"jobs": [*self.config.squeue_command, *self._squeue_args()],
                    "job ids": [*self.config.squeue_command, *self._squeue_args(slurm.SQUEUE_IDS_FORMAT)]}
        if self.config.cluster_view:
            commands["nodes"] = [*self.config.sinfo_command, *_SINFO_ARGS]
            commands["scheduler"] = list(self.config.sdiag_command)
        return commands

    def _parse(self, parser: Callable[[str], Any], text: str, what: str) -> Any:
        try:
            return parser(text)
        except ValueError as exc:
            raise SourceError(f"{what} could not be parsed: {exc}") from None

    def _jobs_hidden(self) -> str:
        """Why squeue's list is partial for this agent's account (privatedata.py), or "";
        asked again every PRIVATE_DATA_RECHECK seconds, never as root (root sees all)."""
        if os.geteuid() == 0:
            return ""
        why, checked = self._hidden
        if time.monotonic() - checked < PRIVATE_DATA_RECHECK:
            return why
        try:
            private, slurm_user = self._parse(privatedata.parse_show_config,
                                              self._run("scontrol_command", ["show", "config"]),
                                              "scontrol show config")
        except SourceError as exc:
            # Cannot tell: not served as complete either.
            why = f"whether Slurm's PrivateData hides jobs from this agent is unknown: {exc}"
        else:
            why = privatedata.jobs_hidden(private, slurm_user, pwd.getpwuid(os.geteuid()).pw_name)
        self._hidden = (why, time.monotonic())
        return why

    def _read_jobs(self) -> tuple[list[Job], float]:
        started = time.monotonic()
        if self.scheduler == "slurm":
            self._answered_hidden = False
            text = self._run("squeue_command", self._squeue_args())
            seconds = time.monotonic() - started
            jobs = self._squeue.parse(text)
            if text.strip() and not jobs:
                raise SourceError("squeue printed no line in the expected format "
                                  "(check squeue_command and the Slurm version)")
            hidden = self._jobs_hidden()
            if hidden:
                self._answered_hidden = True   # the controller answered: still reachable
                raise SourceError(hidden)
            ids = slurm.listed_ids(self._run("squeue_command", self._squeue_args(slurm.SQUEUE_IDS_FORMAT)))
            jobs, self.unconfirmed_jobs = slurm.cross_checked(jobs, ids)
            return jobs, seconds
        ids: list[str] = []
        if not self.config.cluster_view:
            text = self._run("pbsnodes_command", ["-v", self.node, "-F", "json"])
            rows = self._parse(pbs.parse_pbsnodes_jobs, text, "pbsnodes output")
            ids = sorted(rows)
            if not ids:
                return [], time.monotonic() - started
        text = self._run("qstat_command", ["-f", "-F", "json", *ids])
        seconds = time.monotonic() - started
        return self._parse(pbs.parse_qstat_jobs, text, "qstat output"), seconds

    def _read_nodes(self) -> list[NodeRow]:
        if self.scheduler == "slurm":
            text = self._run("sinfo_command", _SINFO_ARGS)
            rows = slurm.parse_sinfo(text)
            if text.strip() and not rows:
                raise SourceError("sinfo printed no line in the expected format")
            return rows
        return self._parse(pbs.parse_pbsnodes,
                           self._run("pbsnodes_command", ["-av", "-F", "json"]), "pbsnodes output")

    def _read_stats(self) -> dict[str, Any]:
        if self.scheduler == "slurm":
            return self._parse(slurm.parse_sdiag, self._run("sdiag_command", []), "sdiag output")
        return self._parse(pbs.parse_server_status, self._run("qstat_command", ["-Bf"]),
                           "qstat -Bf output")

    # -- snapshot ------------------------------------------------------------------
    def build(self, results: Results) -> JobSnapshot:
        found = results.value("jobs")
        jobs, seconds = found if found is not None else ([], None)
        usage = results.value("cgroups", {}) or {}
        if not self.config.cluster_view:
            mine = self.host_names()
            jobs = [j for j in jobs if mine.intersection(j.hosts) or j.id in usage]
        by_id = dict(zip(map(_ID, jobs), jobs, strict=True))
        for key in usage:  # jobs running here stay visible while the controller is down
            by_id.setdefault(key, Job(id=key, display_id=key))
        counts = partitions = node_states = None
        if self.config.cluster_view:
            counts = count_jobs(jobs) if found is not None else None
            rows = results.value("nodes")
            if rows is not None:
                partitions, node_states = count_nodes(rows)
        return JobSnapshot(scheduler=self.scheduler, cluster_view=bool(self.config.cluster_view),
                           reachable=found is not None or self._answered_hidden,
                           response_time=seconds, jobs=by_id,
                           usage=usage, counts=counts, partitions=partitions,
                           node_states=node_states, stats=results.value("scheduler"),
                           taken=time.time())
