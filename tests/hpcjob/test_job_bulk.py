"""The paths written for big clusters (50,000 jobs per refresh) give what the plain ones gave:
the remembering squeue parser, array tasks as instances, bulk tallies, per-job columns."""
from __future__ import annotations

from collections import Counter, defaultdict

import pytest
from hpcjob_helpers import FIXTURES, make_agent, refresh
from hypothesis import given
from hypothesis import strategies as st

from pmdas.common.table import Column
from pmdas.hpcjob import slurm
from pmdas.hpcjob.model import ACTIVE_STATES, HELD, JOB_STATES, PENDING, Job, Tally, count_jobs

SLURM = FIXTURES / "slurm"

# squeue -h -r --states=all -O SQUEUE_FORMAT of array 6 (tasks 1-3, task 1 started as job 8,
# the other two still in the array's record) and array 2 (held, tasks 1-2), as 22.05 prints it.
ARRAY_LINES = """\
6_2|6|6|2|PENDING|root|(null)|long|1|1|cpu=1,mem=100M,node=1,billing=1|N/A|2026-11-21T01:00:00|N/A|N/A|0:00|10:00|10:00|Resources|0||arr
6_3|6|6|3|PENDING|root|(null)|long|1|1|cpu=1,mem=100M,node=1,billing=1|N/A|2026-11-21T01:00:00|N/A|N/A|0:00|10:00|10:00|Resources|0||arr
6_1|8|6|1|RUNNING|root|(null)|long|1|1|cpu=1,mem=100M,node=1,billing=1|N/A|2026-11-21T01:00:00|2026-11-21T01:00:01|2026-11-21T01:10:01|0:12|10:00|9:48|None|0|vm|arr
2_1|2|2|1|PENDING|root|(null)|debug|1|1|cpu=1,mem=100M,node=1,billing=1|N/A|2026-11-21T01:00:00|N/A|N/A|0:00|UNLIMITED|UNLIMITED|JobHeldUser|0||held
2_2|2|2|2|PENDING|root|(null)|debug|1|1|cpu=1,mem=100M,node=1,billing=1|N/A|2026-11-21T01:00:00|N/A|N/A|0:00|UNLIMITED|UNLIMITED|JobHeldUser|0||held
"""


def test_array_tasks_are_instances_of_their_own():
    jobs = {j.id: j for j in slurm.parse_squeue(ARRAY_LINES)}
    assert set(jobs) == {"6_2", "6_3", "8", "2_1", "2_2"}     # no two tasks share a name
    assert jobs["8"].display_id == "6_1" and jobs["8"].state == "running"
    assert jobs["6_2"].display_id == "6_2" and jobs["2_1"].state == HELD
    counts = count_jobs(jobs.values())
    assert counts.by_partition["long"]["pending"] == 2 and counts.by_partition["debug"]["held"] == 2


def test_agent_asks_squeue_for_every_array_task():
    options = dict(scheduler="slurm", node_name="n1", squeue_command=["squeue"],
                   sinfo_command=["sinfo"], sdiag_command=["sdiag"])
    cluster = make_agent(cluster_view=True, **options).scheduler_commands()
    assert cluster["jobs"][:4] == ["squeue", "-h", "-r", "--states=all"]
    assert cluster["nodes"][:4] == ["sinfo", "-h", "-N", "-O"] and cluster["scheduler"] == ["sdiag"]
    assert cluster["job ids"] == ["squeue", "-h", "-r", "--states=all", "-O", "JobArrayID:|"]
    node = make_agent(**options).scheduler_commands()
    assert node["jobs"][-2:] == ["-w", "n1"] and node["job ids"][-2:] == ["-w", "n1"]
    assert set(node) == {"jobs", "job ids"}


