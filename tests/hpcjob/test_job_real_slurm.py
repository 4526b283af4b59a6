"""The agent against a real private one-node Slurm (tests/services/slurm.py)."""
from __future__ import annotations

import shutil

from hpcjob_helpers import NO_HOST, make_agent

from pmdas.common.refresh import Refresher


def slurm_agent(cluster, **extra):
    options = dict(scheduler="slurm", slurm_conf=cluster.conf, node_name=cluster.host,
                   timeout=10.0, squeue_command=[shutil.which("squeue")],
                   sinfo_command=[shutil.which("sinfo")], sdiag_command=[shutil.which("sdiag")],
                   root="/")
    return make_agent(**{**options, **extra})


def test_job_shapes_match_scontrol(slurm_cluster):
    c = slurm_cluster
    failing = c.sbatch("-J", "fail", "--wrap", "exit 3")   # first: it needs a free CPU
    killed = c.sbatch("-J", "kill9", "--wrap", "kill -9 $$")
    c.wait_for(lambda: c.job(failing)["JobState"] == "FAILED", 40, "the failing job did not fail")
    c.wait_for(lambda: c.job(killed)["JobState"] == "FAILED", 40, "the killed job did not fail")
    # 22.05 prints the raw wait status: 768 for exit 3, 9 for signal 9 (23.02+: 3:0, 0:9)
    raw = dict(line.split("|") for line in c.run(
        "squeue", "-h", "--states=all", "-O", "JobID:|,exit_code:").split())
    assert (raw[failing], raw[killed]) == ("768", "9")
    running = c.sbatch("-J", "run-één", "--gres=gpu:1", "--mem=200", "--wrap", "sleep 120")
    later = c.sbatch("-J", "later", "--begin=now+1hour", "--wrap", "true")
    toobig = c.sbatch("-J", "toobig", "-n", "8", "--wrap", "true")
    held = c.sbatch("-J", "held", "--hold", "--wrap", "true")
    array = c.sbatch("-J", "arr", "--array=1-3", "-p", "long", "-t", "10", "--wrap", "sleep 120")
    cancelled = c.sbatch("-J", "cancelme", "--begin=now+1hour", "--wrap", "true")
    c.run("scancel", cancelled)
    c.wait_for(lambda: c.job(running)["JobState"] == "RUNNING", 40, "jobs did not reach their states")
    published = Refresher(slurm_agent(c, cluster_view=True)).refresh_once()
    v = published.values
    assert v["hpc.job.agent.up"] == 1, v["hpc.job.agent.last_error"]
    states = v["hpc.job.job.state"]
    assert states[running] == "running" and states[held] == "held"
    assert states[failing] == "failed" and states[cancelled] == "cancelled"
    assert states[later] == "pending" and states[toobig] == "pending"
    assert v["hpc.job.job.exit_code"][failing] == 3 and v["hpc.job.job.exit_signal"][failing] == 0
    assert v["hpc.job.job.exit_code"][killed] == 0 and v["hpc.job.job.exit_signal"][killed] == 9
    for job_id in (failing, killed):
        code, signal = map(int, c.job(job_id)["ExitCode"].split(":"))
        assert (v["hpc.job.job.exit_code"][job_id], v["hpc.job.job.exit_signal"][job_id]) == (code, signal)
    assert v["hpc.job.job.gpus"][running] == 1
    assert v["hpc.job.job.name"][running] == "run-één"
    assert v["hpc.job.job.pending_reason"][later] == "BeginTime"
    # squeue -r: one instance per array task, a started task by its own job id (its cgroup's),
    # a task still waiting in the array's record by the id users write (6_2).
    tasks = {shown: name for name, shown in v["hpc.job.job.array_id"].items()
             if shown.startswith(f"{array}_")}
    assert sorted(tasks) == [f"{array}_1", f"{array}_2", f"{array}_3"]
    for shown, name in tasks.items():
        assert name == (shown if states[name] == "pending" else c.job(shown)["JobId"])
    for job_id in (running, later, toobig, held, failing, cancelled):
        truth = c.job(job_id)
        assert v["hpc.job.job.scheduler_state"][job_id] == truth["JobState"]
        assert v["hpc.job.job.partition"][job_id] == truth["Partition"]
        assert v["hpc.job.job.cpus"][job_id] == int(truth["NumCPUs"])
        assert v["hpc.job.job.user"][job_id] == truth["UserId"].split("(")[0]
    assert v["hpc.job.partition.cpus.total"]["debug"] == 2
    assert v["hpc.job.partition.gpus.total"]["debug"] == 2
    assert v["hpc.job.scheduler.jobs.submitted"] >= 7
    # Node view on this host sees the running job, not the pending ones.  No cgroups read:
    # other Slurm clusters on this machine (the demo's, other tests') have job cgroups here
    # whose ids collide with this cluster's.
    node = Refresher(slurm_agent(c, root=NO_HOST)).refresh_once().values["hpc.job.job.state"]
    assert running in node and later not in node
    for job_id in (running, later, toobig, held, array):
        c.run("scancel", job_id)


def test_controller_restart_is_reported_and_recovered(slurm_cluster):
    c = slurm_cluster
    refresher = Refresher(slurm_agent(c, cluster_view=True, timeout=4.0))
    assert refresher.refresh_once().values["hpc.job.scheduler.reachable"] == 1
    c.stop_controller()
    try:
        down = refresher.refresh_once().values
        assert down["hpc.job.scheduler.reachable"] == 0 and down["hpc.job.agent.up"] == 0
        error = down["hpc.job.agent.source.error"]["jobs"]
        assert error and "\n" not in error
    finally:
        c.start_controller()
    up = refresher.refresh_once().values
    assert up["hpc.job.scheduler.reachable"] == 1, up["hpc.job.agent.last_error"]
    assert up["hpc.job.agent.failed_refreshes"] == 1
