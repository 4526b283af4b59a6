"""Tier 3: every dashboard query against a real pmproxy fed by a real pmlogger.

Agents with a moving demo (``hpc_demo.<agent>.prepare`` and ``advance``) are installed into the
local pmcd on demo sources; pmlogger records them with a configuration that
pmlogconf builds from our groups; pmproxy discovers the archive and loads it
into a private Redis.  Then each template variable and each panel target is
run the way grafana-pcp runs it (/series/labels, /series/query, /series/values,
/pmapi/fetch).  Panels of installed agents must return data; queries of other
agents must at least be accepted by pmproxy's parser.
"""
from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import socket
import tempfile
import time

import pytest

from hpc_pcp import logger
from hpc_pcp.agents import available
from hpc_pcp.dashboards.base_metrics import BASE_METRICS, LINUX, PROC
from tests.harness.pcp import installed_agent, reader, run_pcp, wait_for, wait_refreshed

from . import stack as stack_module
from .panels import label_variables, run_every_panel
from .stack import Stack

pytestmark = [pytest.mark.services, pytest.mark.root, pytest.mark.usefixtures("pmcd")]
# Every agent whose demo produces data: fixture trees (hpclustre, hpcib), a private real
# Slurm with jobs in real cgroups (hpcjob), real bpftrace on this kernel (hpcbpftrace) and
# real transfers on the DTN testbed (hpcdtn), and a real pmie on the alarm rules (hpcalarm; last,
# so that its rules see every other agent).
DASHBOARD_AGENTS = ("hpclustre", "hpcib", "hpcjob", "hpcbpftrace", "hpcdtn", "hpcalarm")
# Data each agent's panels need before pmlogger starts (bpftrace prints per interval).
FIRST_DATA = {"hpcbpftrace": "hpc.bpftrace.data.histogram"}
# No curated script exports a level (hpc.bpftrace.data.instant, the bpftrace board's Levels
# panel): one is added as an admin would, by a store to the agent's control metric.
LEVEL_SCRIPT = """// name: panel_levels
// description: Seconds past the minute, as a level, for the bpftrace board's Levels panel.
// exports: @second instant unit count: seconds past the minute
interval:s:1
{
	@second = (nsecs / 1000000000) % 60;
	print(@second);
}
"""


def base_metrics_section() -> str:
    """The pmlogger section for PCP's own metrics our panels read (CPU, memory, D state): on a
    logger PCP's default pmlogconf groups log them (proc.runq.blocked: tools/collectl)."""
    names = [n for n, m in BASE_METRICS.items() if m.agent in (LINUX, PROC)]
    return "\n# PCP's own metrics the node dashboard shows\nlog mandatory on default {\n    " + \
        " ".join(names) + "\n}\n"


def _demo_agents() -> dict[str, object]:
    out = {}
    for name in DASHBOARD_AGENTS:
        if name not in available():
            continue
        try:
            module = importlib.import_module(f"hpc_demo.{name}")
        except ImportError:
            continue
        if hasattr(module, "prepare"):
            out[name] = module
    return out


