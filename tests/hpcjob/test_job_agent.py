"""The agent end to end through the shared Refresher, with fake scheduler commands."""
from __future__ import annotations

import shutil

from hpcjob_helpers import FIXTURES, make_agent, refresh

from pmdas.common.refresh import Refresher
from pmdas.common.table import COUNTER, check_table
from pmdas.hpcjob.collector import JobAgent

SLURM, PBS = FIXTURES / "slurm", FIXTURES / "pbs"
PBS_BIN = str(PBS / "bin")


def slurm_options(cat_command, **extra):
    return dict(scheduler="slurm", squeue_command=[cat_command(SLURM / "squeue-cluster.txt")],
                sinfo_command=[cat_command(SLURM / "sinfo-cluster.txt")],
                sdiag_command=[cat_command(SLURM / "sdiag-22.05.txt")], **extra)


def test_table_is_consistent_and_counters_are_counters():
    check_table(JobAgent.metrics, JobAgent.indoms)
    for m in JobAgent.metrics:
        if "since_reset" in m.name:       # slurmctld's daily reset: instants (test_job_sdiag_reset)
            assert m.semantics != COUNTER, m.name
        elif "cycles" in m.name or m.name.endswith(("submitted", "cpu_time", "_bytes")):
            assert m.semantics == COUNTER, m.name


def test_node_view_keeps_only_this_nodes_jobs(cat_command):
    p = refresh(**slurm_options(cat_command, node_name="nvb13.cluster.example"))
    assert set(p.values["hpc.job.job.state"]) == {"101"}      # nvb13 is inside nvb[10,13-15]
    assert p.instances["job"]["101"][1] == {"job": "101", "user": "alice", "account": "chem"}
    assert p.values["hpc.job.partition.jobs.running"] is None  # cluster view is off
    assert p.values["hpc.job.agent.source.up"] == {"jobs": 1, "cgroups": 1}


def test_node_with_no_jobs(cat_command):
    p = refresh(**slurm_options(cat_command, node_name="cn999"))
    assert p.values["hpc.job.job.state"] == {} and p.instances["job"] == {}
    assert p.values["hpc.job.agent.up"] == 1


def test_cluster_view(cat_command):
    p = refresh(**slurm_options(cat_command, cluster_view=True, node_name="x"))
    v = p.values
    assert len(v["hpc.job.job.state"]) == 11          # 12 lines, one truncated
    assert v["hpc.job.partition.jobs.pending"]["cpu"] == 2
    assert v["hpc.job.user.gpus"]["alice"] == 24
    assert v["hpc.job.nodes.down"] == 1 and v["hpc.job.partition.nodes.drain"]["cpu"] == 1
    assert v["hpc.job.scheduler.server_threads"] == 3 and v["hpc.job.scheduler.reachable"] == 1
    assert v["hpc.job.job.name"]["111"] == "ünïcode-名前"
    assert set(p.instances["partition"]) == {"cpu", "gpu", "debug"}


def test_cgroup_usage_joins_scheduler_jobs(cat_command, tmp_path):
    tree = tmp_path / "root"
    shutil.copytree(FIXTURES / "cgroup" / "v2-slurm", tree)
    (tree / "sys/fs/cgroup/system.slice/slurmstepd.scope/job_9").rename(
        tree / "sys/fs/cgroup/system.slice/slurmstepd.scope/job_111")
    p = refresh(**slurm_options(cat_command, node_name="nvb11", root=str(tree)))
    assert p.values["hpc.job.job.cgroup.cpu_time"] == {"111": 1_250_000_000, "10": 500_000}
    assert p.values["hpc.job.job.user"] == {"111": "frank"}   # job 10: cgroup only
    assert set(p.instances["job"]) == {"111", "10"}


def test_controller_down_keeps_cgroup_jobs(fake_command):
    fail = fake_command("echo 'squeue: error: Unable to contact slurm controller "
                        "(connect failure)' >&2; exit 1")
    p = refresh(scheduler="slurm", squeue_command=[fail], node_name="n1",
                root=str(FIXTURES / "cgroup" / "v2-slurm"))
    assert p.values["hpc.job.agent.up"] == 0
    assert p.values["hpc.job.scheduler.reachable"] == 0
    error = p.values["hpc.job.agent.source.error"]["jobs"]
    assert "Unable to contact slurm controller" in error and "\n" not in error
    assert set(p.values["hpc.job.job.cgroup.memory.current"]) == {"9", "10"}


def test_hung_controller_times_out(fake_command):
    hang = fake_command("exec sleep 30")
    agent = make_agent(scheduler="slurm", squeue_command=[hang], node_name="n1", timeout=1.0)
    p = Refresher(agent).refresh_once()
    assert p.values["hpc.job.scheduler.reachable"] == 0
    assert "timed out" in p.values["hpc.job.agent.source.error"]["jobs"]
    assert p.health.refresh_seconds < 3


