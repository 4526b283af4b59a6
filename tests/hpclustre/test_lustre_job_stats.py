"""job_stats parser (both forms), job id labels, and agreement with a YAML loader."""

from __future__ import annotations

import pytest
import yaml
from lustre_helpers import fixture_text

from pmdas.hpclustre.job_stats import MAX_JOB_ID, clean_job_id, job_labels, parse_job_stats

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
