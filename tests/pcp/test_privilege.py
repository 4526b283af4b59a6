"""Tier 2: agents run with least privilege (pmdas/common/privilege.py).

Installed into the real pmcd with their defaults, every agent but hpcbpftrace runs as the pcp
user, its refresh child too, as /proc/<pid>/status shows; hpcbpftrace stays root.  The state
directory is handed to the pcp user without following what another account planted in it.
hpcjob as pcp meets Slurm's PrivateData: a job list it knows to be partial is unavailable,
never an empty cluster.  Fixture paths reach an agent running as pcp through the harness
(tests/harness/pcp.py, reachable_by_agents).
"""
from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import time

import pytest

from hpc_demo.localslurm import LocalSlurm
from pmdas.agents import AGENTS
from pmdas.common.privilege import Account, hand_over_state_dir
from pmdas.hpcjob import privatedata
from tests.harness.pcp import (
    agent_processes,
    installed_agent,
    process_status,
    reader,
    wait_for,
    wait_refreshed,
)
from tests.services.slurm import hpcjob_config

pytestmark = [pytest.mark.pcp, pytest.mark.usefixtures("pmcd")]

PCP = pwd.getpwnam("pcp")
STAYS_ROOT = {"hpcbpftrace": "bpftrace loads BPF programs"}
REFRESH_CHILD = {"hpcjob", "hpclustre"}    # refresh_process is on by default for these


def _ids(pid: int) -> tuple[set[int], set[int]]:
    status = process_status(pid)
    return set(map(int, status["Uid"].split())), set(map(int, status["Gid"].split()))


def test_every_agent_but_bpftrace_runs_as_pcp_and_so_does_its_refresh_child():
    """Defaults as shipped (no configuration file): a node without Lustre statistics in
    debugfs, so hpclustre needs no root here."""
    assert not os.path.isdir("/sys/kernel/debug/lustre"), "this node keeps Lustre stats in debugfs"
    seen = {}
    for name, entry in sorted(AGENTS.items()):
        root = entry.load().root
        with installed_agent(name, {}):      # an empty file: the defaults, not /etc/pcp/hpc's
            pid, children = agent_processes(name)
            uids, gids = _ids(pid)
            seen[name] = uids
            if name in STAYS_ROOT:
                assert uids == {0}, f"{name} should stay root ({STAYS_ROOT[name]}): uids {uids}"
                continue
            assert uids == {PCP.pw_uid} and gids == {PCP.pw_gid}, f"{name}: uids {uids} gids {gids}"
            assert "0" not in process_status(pid)["Groups"].split(), "still in group root"
            if name in REFRESH_CHILD:
                assert children, f"{name}: no refresh child"
                for child in children:
                    assert _ids(child)[0] == {PCP.pw_uid}, f"{name}'s refresh child {child}"
            up = reader().fetch([f"{root}.agent.refreshes"])[f"{root}.agent.refreshes"]
            assert up and up >= 1
    print("agents' uids:", seen)


def test_state_directory_is_handed_over_without_following_planted_links(tmp_path):
    parent = tmp_path / "hpc"
    parent.mkdir(mode=0o755)
    os.chmod(tmp_path, 0o755)
    states = parent / "hpcsample"
    states.mkdir()
    (states / "hpcsample.0.json").write_text('{"next": 1, "ids": {"a": 0}}')
    os.chmod(states / "hpcsample.0.json", 0o600)          # as root's mkstemp left it
    secret = tmp_path / "secret"
    secret.write_text("root's\n")
    os.chmod(secret, 0o600)
    os.symlink(secret, states / "hpcsample.1.json")       # planted: chown would follow it
    os.link(secret, states / "hpcsample.2.json")          # planted hard link
    pcp = Account("pcp", PCP.pw_uid, PCP.pw_gid, "test")
    hand_over_state_dir(str(states), pcp)
    st = os.stat(states)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (PCP.pw_uid, PCP.pw_gid, 0o755)
    mine = os.stat(states / "hpcsample.0.json")
    assert (mine.st_uid, stat.S_IMODE(mine.st_mode)) == (PCP.pw_uid, 0o644)
    assert os.stat(secret).st_uid == 0, "a planted link handed root's file to pcp"
    # pcp plants a symlink; root takes the directory back: the link goes, its target stays root's.
    os.unlink(states / "hpcsample.1.json")
    os.symlink("/etc/shadow", states / "hpcsample.3.json")
    os.lchown(states / "hpcsample.3.json", PCP.pw_uid, PCP.pw_gid)
    hand_over_state_dir(str(states), Account("root", 0, 0, "test"))
    assert os.stat(states).st_uid == 0 and os.stat(states / "hpcsample.0.json").st_uid == 0
    assert not os.path.lexists(states / "hpcsample.3.json")
    assert os.stat("/etc/shadow").st_uid == 0
    # The parent must be root's alone.
    os.chmod(parent, 0o777)
    with pytest.raises(Exception, match="not root's alone"):
        hand_over_state_dir(str(states), pcp)


def test_private_data_parsing():
    private, user = privatedata.parse_show_config(
        "SlurmUser               = slurm(64030)\nPrivateData             = jobs,nodes,usage,users\n")
    assert private == {"jobs", "nodes", "usage", "users"} and user == "slurm"
    assert privatedata.parse_show_config("PrivateData             = none\n")[0] == frozenset()
    assert "PrivateData=jobs" in privatedata.jobs_hidden(private, user, "pcp")
    assert privatedata.jobs_hidden(private, user, "slurm") == ""
    assert privatedata.jobs_hidden(private, user, "root") == ""
    assert privatedata.jobs_hidden(frozenset({"usage"}), user, "pcp") == ""
    with pytest.raises(ValueError):
        privatedata.parse_show_config("not the output\n")


