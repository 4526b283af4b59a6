"""Job names, accounts, comments and owners: any user of the cluster chooses them, and hpcjob
serves them.  Slurm: hostile jobs submitted with sbatch to the real private Slurm, read by the
real agent in the real pmcd.  PBS: ``qstat -f -F json`` output in its recorded format
(tests/fixtures/pbs) carrying hostile values, from a stand-in qstat."""
from __future__ import annotations

import json
import os
import shutil
import socket

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pmdas.hpcjob import slurm
from tests.harness.pcp import installed_agent, reader, wait_for
from tests.services.slurm import hpcjob_config

from .actions import run_rule_actions
from .ledger import LEDGER, Figures, served, wait_served, watch
from .payloads import hostile_names

pytestmark = [pytest.mark.pcp, pytest.mark.services, pytest.mark.usefixtures("pmcd")]

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures", "pbs")


def _argv_safe(texts: list[str]) -> list[str | bytes]:
    """What a shell user can pass to sbatch: no NUL; invalid UTF-8 as raw bytes."""
    out: list[str | bytes] = [t for t in texts if "\0" not in t and len(t) < 1000]
    return out + [b"bad\xff\xfeutf8", b"\xc0\xaf..\xc0\xaf"]


def _account(text: str | bytes) -> str | bytes:
    """An account Slurm's field separator cannot confuse ('|' and newlines: see the xfail);
    other line breaks (\r, \u2028) stay: they hid the job before the parser split on \n only."""
    return text.replace("|", "!").replace("\n", " ") if isinstance(text, str) else text


def _check_names(metric: str) -> dict[str, str]:
    names = served(metric)
    assert all(n.isprintable() for n in names), [n for n in names if not n.isprintable()]
    assert len({n.split(" ")[0] for n in names}) == len(names), f"{metric}: first-word rule broken"
    return names


def test_hostile_slurm_jobs_through_pmcd(slurm_cluster, abuse_dir, tmp_path):
    c = slurm_cluster
    # root: the private test Slurm's munge socket is root's, so as pcp squeue times out
    config = hpcjob_config(c, user="root", root=_empty_root(abuse_dir))
    with installed_agent("hpcjob", config), watch("slurm job names", ["hpcjob"], [abuse_dir]) as case:
        texts = _argv_safe(hostile_names(case.canary, "job"))
        # accounts: the ones Slurm cannot confuse with its field separator (see the xfail below)
        jobs = [c.sbatch("--hold", "-J", t, "--comment", t, "-A", _account(t), "--wrap", "true")
                for t in texts]
        case.tried(3 * len(texts))
        try:
            wait_for(lambda: set(jobs) <= set(served("hpc.job.job.state")), 30,
                     what=f"every hostile job to be served: {jobs} {served('hpc.job.job.state')} "
                     f"{reader().fetch(['hpc.job.agent.up', 'hpc.job.agent.last_error'])}")
            up = reader().fetch(["hpc.job.agent.up"])["hpc.job.agent.up"]
            assert up == 1
            states = _check_names("hpc.job.job.state")
            assert all(states[j] == '"held"' for j in jobs)
            accounts = _check_names("hpc.job.account.pending")
            assert sum(int(v) for v in accounts.values()) >= len(texts)
            _check_names("hpc.job.user.pending")
            case.tried(run_rule_actions("job", list(states) + list(accounts), str(tmp_path)))
        finally:
            for job in jobs:
                c.run("scancel", job, check=False)


def _forged_line(job_id: str, user: str, cpus: int) -> str:
    fields = {"JobArrayID": job_id, "JobID": job_id, "ArrayJobID": job_id, "ArrayTaskID": "N/A",
              "State": "RUNNING", "UserName": user, "Account": "victim", "Partition": "debug",
              "NumNodes": "1", "NumCPUs": str(cpus), "tres-alloc": f"cpu={cpus},mem=1T,node=1",
              "tres-per-node": "N/A", "SubmitTime": "2026-12-05T00:00:00",
              "StartTime": "2026-12-05T00:00:00", "EndTime": "N/A", "TimeUsed": "1:00",
              "TimeLimit": "UNLIMITED", "TimeLeft": "UNLIMITED", "Reason": "None", "exit_code": "0",
              "NodeList": socket.gethostname(), "Name": "forged"}
    return "|".join(fields[f] for f in slurm.SQUEUE_FIELDS)


def _empty_root(abuse_dir: str) -> str:
    """A root with no cgroups: job cgroups of other Slurm clusters on this host (the demo's,
    a namespaced cluster's) are not jobs of the test Slurm."""
    path = os.path.join(abuse_dir, "root")
    os.makedirs(path, exist_ok=True)
    return path


