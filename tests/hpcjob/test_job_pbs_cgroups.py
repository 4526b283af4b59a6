"""PBS parsers on recordings in PBS's real formats, and cgroup layouts of both schedulers."""
from __future__ import annotations

import json
import time

import pytest
from hpcjob_helpers import FIXTURES
from hypothesis import given
from hypothesis import strategies as st

from pmdas.hpcjob import cgroups, pbs
from pmdas.hpcjob.model import count_jobs, count_nodes

PBS = FIXTURES / "pbs"


def pbs_jobs():
    return {j.id: j for j in pbs.parse_qstat_jobs((PBS / "qstat-f-F-json.json").read_text())}


def test_qstat_jobs_follow_the_recording():
    raw = json.loads((PBS / "qstat-f-F-json.json").read_text(), strict=False)["Jobs"]
    jobs = pbs_jobs()
    assert set(jobs) == set(raw)
    for job_id, attrs in raw.items():
        assert jobs[job_id].user == attrs["Job_Owner"].split("@")[0]
        assert jobs[job_id].partition == attrs["queue"]
        assert jobs[job_id].cpus == attrs["Resource_List"]["ncpus"]


def test_qstat_job_details():
    jobs = pbs_jobs()
    run = jobs["13.pbs-server"]
    assert run.state == "running" and run.hosts == ("node01",) and run.gpus == 1
    assert run.memory == 4 << 30 and run.elapsed == 49 and run.time_left == 3600 - 49
    assert run.start_time == time.mktime(time.strptime("Sat Dec 3 20:25:38 2022", "%a %b %d %H:%M:%S %Y"))
    assert jobs["17.pbs-server"].hosts == ("node02", "node03")
    assert jobs["17.pbs-server"].name == "analyse-données"
    assert jobs["14.pbs-server"].reason.startswith("Not Running: Insufficient")
    assert jobs["15.pbs-server"].state == "held"
    assert jobs["12.pbs-server"].state == "failed" and jobs["12.pbs-server"].exit_code == 3
    assert jobs["11.pbs-server"].state == "cancelled" and jobs["11.pbs-server"].exit_signal == 15
    assert jobs["16[].pbs-server"].state == "other"      # array parent, not a job of its own


def test_pbs_counts_and_nodes():
    counts = count_jobs(pbs_jobs().values())
    assert counts.by_partition["workq"]["running"] == 1
    assert counts.by_partition["long"]["held"] == 1
    assert counts.users["dave"].cpus == 16 and counts.users["alice"].pending == 1
    rows = pbs.parse_pbsnodes((PBS / "pbsnodes-av-F-json.json").read_text())
    partitions, states = count_nodes(rows)
    assert states == {**states, "mixed": 1, "allocated": 2, "idle": 1, "down": 2, "drain": 1}
    assert partitions["long"].cpus_allocated == 16 and partitions["all"].gpus_total == 2


def test_server_status_joins_wrapped_lines():
    status = pbs.parse_server_status((PBS / "qstat-Bf.txt").read_text())
    assert status["server_state"] == "Active"
    assert status["state_count"]["begun"] == 1 and status["state_count"]["running"] == 2
    with pytest.raises(ValueError):
        pbs.parse_server_status("qstat: cannot connect to server")


def test_pbsnodes_jobs_on_one_node():
    text = (PBS / "pbsnodes-av-F-json.json").read_text()
    assert pbs.parse_pbsnodes_jobs(text) == {"13.pbs-server", "17.pbs-server"}


def test_truncated_json_is_one_sentence():
    text = (PBS / "qstat-f-F-json.json").read_text()
    with pytest.raises(ValueError, match="not valid JSON"):
        pbs.parse_qstat_jobs(text[: len(text) // 2])


def test_sizes_and_times():
    assert pbs.parse_size("348kb") == 348 * 1024 and pbs.parse_size("4gb") == 4 << 30
    assert pbs.parse_size("2mw") == 16 << 20 and pbs.parse_size("12xb") is None
    assert pbs.parse_duration("100:05:03") == 100 * 3600 + 303
    assert pbs.parse_time("Sat Dec  3 20:25:38 2022") == pbs.parse_time("Sat Dec 3 20:25:38 2022")
    assert pbs.parse_time("yesterday") is None


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                    max_leaves=20))
def test_any_json_shape_never_crashes(doc):
    for key in ("Jobs", "nodes"):
        text = json.dumps({key: doc})
        try:
            pbs.parse_qstat_jobs(text)
            pbs.parse_pbsnodes(text)
            pbs.parse_pbsnodes_jobs(text)
        except ValueError:
            pass