def test_remembering_parser_reuses_unchanged_lines_only():
    text = (SLURM / "squeue-cluster.txt").read_text()
    parser = slurm.SqueueParser()
    first = {j.id: j for j in parser.parse(text)}
    lines = text.splitlines()
    lines[0] = lines[0].replace("|16:10:00|", "|16:10:30|")   # job 101's clock moved
    moved = "\n".join(lines[1:] + lines[:1]) + "\n"          # and the order changed
    second = {j.id: j for j in parser.parse(moved)}
    assert second == {j.id: j for j in slurm.parse_squeue(moved)}   # same as a fresh parse
    assert second["101"].elapsed == first["101"].elapsed + 30
    assert second["101"] is not first["101"] and second["103"] is first["103"]
    assert {j.id for j in parser.parse(lines[2] + "\n")} == {"102"}   # vanished jobs are gone
    assert parser.parse("") == []


def test_hosts_are_expanded_on_demand_and_node_view_filters_by_them(cat_command):
    job = Job(id="1", node_list="nva[59-60],nvb13")
    assert job.hosts == ("nva59", "nva60", "nvb13") and Job(id="2").hosts == ()
    p = refresh(scheduler="slurm", node_name="nva60",
                squeue_command=[cat_command(SLURM / "squeue-cluster.txt")])
    assert set(p.values["hpc.job.job.state"]) == {"101"}


def test_per_job_metrics_are_columns_that_read_as_dicts(cat_command):
    p = refresh(scheduler="slurm", cluster_view=True, node_name="x",
                squeue_command=[cat_command(SLURM / "squeue-cluster.txt")],
                sinfo_command=[cat_command(SLURM / "sinfo-cluster.txt")],
                sdiag_command=[cat_command(SLURM / "sdiag-22.05.txt")])
    states, nodes = p.values["hpc.job.job.state"], p.values["hpc.job.job.node_list"]
    reasons = p.values["hpc.job.job.pending_reason"]
    assert isinstance(states, Column) and states.names is nodes.names      # one shared name list
    assert "103" not in nodes and nodes["101"] == "nva[59-60],nvb[10,13-15]"   # "" is no value
    assert reasons["101"] == "" and reasons["103"] == "Resources"          # except for the reason
    assert "102" not in p.values["hpc.job.job.exit_code"]                 # None is no value
    assert dict(states) == {name: job_state for name, job_state in states.items()}


def _old_tallies(jobs):
    """count_jobs as it was written before the bulk version: the reference."""
    by_partition, reasons = defaultdict(Counter), Counter()
    owners = {"users": defaultdict(lambda: [0, 0, 0, 0, 0]),
              "accounts": defaultdict(lambda: [0, 0, 0, 0, 0])}
    for job in jobs:
        by_partition[job.partition or "-"][job.state] += 1
        if job.state == PENDING and job.reason:
            reasons[job.reason] += 1
        if job.state in ACTIVE_STATES:
            slot, resources = 0, (job.cpus or 0, job.gpus or 0, job.memory or 0)
        elif job.state in (PENDING, HELD):
            slot, resources = 1, (0, 0, 0)
        else:
            continue
        for owner, table in ((job.user, owners["users"]), (job.account, owners["accounts"])):
            row = table[owner or "-"]
            row[slot] += 1
            for k, amount in enumerate(resources):
                row[2 + k] += amount
    return ({p: {s: c.get(s, 0) for s in JOB_STATES} for p, c in by_partition.items()}, dict(reasons),
            {kind: {o: Tally(*row) for o, row in table.items()} for kind, table in owners.items()})


_JOBS = st.lists(st.builds(
    Job, id=st.text(max_size=3), state=st.sampled_from(JOB_STATES), user=st.sampled_from(["", "a", "b"]),
    account=st.sampled_from(["", "x", "y"]), partition=st.sampled_from(["", "-", "p", "q"]),
    reason=st.sampled_from(["", "Priority", "Resources"]), cpus=st.none() | st.integers(0, 64),
    gpus=st.none() | st.integers(0, 8), memory=st.none() | st.integers(0, 1 << 40)), max_size=40)


