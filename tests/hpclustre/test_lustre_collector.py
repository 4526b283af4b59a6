"""The agent on fixture trees through the shared Refresher: values, instances, labels, state."""

from __future__ import annotations

import os

import pytest
from lustre_helpers import fixture_root, fixture_text, make_refresher

from pmdas.common.table import check_table
from pmdas.hpclustre.collector import LustreAgent
from pmdas.hpclustre.job_stats import job_of, parse_job_stats
from pmdas.hpclustre.parsers import parse_stats

P = "hpc.lustre."


def refresh(version, role, **options):
    return make_refresher(fixture_root(version, role), **options).refresh_once()


def test_table_is_consistent_and_documented():
    check_table(LustreAgent.metrics, LustreAgent.indoms)
    assert LustreAgent.name == "hpclustre" and LustreAgent.domain == 411 and LustreAgent.root == "hpc.lustre"
    for m in LustreAgent.metrics:
        if m.name.endswith((".bytes", "bytes.total", "bytes.free", "bytes.avail")):
            assert m.units.space == 1, m.name
        if m.name.endswith(".time"):
            assert m.units.time == 1 and m.semantics == "counter", m.name


@pytest.mark.parametrize(
    "version,role,sources",
    [
        ("v2_10", "client", {"health", "lnet", "client"}),
        ("v2_15", "client", {"health", "lnet", "client"}),
        ("v2_10", "oss", {"health", "lnet", "server", "job_stats"}),
        ("v2_15", "mds", {"health", "lnet", "server", "job_stats"}),
    ],
)
def test_every_source_up(version, role, sources):
    p = refresh(version, role)
    assert p.values[P + "agent.up"] == 1, p.values[P + "agent.last_error"]
    assert set(p.values[P + "agent.source.up"]) == sources


@pytest.mark.parametrize(
    "version,stats_path,fs",
    [
        ("v2_10", "proc/fs/lustre/llite/scratch-ffff8800b8a8c000/stats", "scratch"),
        ("v2_15", "sys/kernel/debug/lustre/llite/scratch-ffff9c5d1a3f4800/stats", "scratch"),
        ("v2_15", "sys/kernel/debug/lustre/llite/home-ffff9c5d22b19000/stats", "home"),
    ],
)
def test_client_filesystem_values(version, stats_path, fs):
    stats = parse_stats(fixture_text(version, "client", stats_path))
    p = refresh(version, "client")
    assert p.values[P + "client.write.bytes"][fs] == stats["write_bytes"].total
    assert p.values[P + "client.read.count"][fs] == stats["read_bytes"].samples
    assert p.values[P + "client.open.count"][fs] == stats["open"].samples
    assert p.instances["client.fs"][fs][1] == {"filesystem": fs}
    if version == "v2_10":  # no times before 2.12; zero-count ops read as 0
        assert fs not in p.values[P + "client.open.time"]
        assert p.values[P + "client.rename.count"][fs] == 0
    else:
        assert p.values[P + "client.open.time"][fs] == stats["open"].total
        assert p.values[P + "client.link.time"][fs] == 0


def test_client_targets_and_histograms():
    p = refresh("v2_15", "client")
    assert set(p.instances["client.target"]) == {
        "scratch-OST0000",
        "scratch-OST0001",
        "scratch-MDT0000",
        "home-OST0000",
        "home-MDT0000",
    }
    assert p.instances["client.target"]["home-MDT0000"][1] == {
        "filesystem": "home",
        "target": "home-MDT0000",
        "type": "mdc",
    }
    assert p.values[P + "client.target.rpcs_in_flight.write"]["scratch-OST0001"] == 4
    assert p.values[P + "client.target.pending_pages.write"]["scratch-OST0001"] == 512
    assert p.values[P + "client.target.write.bytes"]["scratch-OST0001"] == 5512757248 + 8192
    assert p.values[P + "client.target.op.count"]["scratch-MDT0000::mds_close"] == 415
    assert p.values[P + "client.target.rpc_hist.pages.write"]["scratch-OST0001::1"] == 301
    assert p.instances["client.target.pages_per_rpc"]["scratch-OST0001::1024"][1]["pages"] == 1024


def test_v210_osc_without_read_lines_reads_zero():
    p = refresh("v2_10", "client")
    assert p.values[P + "client.target.read.bytes"]["scratch-OST0001"] == 0
    assert p.values[P + "client.target.read.bytes"]["scratch-OST0000"] == 2101248


