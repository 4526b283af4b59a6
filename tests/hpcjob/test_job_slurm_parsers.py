"""Slurm parsers against real captures (22.05) and a hand-built multi-node capture."""
from __future__ import annotations

import time

from hpcjob_helpers import FIXTURES
from hypothesis import given
from hypothesis import strategies as st

from pmdas.hpcjob import slurm
from pmdas.hpcjob.model import count_jobs, count_nodes, expand_hosts

SLURM = FIXTURES / "slurm"


def jobs_of(name):
    return {j.id: j for j in slurm.parse_squeue((SLURM / name).read_text())}


def test_real_capture_matches_scontrol_truth():
    jobs = jobs_of("squeue-22.05.txt")
    truth = {}
    for line in (SLURM / "scontrol-show-job-22.05.txt").read_text().splitlines():
        pairs = dict(p.split("=", 1) for p in line.split(" ") if "=" in p)
        truth[pairs["JobId"]] = pairs
    assert set(jobs) == set(truth)
    for job_id, pairs in truth.items():
        job = jobs[job_id]
        assert job.raw_state == pairs["JobState"]
        assert job.partition == pairs["Partition"]
        assert job.cpus == int(pairs["NumCPUs"])
        if pairs["ExitCode"] != "0:0" or job.state in ("failed",):
            code, signal = map(int, pairs["ExitCode"].split(":"))
            assert (job.exit_code, job.exit_signal) == (code, signal)


def test_real_capture_shapes():
    jobs = jobs_of("squeue-22.05.txt")
    assert jobs["1"].state == "running" and jobs["1"].gpus == 1 and jobs["1"].hosts == ("vm",)
    assert jobs["1"].name == "run-één|pipe"          # '|' inside the last field stays
    assert jobs["1"].memory == 200 * 2**20
    assert jobs["4"].state == "held"
    assert jobs["5"].state == "failed" and jobs["5"].exit_code == 3
    assert jobs["7"].state == "cancelled"
    assert jobs["2"].reason == "BeginTime" and jobs["3"].reason == "PartitionConfig"
    assert jobs["9"].display_id == "6_1" and jobs["6"].display_id == "6_[2-3]"
    assert jobs["9"].time_limit == 600 and jobs["9"].time_left == 588
    assert jobs["2"].exit_code is None               # meaningless until the job ends


def test_cluster_capture_expands_hosts_and_skips_truncated_line():
    jobs = jobs_of("squeue-cluster.txt")
    assert "112" not in jobs                          # truncated last line
    assert jobs["101"].hosts == ("nva59", "nva60", "nvb10", "nvb13", "nvb14", "nvb15")
    assert jobs["101"].gpus == 24 and jobs["101"].memory == 375 * 2**30
    assert jobs["111"].gpus == 2 and jobs["111"].name == "ünïcode-名前"
    assert jobs["106"].state == "timeout" and jobs["107"].state == "failed"
    assert jobs["107"].exit_signal == 0 and jobs["107"].exit_code == 143
    assert jobs["110"].state == "other"               # a state this agent does not know
    assert jobs["104"].state == "held" and jobs["108"].state == "suspended"
    assert jobs["101"].time_left == 7 * 3600 + 50 * 60
    assert jobs["109"].time_left is None               # INVALID
    assert jobs["103"].account == ""


def test_counts_from_cluster_capture():
    counts = count_jobs(jobs_of("squeue-cluster.txt").values())
    assert counts.by_partition["cpu"]["pending"] == 2
    assert counts.by_partition["cpu"]["held"] == 1
    assert counts.by_partition["gpu"]["running"] == 2
    assert counts.pending_reasons == {"Priority": 1, "Resources": 1}
    assert counts.users["alice"].gpus == 24 and counts.users["alice"].cpus == 96
    assert counts.users["carol"].pending == 2 and counts.users["carol"].running == 0
    assert counts.accounts["phys"].running == 2       # 109 running + 105 completing
    assert counts.accounts["-"].pending == 2


def test_sinfo_cluster_capture():
    rows = slurm.parse_sinfo((SLURM / "sinfo-cluster.txt").read_text())
    assert len(rows) == 17                             # the garbage line is skipped
    partitions, states = count_nodes(rows)
    assert partitions["cpu"].nodes["idle"] == 1        # idle~ (powered down) is idle
    assert partitions["cpu"].nodes["down"] == 1 and partitions["cpu"].nodes["drain"] == 1
    assert partitions["cpu"].nodes["draining"] == 1 and partitions["cpu"].nodes["reserved"] == 1
    assert partitions["gpu"].gpus_total == 4 * 8 + 7
    assert partitions["gpu"].gpus_allocated == 4 * 6 + 2
    assert partitions["cpu"].cpus_allocated == 4 + 64 + 4 + 32
    assert states["allocated"] == 7                    # nvb15 counted once over two partitions
    assert rows[0].memory_total == 256000 * 2**20