def _submit_as(cluster: LocalSlurm, user: str, name: str) -> str:
    argv = [shutil.which("sbatch"), "--parsable", "-J", name, "--chdir=/tmp", "-o", "/dev/null",
            "--begin=now+1hour", "--wrap", "true"]
    done = subprocess.run(["su", user, "-s", "/bin/sh", "-c", " ".join(argv)], env=cluster.env,
                          capture_output=True, text=True, timeout=30, check=True)
    return done.stdout.strip()


def test_hpcjob_as_pcp_under_private_data_serves_no_partial_job_list():
    """PrivateData=jobs: squeue run as pcp lists none of another user's jobs (measured below,
    exit 0).  hpcjob says the job list is unavailable and why, the controller reachable; the
    jobs with a cgroup on this host stay, as while the controller is down."""
    directory = tempfile.mkdtemp(prefix="hpc-slurm-private-")
    os.chmod(directory, 0o755)
    cluster = LocalSlurm(directory, extra_conf="PrivateData=jobs,usage,users\nFirstJobId=77000\n",
                         slurmd=False, cluster="private")   # job ids apart from this host's cgroups
    try:
        cluster.start()
        job = _submit_as(cluster, "nobody", "secret-name")
        assert job in cluster.run("squeue", "-h", "-o", "%i")
        as_pcp = subprocess.run(["su", "pcp", "-s", "/bin/sh", "-c", f"{shutil.which('squeue')} -h -o %i"],
                                env=cluster.env, capture_output=True, text=True, timeout=30)
        assert as_pcp.returncode == 0 and as_pcp.stdout.strip() == "", "PrivateData did not hide the job"
        with installed_agent("hpcjob", hpcjob_config(cluster, refresh_process=True)):
            names = ["hpc.job.job.state", "hpc.job.job.name", "hpc.job.jobs.pending",
                     "hpc.job.scheduler.reachable", "hpc.job.agent.source.error", "hpc.job.agent.up"]

            def settled():
                values = reader().fetch(names)
                return values if values["hpc.job.agent.source.error"] else None
            values = wait_for(settled, 30, what="hpcjob's first refreshes")
            print(json.dumps({k: v for k, v in values.items()}, default=str)[:800])
            assert "PrivateData=jobs" in values["hpc.job.agent.source.error"]["jobs"]
            # Jobs with a cgroup on this host stay (state 'other', as while the controller is
            # down); none of the scheduler's list is served, not even as an empty one.
            assert job not in (values["hpc.job.job.state"] or {}), "a partial job list was served"
            assert not values["hpc.job.job.name"], "job names from a partial list were served"
            assert values["hpc.job.jobs.pending"] is None, "a job count known to be partial was served"
            assert values["hpc.job.scheduler.reachable"] == 1
            assert values["hpc.job.agent.up"] == 0
            assert "secret-name" not in json.dumps(values, default=str)
    finally:
        cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)


def test_dtn_runs_written_by_a_user_are_read_by_hpcdtn_as_pcp(tmp_path):
    """dtn-transfer writes a run's state.json 0644 (its writer's mkstemp made it 0600, which
    the pcp user could not read); the run directory belongs to the user who ran it."""
    from dtn_transfer.state import write_json_atomic
    runs = tmp_path / "runs"
    run = runs / "20261205-020000-abcdef"
    run.mkdir(parents=True)
    state = {"version": 1, "run": run.name, "state": "finished", "pid": 1, "host": "elsewhere",
             "started": time.time() - 5, "updated": time.time(), "source": "a:1/x", "dest": "b:2/y",
             "settings": {}, "files": {"total": 2, "done": 2, "skipped": 0, "failed": 0},
             "bytes": {"total": 10, "done": 10, "moved": 10}, "pairs": {}}
    write_json_atomic(str(run / "state.json"), state)
    nobody = pwd.getpwnam("nobody")
    for path in (runs, run, run / "state.json"):
        os.chown(path, nobody.pw_uid, nobody.pw_gid)
    with installed_agent("hpcdtn", {"runs_directory": str(runs), "interval": 1}):
        wait_refreshed("hpc.dtn", 2)
        values = reader().fetch(["hpc.dtn.agent.up", "hpc.dtn.agent.last_error", "hpc.dtn.run.state"])
        assert values["hpc.dtn.agent.up"] == 1, values["hpc.dtn.agent.last_error"]
        assert run.name in (values["hpc.dtn.run.state"] or {}), values


def test_refresh_child_gets_its_settings_from_the_agent_not_the_file():
    """The configuration file may be root's alone (here: in a 0700 directory); the refresh
    child runs as pcp and could not read it.  It builds the agent from the settings its parent
    read, so the interval it reports is the file's and there is no configuration error (before:
    the child fell back to the defaults, 10 s, with 'cannot be read (Permission denied)')."""
    with installed_agent("hpclustre", {"interval": 3}) as directory:
        assert stat.S_IMODE(os.stat(directory).st_mode) & 0o077 == 0, "the file is not root's alone"
        pid, children = agent_processes("hpclustre")
        assert children and all(_ids(child)[0] == {PCP.pw_uid} for child in children)
        wait_refreshed("hpc.lustre", 2)
        got = reader().fetch(["hpc.lustre.agent.interval", "hpc.lustre.agent.config_error"])
        assert got == {"hpc.lustre.agent.interval": 3.0, "hpc.lustre.agent.config_error": ""}, got