@pytest.fixture(scope="module")
def live():
    """(stack, installed agent names, host) with archives of the installed agents in Redis."""
    stack = Stack(tempfile.mkdtemp(prefix="hpc-logger-"))
    os.chmod(stack.directory, 0o755)
    host = socket.gethostname()
    demos = _demo_agents()
    with contextlib.ExitStack() as agents:
        try:
            for name, module in demos.items():
                directory = os.path.join(stack.directory, "demo", name)
                os.makedirs(directory)
                config = {**module.prepare(directory), "interval": 1}
                agents.enter_context(installed_agent(name, config))
                wait_refreshed(available()[name].load().root)
            for name, module in demos.items():  # the demo ticker's first tick (starts pmie)
                if hasattr(module, "advance"):
                    module.advance(os.path.join(stack.directory, "demo", name))
            for name, metric in FIRST_DATA.items():
                if name in demos:
                    wait_for(lambda m=metric: reader().fetch([m])[m], 60, what=f"values of {metric}")
            if "hpcbpftrace" in demos:   # as root over pmcd's local socket (allowed_users)
                stored = run_pcp("pmstore", "-h", "local:", "hpc.bpftrace.control.add", LEVEL_SCRIPT)
                assert stored.returncode == 0, stored.stdout + stored.stderr
                wait_for(lambda: reader().fetch(["hpc.bpftrace.data.instant"])["hpc.bpftrace.data.instant"],
                         60, what="values of hpc.bpftrace.data.instant from the added script")
            if {"hpcjob", "hpclustre"} <= demos.keys():
                # The demo's running Slurm jobs get Lustre job_stats entries at the next advance;
                # have them before pmlogger starts: here, instances that appeared after
                # pmlogger's first samples were not found through pmproxy 6.0.3's /series API.
                job_demo = os.path.join(stack.directory, "demo", "hpcjob")
                running = wait_for(lambda: demos["hpcjob"].running_jobs(job_demo), 60,
                                   what="demo jobs running")
                demos["hpclustre"].advance(os.path.join(stack.directory, "demo", "hpclustre"))
                # hpclustre folds the entries (SLURM_JOB<id>:0:<host>) into <filesystem>/<id>
                wait_for(lambda: any(k.split("/", 1)[-1] in running for k in reader().fetch(
                    ["hpc.lustre.job.write.bytes"])["hpc.lustre.job.write.bytes"] or ()), 30,
                    what="Lustre job_stats entries of the demo's Slurm jobs")
            if "hpcalarm" in demos:  # the demo's alarm: its held Slurm jobs pend "too long"
                wait_for(lambda: 1 in (reader().fetch(["hpc.alarm.firing"])["hpc.alarm.firing"]
                                       or {}).values(), 120, what="a demo alarm to fire")
            stack.start_redis()
            archives = os.path.join(stack.directory, "archives")
            os.makedirs(archives)
            with pytest.MonkeyPatch.context() as patch:   # every base metric a panel reads
                patch.setattr(stack_module, "LINUX_SECTION", base_metrics_section())
                config = stack.pmlogger_config(logger.pmlogconf_groups())
            text = open(config).read()
            for name in demos:
                assert f"hpc/{name}:y:" in text or available()[name].load().root in text, text
            stack.start_pmproxy(archives)
            stack.start_pmlogger(config, archives, host, logger.pmlogger_interval(1))
            for _ in range(3):  # counters move between samples, so rates exist
                for name, module in demos.items():
                    if hasattr(module, "advance"):
                        module.advance(os.path.join(stack.directory, "demo", name))
                time.sleep(1.2)
            for name in demos:
                root = available()[name].load().root
                wait_for(lambda r=root: stack.get("/series/query", expr=f"{r}.agent.up"), 60,
                         what=f"pmproxy to load {root} from the archive")
            yield stack, set(demos), host
        finally:
            keep = os.environ.get("HPC_PCP_KEEP_ARCHIVES")  # how tests/fixtures/archives/dashboards-* is made
            if keep and os.path.isdir(os.path.join(stack.directory, "archives")):
                shutil.copytree(os.path.join(stack.directory, "archives"), keep, dirs_exist_ok=True)
            for name, module in demos.items():
                if hasattr(module, "teardown"):
                    module.teardown(os.path.join(stack.directory, "demo", name))
            stack.stop()


def _job_with_cgroup(stack) -> str:
    """A job id the job dashboard can show in full: a Slurm job with cgroup use recorded and
    Lustre I/O in the servers' job_stats (a job that started after the Lustre demo's last
    advance has the first but not the second)."""
    series = stack.get("/series/query", expr="hpc.job.job.cgroup.memory.current")
    assert series, "no hpc.job.job.cgroup.memory.current series in pmproxy"
    names = sorted({i["name"] for i in stack.get("/series/instances", series=series[0])})
    assert names, "the cgroup memory series has no instances"

    def with_lustre() -> str | None:  # pmproxy loads the archive as pmlogger writes it
        return next((job for job in names if stack.get(
            "/series/query", expr=f'hpc.lustre.job.write.bytes{{job == "{job}"}}')), None)
    try:
        return wait_for(with_lustre, 60, 1, what=f"Lustre job_stats series for one of the jobs {names}")
    except AssertionError as exc:
        lustre = stack.get("/series/query", expr="hpc.lustre.job.write.bytes")
        insts = stack.get("/series/instances", series=lustre[0]) if lustre else []
        shown = sorted(i["name"] for i in insts)[:8]
        raise AssertionError(f"{exc}; hpc.lustre.job.write.bytes instances: {shown} "
                             f"(of {len(insts)})") from None


def test_template_variables_resolve(live):
    stack, installed, host = live
    for _, _, label in label_variables():
        reply = stack.get("/series/labels", names=label)
        assert isinstance(reply, dict), reply
        if label == "hostname":
            assert host in reply.get("hostname", []), reply


def test_every_panel_query(live):
    """Every query parses; every panel of an installed agent shows data from at least one target."""
    stack, installed, host = live
    job = _job_with_cgroup(stack)
    values = {"host": host, "job": job}
    now = int(time.time())
    run = run_every_panel(stack.get, values, installed, (now - 120, now + 10))
    print(f"panels: {run.panels}, with data: {run.with_data}, installed: {sorted(installed)}")
    assert not run.empty, "panels of installed agents without data: " + "; ".join(run.empty)
    assert run.with_data, "no panel returned data"


def test_the_d_state_count_reaches_the_series_store(live):
    """proc.runq.blocked (the node board's Processes in D state, the node.d_state alarm's
    metric) is logged and loaded: the pmproxy.conf we write keeps per-process metrics out
    of the store, not the system-wide proc ones (its old proc.* exclusion dropped it)."""
    stack = live[0]
    wait_for(lambda: stack.get("/series/query", expr="proc.runq.blocked"), 60,
             what="proc.runq.blocked in pmproxy's series")