def test_sdiag_real_capture():
    stats = slurm.parse_sdiag((SLURM / "sdiag-22.05.txt").read_text())
    assert stats["server_thread_count"] == 3
    assert stats["main.total_cycles"] == 15 and stats["backfill.total_cycles"] == 1
    assert stats["main.last_cycle"] == 84 and stats["backfill.last_cycle"] == 232


def test_times_and_durations():
    assert slurm.parse_duration("1-02:03:04") == 93784
    assert slurm.parse_duration("10:00") == 600
    assert slurm.parse_duration("30") == 1800
    assert slurm.parse_duration("UNLIMITED") is None
    assert slurm.parse_duration("1-x") is None
    assert slurm.parse_time("2026-11-21T00:41:28") == time.mktime((2026, 11, 21, 0, 41, 28, 0, 0, -1))
    assert slurm.parse_time("Unknown") is None
    assert slurm.parse_size("4G") == 4 << 30 and slurm.parse_size("1000") == 1000 << 20
    assert slurm.parse_size("abc") is None


@given(st.integers(0, 400), st.integers(0, 23), st.integers(0, 59), st.integers(0, 59))
def test_duration_round_trip(d, h, m, s):
    text = (f"{d}-" if d else "") + f"{h:02d}:{m:02d}:{s:02d}"
    assert slurm.parse_duration(text) == ((d * 24 + h) * 60 + m) * 60 + s


@given(st.lists(st.tuples(st.sampled_from(["cn", "nva", "gpu-"]), st.integers(0, 999)),
                min_size=1, max_size=30))
def test_hostlist_round_trip(hosts):
    from ClusterShell.NodeSet import NodeSet
    names = sorted({f"{p}{n:03d}" for p, n in hosts})
    assert sorted(expand_hosts(str(NodeSet.fromlist(names)))) == names


@given(st.text(max_size=2000))
def test_parsers_never_raise_on_garbage(text):
    slurm.parse_squeue(text)
    slurm.parse_sinfo(text)
    expand_hosts(text)
    slurm.gpu_count(text)
    try:
        slurm.parse_sdiag(text)
    except ValueError:
        pass


_LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


@given(st.lists(st.text(alphabet=st.characters(blacklist_characters=_LINE_BREAKS + "|"), max_size=12),
                min_size=21, max_size=21),
       st.text(alphabet=st.characters(blacklist_characters=_LINE_BREAKS), max_size=30))
def test_squeue_line_with_any_fields(fields, name):
    """Any content in the fields (never '|' except in the last, the name) gives one job."""
    fields[1] = "42"
    jobs = slurm.parse_squeue("|".join([*fields, name]))
    assert [j.id for j in jobs] == ["42"] and jobs[0].name == name


def test_node_lists_neither_resolve_groups_nor_explode():
    assert expand_hosts("@compute") == ("@compute",)
    assert expand_hosts("n[1-999999999]") == ()
    assert expand_hosts("n[1-3],gpu[01-02]") == ("gpu01", "gpu02", "n1", "n2", "n3")


def test_a_listing_of_ids_confirms_jobs_and_drops_forged_lines():
    """A job name holding newlines can add whole squeue lines: one for a job that does not
    exist, one more for someone else's job.  The id listing drops both; the forger's own job
    stays, its name cut at the line break."""
    fields = ["0"] * 21
    def line(job_id: str, user: str, name: str) -> str:
        return "|".join([job_id, job_id, job_id, "N/A", "RUNNING", user, *fields[6:], name])
    forged = "innocent\n" + line("4242424", "alice", "x") + "\n" + line("7", "alice", "y")
    text = "\n".join([line("7", "bob", "victim"), line("8", "eve", forged), line("9", "carol", "ok")])
    jobs = slurm.parse_squeue(text)
    assert sorted(j.id for j in jobs) == ["4242424", "7", "7", "8", "9"]
    kept, dropped = slurm.cross_checked(jobs, slurm.listed_ids("7|\n8|\n9|\n"))
    assert {j.id: (j.user, j.name) for j in kept} == {"8": ("eve", "innocent"), "9": ("carol", "ok")}
    assert dropped == 3