@given(_JOBS)
def test_bulk_tallies_equal_the_job_by_job_ones(jobs):
    counts = count_jobs(jobs)
    by_partition, reasons, owners = _old_tallies(jobs)
    assert counts.by_partition == by_partition and counts.pending_reasons == reasons
    assert counts.users == owners["users"] and counts.accounts == owners["accounts"]


def _old_parse_duration(text):
    """parse_duration as it was before it was made faster: the reference."""
    text = text.strip()
    if text in slurm._NOT_SET:
        return None
    days, _, clock = text.rpartition("-")
    try:
        parts = [int(p) for p in clock.split(":")]
        day_count = int(days) if days else 0
    except ValueError:
        return None
    if len(parts) == 1:
        parts = [0, parts[0], 0]
    while len(parts) < 3:
        parts.insert(0, 0)
    if len(parts) > 3 or day_count < 0 or any(p < 0 for p in parts):
        return None
    return ((day_count * 24 + parts[0]) * 60 + parts[1]) * 60 + parts[2]


@given(st.text(alphabet="0123456789-: +_x", max_size=14))
def test_fast_duration_parser_agrees_with_the_old_one(text):
    assert slurm.parse_duration(text) == _old_parse_duration(text)


def test_pcp_glue_serves_what_the_value_by_value_rule_gives(cat_command, tmp_path):
    """prepare() with per-job columns, bulk conversion and the label-JSON memo."""
    import json

    from pmdas.common.refresh import Refresher
    pmda_module = pytest.importorskip("pmdas.common.pmda")
    listing = tmp_path / "squeue.txt"
    listing.write_text((SLURM / "squeue-cluster.txt").read_text())
    agent = make_agent(scheduler="slurm", cluster_view=True, node_name="x",
                       squeue_command=[cat_command(listing)],
                       sinfo_command=[cat_command(SLURM / "sinfo-cluster.txt")],
                       sdiag_command=[cat_command(SLURM / "sdiag-22.05.txt")])
    refresher = Refresher(agent)
    pmda = pmda_module.HpcPMDA(agent)
    for run in range(3):                    # again: through the memos; then other jobs
        if run == 2:
            listing.write_text((SLURM / "squeue-22.05.txt").read_text())
        published = refresher.refresh_once()
        pmda.prepare(published)
        served = pmda._pending
        for metric, pmid in pmda._pmids:
            raw = published.values.get(refresher.full_name(metric))
            if metric.indom is None or not raw:
                assert metric.indom is None or pmid not in served.values
                continue
            ids = {name: ident for name, (ident, _) in published.instances[metric.indom].items()}
            expected = {ids[name]: pmda_module.coerce(metric.type, v) for name, v in dict(raw).items()
                        if pmda_module.coerce(metric.type, v) is not None}
            assert served.values[pmid] == expected, metric.name
        job_indom = pmda._indom_ids["job"]
        assert served.labels[job_indom] == {ident: json.dumps(labels) for ident, labels
                                            in published.instances["job"].values()}
        array = served.instids[job_indom]
        assert {array[k].i_inst: array[k].i_name.decode() for k in range(served.counts[job_indom])} == {
            ident: name for name, (ident, _) in published.instances["job"].items()}
        assert served.members[job_indom] == {ident for ident, _ in published.instances["job"].values()}


def test_switch_interval_is_set_in_the_agent_process_only():
    import sys
    before = sys.getswitchinterval()
    try:
        agent = make_agent(scheduler="slurm", node_name="n1")
        assert sys.getswitchinterval() == before          # building an agent changes nothing
        agent.prepare_process()
        assert sys.getswitchinterval() == pytest.approx(0.001)
        make_agent(scheduler="slurm", node_name="n1", switch_interval=0).prepare_process()
        assert sys.getswitchinterval() == pytest.approx(0.001)   # 0: left as it is
    finally:
        sys.setswitchinterval(before)