@pytest.mark.parametrize("version", ["v2_10", "v2_15"])
def test_server_targets(version):
    p = refresh(version, "oss")
    stats = parse_stats(fixture_text(version, "oss", "proc/fs/lustre/obdfilter/scratch-OST0001/stats"))
    assert p.values[P + "server.target.write.bytes"]["scratch-OST0001"] == stats["write_bytes"].total
    assert p.values[P + "server.target.op.count"]["scratch-OST0001::punch"] == stats["punch"].samples
    root = fixture_root(version, "oss")
    osd = os.path.join(root, "sys/fs/lustre" if version == "v2_15" else "proc/fs/lustre", "osd-ldiskfs")
    with open(os.path.join(osd, "scratch-OST0001", "kbytesavail")) as f:
        assert p.values[P + "server.target.kbytes.avail"]["scratch-OST0001"] == int(f.read())
    assert p.values[P + "server.target.recovery.state"]["scratch-OST0000"] == 0


def test_health_and_recovery_states():
    assert refresh("v2_10", "oss").values[P + "healthy"] == 0
    p = refresh("v2_15", "mds")
    assert p.values[P + "healthy"] == 1
    assert p.values[P + "server.target.recovery.status"]["scratch-MDT0000"] == "RECOVERING"
    assert p.values[P + "server.target.recovery.time_remaining"]["scratch-MDT0000"] == 153
    assert "scratch-MDT0000" in p.instances["server.target"]
    assert (
        "scratch-MDT0000" not in p.values[P + "server.target.kbytes.total"]
        or p.values[P + "server.target.kbytes.total"]["scratch-MDT0000"] == 2147483648
    )


@pytest.mark.parametrize("version", ["v2_10", "v2_15"])
def test_jobs_are_summed_over_osts(version):
    text0 = fixture_text(version, "oss", "proc/fs/lustre/obdfilter/scratch-OST0000/job_stats")
    text1 = fixture_text(version, "oss", "proc/fs/lustre/obdfilter/scratch-OST0001/job_stats")
    j0, j1 = parse_job_stats(text0), parse_job_stats(text1)
    p = refresh(version, "oss")
    want: dict[str, int] = {}
    for j in (j0, j1):
        for raw, counters in j.items():
            job = job_of(raw)[0]
            want[job] = want.get(job, 0) + counters.get("write_bytes", (0, "", 0))[2]
    assert {f"scratch/{job}": total for job, total in want.items()} == p.values[P + "job.write.bytes"]
    assert p.values[P + "job.tracked"] == len(want)
    assert p.values[P + "server.target.job_stats.entries"] == {
        "scratch-OST0000": len(j0),
        "scratch-OST0001": len(j1),
    }
    # An OSS has no metadata counts: unavailable, not zero.
    assert p.values[P + "job.mdt.open"] == {}


def test_job_labels_join_hpc_job():
    p = refresh("v2_15", "oss")
    labels = p.instances["job"]["scratch/10"][1]   # SLURM_JOB10:0:node-client, folded
    assert labels == {"filesystem": "scratch", "jobid": "10", "job": "10", "user": "0"}
    by_host = refresh("v2_15", "oss", job_by_host=True)
    labels = by_host.instances["job"]["scratch/SLURM_JOB10:0:node-client"][1]
    assert labels == {
        "filesystem": "scratch",
        "jobid": "SLURM_JOB10:0:node-client",
        "job": "10",
        "user": "0",
        "host": "node-client",
    }


def test_mdt_jobs():
    p = refresh("v2_15", "mds")
    assert p.values[P + "job.mdt.mkdir"]["scratch/mdtest.1001"] == 400
    assert p.values[P + "job.mdt.ops"]["scratch/mdtest.1001"] == 3200
    assert p.values[P + "job.read.bytes"]["scratch/11"] == 3 * 78   # SLURM_JOB11:1000:node-c02


def test_job_limit_folds_the_rest_into_other():
    p = refresh("v2_15", "oss", job_limit=1)
    jobs = p.values[P + "job.write.bytes"]
    full = refresh("v2_15", "oss").values[P + "job.write.bytes"]
    top = max(full, key=lambda k: full[k] + refresh("v2_15", "oss").values[P + "job.read.bytes"][k])
    assert set(jobs) == {top, "scratch/[other]"}
    assert jobs["scratch/[other]"] == sum(v for k, v in full.items() if k != top)
    assert p.values[P + "job.folded"] == len(full) - 1
    assert p.instances["job"]["scratch/[other]"][1] == {"filesystem": "scratch", "jobid": "[other]"}