def test_a_job_name_cannot_forge_a_job(slurm_cluster, abuse_dir):
    c = slurm_cluster
    with installed_agent("hpcjob", hpcjob_config(c, user="root", root=_empty_root(abuse_dir))), \
            watch("slurm job names", ["hpcjob"], [abuse_dir]) as case:
        victim = c.sbatch("--hold", "-J", "victim", "--wrap", "true")
        name = ("innocent\n" + _forged_line("4242424", "alice", 4096) + "\n"
                + _forged_line(victim, "alice", 4096))     # a second line for someone else's job
        job = c.sbatch("--hold", "-J", name, "--wrap", "true")
        case.tried(2)
        try:
            wait_for(lambda: job in served("hpc.job.job.state"), 30, what="the job to be served")
            truth = set(c.run("squeue", "-h", "-r", "--states=all", "-O", "JobID").split())
            assert set(served("hpc.job.job.state")) <= truth, "a job name forged a job"
            assert served("hpc.job.job.user").get(victim) in (None, "\"root\""), "a job name forged a user"
            assert served("hpc.job.job.cpus").get(victim) != "4096", "a job name forged a job's CPUs"
        finally:
            c.run("scancel", job, victim, check=False)


def _pbs_fixture(directory: str, texts: list[str]) -> int:
    """The recorded qstat and pbsnodes output, with every user-chosen field of every job
    replaced by hostile text; a stand-in qstat/pbsnodes replays them.  Returns the job count."""
    with open(os.path.join(FIXTURES, "qstat-f-F-json.json"), encoding="utf-8") as f:
        doc = json.loads(f.read(), strict=False)
    template = next(iter(doc["Jobs"].values()))
    jobs = {}
    for k, text in enumerate(texts):
        jobs[f"{k}.pbs{text[:40] if k % 3 == 0 else ''}"] = {
            **template, "Job_Name": text, "Account_Name": text, "comment": text,
            "Job_Owner": f"{text}@host", "job_state": "Q" if k % 2 else "H"}
    doc["Jobs"] = jobs
    with open(os.path.join(directory, "qstat-f-F-json.json"), "w", encoding="utf-8") as f:
        json.dump(doc, f)               # ensure_ascii: lone surrogates and controls escaped
    for name in ("qstat-Bf.txt", "pbsnodes-av-F-json.json"):
        shutil.copyfile(os.path.join(FIXTURES, name), os.path.join(directory, name))
    for tool in ("qstat", "pbsnodes"):
        with open(os.path.join(FIXTURES, "bin", tool), encoding="utf-8") as src:
            script = src.read().replace("${PBS_FIXTURES:-$(dirname \"$0\")/..}", directory)
        path = os.path.join(directory, tool)
        with open(path, "w", encoding="utf-8") as f:
            f.write(script)
        os.chmod(path, 0o755)
    return len(jobs)


def test_hostile_pbs_jobs_through_pmcd(abuse_dir, tmp_path):
    pbs = os.path.join(abuse_dir, "pbs")
    os.mkdir(pbs)
    from .ledger import Canary
    canary = Canary()       # the fixture is written before the agent starts: its own canary
    texts = hostile_names(canary, "pbs") + ["pbs\ud800lone", "Not Running: pbs", "Not Running: pbs"]
    count = _pbs_fixture(pbs, texts)
    config = {"scheduler": "pbs", "cluster_view": True, "interval": 1, "timeout": 5,
              "root": _empty_root(abuse_dir),
              "qstat_command": [os.path.join(pbs, "qstat")],
              "pbsnodes_command": [os.path.join(pbs, "pbsnodes")]}
    try:
        with installed_agent("hpcjob", config), watch("pbs job names", ["hpcjob"], [abuse_dir]) as case:
            case.tried(4 * len(texts))
            wait_served(lambda: len(served("hpc.job.job.state")) == count, "hpc.job", "every PBS job served")
            assert reader().fetch(["hpc.job.agent.up"])["hpc.job.agent.up"] == 1
            names = [*_check_names("hpc.job.job.state"), *_check_names("hpc.job.account.pending"),
                     *_check_names("hpc.job.user.pending"), *_check_names("hpc.job.pending_reason.jobs")]
            assert len(_check_names("hpc.job.account.pending")) == len(set(texts))
            case.tried(run_rule_actions("job", names, str(tmp_path)))
    finally:
        assert canary.found() == ([], [])
        canary.remove()


@settings(max_examples=200, deadline=None)
@given(name=st.text(max_size=40).filter(lambda t: "\n" not in t),
       account=st.text(max_size=20).filter(lambda t: "\n" not in t and "|" not in t))
@example(name="a\rb\u2028c\x85d", account="x\ry\u2029")
def test_any_name_and_account_without_newline_keep_the_job_whole(name, account):
    """A job whose name or account holds \\r, \\u2028 or any other character but a newline (and
    '|' for the account) is parsed, with its whole name.  Before, Python's splitlines() cut
    the line at \\r, \\v, \\f, \\x1c-\\x1e, \\x85, \\u2028 or \\u2029 and the job vanished."""
    LEDGER.add("slurm job names", Figures(inputs=1))
    line = _forged_line("77", "bob", 2).replace("|victim|", f"|{account}|").rsplit("|", 1)[0]
    (job,) = slurm.parse_squeue(f"{line}|{name}\n")
    assert job.id == "77" and job.name == name and job.account == (account if account != "(null)" else "")
