"""job_stats parser (both forms), job id labels, and agreement with a YAML loader."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from lustre_helpers import fixture_text

from pmdas.hpclustre.job_stats import MAX_JOB_ID, clean_job_id, job_labels, job_of, parse_job_stats

OST_10 = "proc/fs/lustre/obdfilter/scratch-OST0000/job_stats"
OST_15 = "proc/fs/lustre/obdfilter/scratch-OST0000/job_stats"
MDT_15 = "proc/fs/lustre/mdt/scratch-MDT0000/job_stats"


@pytest.mark.parametrize(
    "version,role,path",
    [
        ("v2_10", "oss", OST_10),
        ("v2_10", "mds", "proc/fs/lustre/mdt/scratch-MDT0000/job_stats"),
        ("v2_15", "oss", OST_15),
        ("v2_15", "mds", MDT_15),
        ("v2_12", "oss", OST_15),
        ("v2_12", "mds", MDT_15),
        ("v2_14", "oss", OST_15),
        ("v2_14", "mds", MDT_15),
        ("v2_16", "mds", MDT_15),
    ],
)
def test_agrees_with_yaml(version, role, path):
    """Every non-zero counter YAML sees, we see with the same samples and sum; zero ones are left out."""
    text = fixture_text(version, role, path)
    ours = parse_job_stats(text)
    entries = yaml.safe_load(text)["job_stats"]
    assert set(ours) == {str(e["job_id"]) for e in entries}
    for entry in entries:
        mine = ours[str(entry["job_id"])]
        for op, value in entry.items():
            if not isinstance(value, dict):
                continue
            if value["samples"] == 0:
                assert op not in mine
            else:
                assert mine[op] == (value["samples"], value["unit"], value.get("sum"))


def test_old_form_values():
    jobs = parse_job_stats(fixture_text("v2_10", "oss", OST_10))
    assert jobs["24"] == {"write_bytes": (64575, "bytes", 215147593728), "punch": (1, "reqs", None)}


def test_new_form_quoted_ids_and_hist():
    jobs = parse_job_stats(fixture_text("v2_15", "oss", OST_15))
    assert jobs["SLURM_JOB10:0:node-client"]["write_bytes"] == (861, "bytes", 11025514496)
    assert jobs["SLURM_JOB10:0:node-client"]["write"] == (861, "usecs", 7304967)


@pytest.mark.parametrize("text", ["", "job_stats:\n", "job_stats:", "job_stats: []\n"])
def test_disabled_or_empty(text):
    assert parse_job_stats(text) == {}


def test_truncated_last_line_gives_no_wrong_sum():
    text = fixture_text("v2_15", "oss", OST_15)
    cut = text.index("sum:      11025514496") + len("sum:      1102")
    jobs = parse_job_stats(text[:cut])
    assert "write_bytes" not in jobs["SLURM_JOB10:0:node-client"]


def test_garbled_lines_are_skipped():
    text = (
        "job_stats:\n- job_id: 7\n  write_bytes: { samples: 3, unit: bytes, min: 1, max: 2, sum: 9 }\n"
        "  punch: { samples: x, unit: reqs }\n  \x00\x01garbage{{{\n  open: { samples: 2, unit: reqs }\n"
    )
    assert parse_job_stats(text) == {"7": {"write_bytes": (3, "bytes", 9), "open": (2, "reqs", None)}}


def test_counters_before_any_job_id_are_dropped():
    text = "  write_bytes: { samples: 3, unit: bytes, min: 1, max: 2, sum: 9 }\n- job_id: 8\n"
    assert parse_job_stats(text) == {"8": {}}


def test_duplicate_job_ids_add_up():
    entry = "- job_id: 9\n  write_bytes: { samples: 3, unit: bytes, min: 1, max: 2, sum: 9 }\n"
    assert parse_job_stats("job_stats:\n" + entry + entry)["9"]["write_bytes"] == (6, "bytes", 18)


def test_huge_job_ids_are_shortened_but_stay_distinct():
    a, b = "x" * 5000 + "a", "x" * 5000 + "b"
    assert len(clean_job_id(a)) == MAX_JOB_ID and clean_job_id(a) != clean_job_id(b)
    assert clean_job_id('"with space\tand tab"') == "with_space_and_tab"
    assert clean_job_id('""') == "_"


@pytest.mark.parametrize(
    "job_id,expected",
    [
        ("SLURM_JOB10:0:node-client", {"job": "10", "user": "0", "host": "node-client"}),
        ("24", {"job": "24"}),
        ("24.1", {"job": "24", "step": "1"}),
        ("SLURM_JOB_ID=77", {"job": "77"}),
        ("dd.1000", {"command": "dd", "user": "1000"}),
        ("mdtest.1001", {"command": "mdtest", "user": "1001"}),
        ("kworker", {}),
    ],
)
def test_job_labels(job_id, expected):
    assert job_labels(job_id) == {"jobid": job_id, **expected}


def test_job_rates_cover_every_exported_job_including_churn():
    """Per-job rates over the refresh interval: defined for every job instance (new ones
    and the [other] bucket too), so alarm rules never meet an unknown."""
    from pmdas.hpclustre.jobs import OTHER, JobTotals
    totals = JobTotals()
    ost, mdt = "fs-OST0000", "fs-MDT0000"

    def refresh(now, ost_jobs, mdt_jobs):
        totals.update("fs", ost, {j: {"write_bytes": (n, "bytes", n * 4096)} for j, n in ost_jobs.items()})
        totals.update("fs", mdt, {j: {"open": (n, "usecs", None)} for j, n in mdt_jobs.items()})
        return totals.finish(limit=2, now=now)

    first = refresh(100.0, {"a": 10, "b": 1, "c": 1}, {"a": 5})
    assert first.rates == {}                                  # no interval yet
    second = refresh(102.0, {"a": 30, "b": 1, "c": 3, "d": 2}, {"a": 25, "d": 4})
    rates = second.rates
    assert set(rates) == set(second.values)                   # every instance has a rate
    assert rates["fs/a"] == {"io_bytes": 20 * 4096 / 2.0, "mdt_ops": 20 / 2.0}
    assert set(rates) == {"fs/a", "fs/c", f"fs/{OTHER}"}       # top 2 by bytes, the rest folded
    assert rates["fs/c"] == {"io_bytes": 2 * 4096 / 2.0, "mdt_ops": 0.0}
    # b moved nothing; d is new: its whole first count is this interval's increase
    assert rates[f"fs/{OTHER}"] == {"io_bytes": 2 * 4096 / 2.0, "mdt_ops": 4 / 2.0}


@pytest.mark.parametrize(
    "job_id,expected",
    [
        ("4242:1000:cn017", ("4242", "1000")),      # jobid_name=%j:%u:%H
        ("SLURM_JOB10:0:node-client", ("10", "0")),
        ("24.1", ("24", None)),                     # a step counts for its job
        ("24", ("24", None)),
        ("dd.1000", ("dd.1000", None)),             # procname_uid: itself
        ("kworker", ("kworker", None)),
        ("[other]", ("[other]", None)),
    ],
)
def test_job_of(job_id, expected):
    assert job_of(job_id) == expected


def _two_nodes(totals, scale=1, user="1000"):
    """Job 4242 on cn017 and cn018 (jobid_name=%j:%u:%H) on an OST and the MDT, job 7 on cn017."""
    totals.update("fs", "fs-OST0000", {
        f"4242:{user}:cn017": {"write_bytes": (1, "bytes", 100 * scale)},
        "4242:1000:cn018": {"write_bytes": (1, "bytes", 30 * scale)},
        "7:1001:cn017": {"write_bytes": (1, "bytes", 120 * scale)}})
    totals.update("fs", "fs-MDT0000", {
        f"4242:{user}:cn017": {"open": (2 * scale, "usecs", None)},
        "4242:1000:cn018": {"open": (5 * scale, "usecs", None)}})


def test_a_job_on_two_nodes_is_one_instance_with_their_sum():
    """With jobid_name=%j:%u:%H each client node of a job has its own entry on every
    target: the job's instance is their sum, ranked by it (4242's 130 bytes beat job 7's
    120 although each of its nodes moved less)."""
    from pmdas.hpclustre.jobs import JobTotals
    totals = JobTotals()
    _two_nodes(totals)
    view = totals.finish(limit=1, now=0.0)
    assert view.values["fs/4242"]["write_bytes"] == 130
    assert view.values["fs/4242"]["open"] == 7 and view.values["fs/4242"]["mdt_ops"] == 7
    assert view.labels["fs/4242"] == {"filesystem": "fs", "jobid": "4242", "job": "4242", "user": "1000"}
    assert set(view.values) == {"fs/4242", "fs/[other]"} and view.tracked == 2
    _two_nodes(totals, scale=2)                      # both nodes' entries grow
    view = totals.finish(limit=1, now=1.0)
    assert view.values["fs/4242"]["write_bytes"] == 260
    assert view.rates["fs/4242"]["io_bytes"] == 130.0


def test_ids_of_one_job_that_disagree_on_the_user_give_no_user_label():
    from pmdas.hpclustre.jobs import JobTotals
    totals = JobTotals()
    _two_nodes(totals, user="0")        # anyone may set an id: do not pick one user
    labels = totals.finish(limit=5, now=0.0).labels["fs/4242"]
    assert "user" not in labels and labels["job"] == "4242"


def test_job_by_host_keeps_one_instance_per_raw_id():
    from pmdas.hpclustre.jobs import JobTotals
    totals = JobTotals(fold=False)
    _two_nodes(totals)
    view = totals.finish(limit=5, now=0.0)
    assert view.values["fs/4242:1000:cn017"]["write_bytes"] == 100
    assert view.values["fs/4242:1000:cn018"]["write_bytes"] == 30
    assert view.labels["fs/4242:1000:cn018"]["host"] == "cn018"


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="0123456789:._-SLURMJOBIDslurmjob=ab", max_size=24))
def test_job_of_decodes_as_job_labels(job_id):
    """job_of is job_labels' decoding without its dictionary (a refresh calls it per entry)."""
    labels = job_labels(job_id)
    assert job_of(job_id) == ((labels["job"], labels.get("user")) if "job" in labels else (job_id, None))
