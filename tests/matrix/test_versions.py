"""Our agents on each Debian release's own Slurm, PCP, Python bindings and bpftrace.

Run one release alone: ``HPC_PCP_MATRIX=sid .venv/bin/pytest tests/matrix``.
"""
from __future__ import annotations

import json
import re

import pytest

from pmdas.agents import AGENTS
from pmdas.common.listing import golden_path, read_listing

pytestmark = [pytest.mark.services, pytest.mark.root, pytest.mark.matrix]

INSTANCE = re.compile(r'^\s*inst \[\d+ or "(?P<name>[^"]*)"\] value (?P<value>.*)$')


def fetch(node, metric: str) -> dict[str, str]:
    """Instance name → value text of one metric, through the node's pmcd."""
    out = node.pminfo("-f", metric)
    values = {}
    for line in out.splitlines():
        match = INSTANCE.match(line)
        if match:
            values[match["name"]] = match["value"].strip().strip('"')
    return values


def job_value(values: dict[str, str], job_id: str) -> str | None:
    """A job's value; instance names start with the Slurm job id."""
    for name, value in values.items():
        if name.split(" ", 1)[0] == job_id:
            return value
    return None


def wait_job_values(matrix_node, metric: str, job_ids: list[str]) -> dict[str, str]:
    node = matrix_node.node
    return node.wait(lambda: (v := fetch(node, metric)) and all(job_value(v, j) for j in job_ids) and v,
                     60, f"{metric} for jobs {job_ids}")


def test_slurm_version_is_the_release_s(matrix_node):
    out = matrix_node.node.run("sinfo", "--version").stdout
    assert out.split()[-1] == matrix_node.versions["slurm-wlm"].split("-")[0]


@pytest.mark.parametrize("job, exit_code, exit_signal, state", [
    ("exit3", "3", "0", "failed"), ("signal9", "0", "9", "failed"), ("completed", "0", "0", "completed")])
def test_exit_code_and_signal(matrix_node, job, exit_code, exit_signal, state):
    """A job that exits 3, one killed by signal 9 and one that completes, through pmcd."""
    job_id = matrix_node.jobs[job]
    codes = wait_job_values(matrix_node, "hpc.job.job.exit_code", [job_id])
    signals = wait_job_values(matrix_node, "hpc.job.job.exit_signal", [job_id])
    states = fetch(matrix_node.node, "hpc.job.job.state")
    assert (job_value(codes, job_id), job_value(signals, job_id), job_value(states, job_id)) == \
        (exit_code, exit_signal, state)


def test_array_tasks_and_typed_gpus(matrix_node):
    node = matrix_node.node
    array, gpu = matrix_node.jobs["array"], matrix_node.jobs["gpu"]
    tasks = node.wait(lambda: sorted(x for x in fetch(node, "hpc.job.job.array_id").values()
                                     if x.startswith(f"{array}_")), 60, "array tasks")
    assert tasks == [f"{array}_0", f"{array}_1"]
    gpus = wait_job_values(matrix_node, "hpc.job.job.gpus", [gpu])
    assert job_value(gpus, gpu) == "1"


def test_a_running_job_s_cgroup_use(matrix_node):
    """The busy job's cgroup, as this release's slurmd makes it (cgroup/v1, job_<id>), gives
    its CPU time (growing) and memory through pmcd."""
    node, job = matrix_node.node, matrix_node.jobs["busy"]
    first = int(wait_job_values(matrix_node, "hpc.job.job.cgroup.cpu_time", [job]) and
                job_value(fetch(node, "hpc.job.job.cgroup.cpu_time"), job))
    later = node.wait(lambda: (v := job_value(fetch(node, "hpc.job.job.cgroup.cpu_time"), job))
                      and int(v) > first and int(v), 60, "the busy job's CPU time to grow")
    assert later > first > 0
    assert int(job_value(fetch(node, "hpc.job.job.cgroup.memory.current"), job)) > 0
    assert job_value(fetch(node, "hpc.job.job.cgroup.version"), job) == "1"


def test_every_agent_serves_its_pinned_namespace(matrix_node):
    """The names and PMIDs served through this release's pmcd, on its own Python and PCP
    bindings, are the ones committed in metrics.golden."""
    node = matrix_node.node
    for name in matrix_node.install_output:
        agent = AGENTS[name].load()
        listed, _ = read_listing(golden_path(agent))
        expected = {line.split()[0]: line.split()[1] for line in listed}
        served = dict(re.findall(r"^(\S+) PMID: (\S+)$", node.pminfo("-m", agent.root), re.M))
        assert served == expected, (f"{name} on {node.release}: "
                                    f"{sorted(set(served.items()) ^ set(expected.items()))[:10]}")


def test_every_agent_is_up_or_says_why(matrix_node):
    """The agents whose sources this node has (Slurm, bpftrace) are up; the others (no RDMA
    device, no Lustre, no DTN runs or sample files here) are up or name what is missing."""
    node = matrix_node.node
    for name in matrix_node.install_output:
        root = AGENTS[name].load().root
        up = node.wait(lambda r=root: fetch_single(node, f"{r}.agent.up"), 60, f"{name} agent.up")
        if name not in ("hpcjob", "hpcbpftrace"):
            errors = [e for e in fetch(node, f"{root}.agent.source.error").values() if e]
            assert up == "1" or errors, f"{name} on {node.release} is down and says nothing"
        else:
            assert up == "1", f"{name} on {node.release}: {node.pminfo('-f', root + '.agent')}"


def fetch_single(node, metric: str) -> str | None:
    match = re.search(r"^\s*value (.*)$", node.pminfo("-f", metric), re.M)
    return match.group(1).strip() if match else None


def test_curated_bpftrace_scripts_load_or_say_why(matrix_node):
    """Every enabled curated script runs on this release's bpftrace, or is 'unsupported' (or
    'error') with bpftrace's own reason: none is left starting or silent."""
    node = matrix_node.node

    def settled():
        enabled = {s for s, v in fetch(node, "hpc.bpftrace.script.enabled").items() if v == "1"}
        states = {s: v for s, v in fetch(node, "hpc.bpftrace.script.state").items() if s in enabled}
        return states if states and "starting" not in states.values() else None
    states = node.wait(settled, 180, "every enabled curated script to start or fail")
    errors = fetch(node, "hpc.bpftrace.script.error")
    running = [s for s, state in states.items() if state == "running"]
    assert running, f"no curated script runs on bpftrace {matrix_node.versions['bpftrace']}: {errors}"
    for script, state in states.items():
        if state != "running":
            assert errors.get(script), f"{script} is {state} with no reason"


def test_pmproxy_serves_agent_values(matrix_node):
    node = matrix_node.node
    reply = json.loads(node.pmapi("/pmapi/fetch?names=hpc.job.job.state,hpc.ib.agent.up"))
    names = {v["name"] for v in reply["values"]}
    assert names == {"hpc.job.job.state", "hpc.ib.agent.up"}, reply