@pytest.mark.parametrize("tree, expected", [
    ("v2-slurm", {"9": (1_250_000_000, 52428800, 104857600, 5096, 8192, 2),
                  "10": (500_000, 4096, None, 0, 0, 2)}),
    ("v1-slurm", {"9": (2_500_000_000, 1048576, 2097152, None, None, 1),   # no blkio in Slurm v1
                  "11": (None, 777, None, None, None, 1)}),
    ("v2-pbs", {"13.pbs-server": (48_000_000_000, 356352, None, 0, 0, 2)}),
    ("v1-pbs", {"17.pbs-server": (36_750_000_000_000, 12884901888, 13000000000, None, None, 1)}),
])
def test_cgroup_layouts(tree, expected):
    found = cgroups.read_job_usage(str(FIXTURES / "cgroup" / tree))
    assert {k: (u.cpu_time, u.memory, u.memory_peak, u.read_bytes, u.write_bytes, u.version)
            for k, u in found.items()} == expected


def test_no_cgroups_means_no_jobs(tmp_path):
    assert cgroups.read_job_usage(str(tmp_path)) == {}


def test_job_vanishing_while_read(tmp_path):
    job = tmp_path / "sys/fs/cgroup/system.slice/slurmstepd.scope/job_5"
    job.mkdir(parents=True)          # listed, but its files are already gone
    assert cgroups.read_job_usage(str(tmp_path))["5"].cpu_time is None


@given(st.text(max_size=300))
def test_cgroup_file_parsers_never_raise(text):
    cgroups.parse_cpu_stat(text)
    cgroups.parse_io_stat(text)
    cgroups.parse_blkio_bytes(text)
    cgroups.parse_number(text)


def _job_cgroup(root, relative: str, cpu: int) -> None:
    """A v1 cpuacct or v2 job cgroup with only its CPU time."""
    path = root / "sys/fs/cgroup" / relative
    path.mkdir(parents=True)
    if relative.startswith("cpuacct/"):
        (path / "cpuacct.usage").write_text(f"{cpu}\n")
    else:
        (path / "cpu.stat").write_text(f"usage_usec {cpu}\nuser_usec 0\nsystem_usec 0\n")


@pytest.mark.parametrize("layout", [
    ("cpuacct/slurm_{}/uid_0/job_{}", "cpuacct/slurm/uid_0/job_{}"),
    ("system.slice/{}_slurmstepd.scope/job_{}", "system.slice/slurmstepd.scope/job_{}"),
])
def test_several_slurmd_on_one_host_each_node_reads_its_own_jobs(tmp_path, layout):
    """With --enable-multiple-slurmd every node's job cgroups sit on the one host, named
    after their node: a node's agent counts its own (and a plain slurmd's), never its
    neighbour's; given no name of theirs it keeps the whole host's, as before."""
    per_node, plain = layout
    _job_cgroup(tmp_path, per_node.format("node01", 100001), 1)
    _job_cgroup(tmp_path, per_node.format("node02", 100002), 2)
    _job_cgroup(tmp_path, per_node.format("node1", 100003), 3)   # a prefix of node01 is another node
    _job_cgroup(tmp_path, plain.format(7), 7)
    assert set(cgroups.read_job_usage(str(tmp_path), {"node01"})) == {"100001", "7"}
    assert set(cgroups.read_job_usage(str(tmp_path), {"node02", "node02.cluster"})) == {"100002", "7"}
    assert set(cgroups.read_job_usage(str(tmp_path), {"login1"})) == {"100001", "100002", "100003", "7"}
    assert set(cgroups.read_job_usage(str(tmp_path))) == {"100001", "100002", "100003", "7"}