def test_malformed_and_missing_commands(fake_command, tmp_path):
    garbage = fake_command("echo '<html>502 Bad Gateway</html>'")
    p = refresh(scheduler="slurm", squeue_command=[garbage], sinfo_command=[garbage],
                sdiag_command=[garbage], cluster_view=True, node_name="n1")
    errors = p.values["hpc.job.agent.source.error"]
    assert "expected format" in errors["jobs"] and "expected format" in errors["nodes"]
    assert "sdiag output could not be parsed" in errors["scheduler"]
    assert p.values["hpc.job.partition.jobs.running"] is None
    missing = refresh(scheduler="slurm", squeue_command=[str(tmp_path / "nope")], node_name="n1")
    assert "not found" in missing.values["hpc.job.agent.source.error"]["jobs"]


def test_unknown_new_fields_in_sdiag(fake_command):
    sdiag = (SLURM / "sdiag-22.05.txt").read_text().replace(
        "Agent count:", "Shiny new counter: 7\nAgent count:")
    cmd = fake_command(f"cat <<'END'\n{sdiag}END")
    p = refresh(scheduler="slurm", cluster_view=True, node_name="n1", squeue_command=[cmd],
                sinfo_command=[cmd], sdiag_command=[cmd])
    assert p.values["hpc.job.scheduler.server_threads"] == 3
    assert p.values["hpc.job.agent.source.up"]["scheduler"] == 1


def test_jobs_vanish_between_refreshes(fake_command, tmp_path):
    out = tmp_path / "squeue.txt"
    lines = (SLURM / "squeue-cluster.txt").read_text().splitlines()
    out.write_text("\n".join(lines[:3]) + "\n")
    refresher = Refresher(make_agent(scheduler="slurm", cluster_view=True, node_name="x",
                                     squeue_command=[fake_command(f"cat {out}")],
                                     sinfo_command=[fake_command("true")],
                                     sdiag_command=[fake_command("cat " + str(SLURM / "sdiag-22.05.txt"))]))
    first = refresher.refresh_once()
    out.write_text(lines[2] + "\n")
    second = refresher.refresh_once()
    assert set(first.instances["job"]) == {"101", "109", "102"}
    assert set(second.instances["job"]) == {"102"}
    assert second.instances["job"]["102"][0] == first.instances["job"]["102"][0]  # stable id
    assert second.values["hpc.job.partition.jobs.running"] == {"cpu": 0}


def test_pbs_cluster_and_node_view():
    qstat, pbsnodes = [f"{PBS_BIN}/qstat"], [f"{PBS_BIN}/pbsnodes"]
    cluster = refresh(scheduler="pbs", cluster_view=True, node_name="pbs-head",
                      qstat_command=qstat, pbsnodes_command=pbsnodes)
    v = cluster.values
    assert v["hpc.job.agent.up"] == 1, v["hpc.job.agent.source.error"]
    assert v["hpc.job.scheduler.kind"] == "pbs" and v["hpc.job.scheduler.server_state"] == "Active"
    assert v["hpc.job.scheduler.jobs.pending"] == 1
    assert v["hpc.job.partition.nodes.down"]["all"] == 2
    assert v["hpc.job.partition.jobs.failed"]["workq"] == 1
    node = refresh(scheduler="pbs", node_name="node03", qstat_command=qstat,
                   pbsnodes_command=pbsnodes, root=str(FIXTURES / "cgroup" / "v1-pbs"))
    assert node.values["hpc.job.job.user"] == {"17.pbs-server": "dave"}
    assert node.values["hpc.job.job.cgroup.memory.peak"] == {"17.pbs-server": 13_000_000_000}


def test_scheduler_auto_detection(tmp_path):
    assert make_agent(squeue_command=[str(tmp_path / "none")],
                      qstat_command=[f"{PBS_BIN}/qstat"]).scheduler == "pbs"
    assert make_agent(squeue_command=["sh"]).scheduler == "slurm"


def test_every_metric_has_real_help():
    for m in JobAgent.metrics:
        assert len(m.help) > 5 and len(m.long_help) > len(m.help), m.name


def test_fixture_tests_see_no_job_cgroup_of_this_machine(cat_command):
    """After 'make demo' the demo's Slurm jobs have cgroups on this machine; fixture-based
    tests must not see them (they did: job 23 joined the fixture's job 101, state 'other')."""
    import os
    v1 = "/sys/fs/cgroup/memory"
    job = (os.path.join(v1, "slurm_fixture_check", "uid_0", "job_23") if os.path.isdir(v1)
           else "/sys/fs/cgroup/system.slice/slurmstepd.scope/job_23")
    created = []
    path = job
    while not os.path.exists(path):
        created.append(path)
        path = os.path.dirname(path)
    os.makedirs(job)
    try:
        p = refresh(**slurm_options(cat_command, node_name="nvb13.cluster.example"))
        assert set(p.values["hpc.job.job.state"]) == {"101"}
    finally:
        for path in created:          # deepest first: only what this test made
            os.rmdir(path)
