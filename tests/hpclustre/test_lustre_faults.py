"""Bad input and faults: missing debugfs, disabled job_stats, restarts, unmounts, garbage."""

from __future__ import annotations

import os
import shutil

import pytest
from lustre_helpers import make_refresher

from hpc_demo import hpclustre as demo
from pmdas.hpclustre import paths

P = "hpc.lustre."
OST0 = "proc/fs/lustre/obdfilter/scratch-OST0000"


def _edit(root, path, old, new):
    full = os.path.join(root, path)
    with open(full) as f:
        text = f.read()
    assert old in text
    with open(full, "w") as f:
        f.write(text.replace(old, new))


def test_debugfs_not_mounted_is_one_clear_sentence(tree):
    root = tree("v2_15", "client")
    shutil.rmtree(os.path.join(root, "sys/kernel/debug"))
    os.makedirs(os.path.join(root, "sys/kernel/debug"))  # mount point, nothing mounted
    p = make_refresher(root).refresh_once()
    errors = p.values[P + "agent.source.error"]
    assert p.values[P + "agent.up"] == 0
    for source in ("client", "lnet"):
        assert errors[source].startswith("debugfs is not mounted at ")
        assert "mount -t debugfs none /sys/kernel/debug" in errors[source]
        assert errors[source].count(". ") == 0  # one sentence
    assert p.values[P + "healthy"] == 1  # /sys still answers
    assert p.instances["client.fs"] == {}


def test_debugfs_unreadable(tree, monkeypatch):
    root = tree("v2_15", "client")
    debug = os.path.join(root, "sys/kernel/debug")
    real = os.listdir

    def listdir(path="."):
        if str(path).startswith(debug):
            raise PermissionError(13, "Permission denied", path)
        return real(path)

    monkeypatch.setattr(os, "listdir", listdir)
    monkeypatch.setattr(
        os.path, "exists", lambda p, _e=os.path.exists: False if str(p).startswith(debug) else _e(p)
    )
    p = make_refresher(root).refresh_once()
    assert "not readable by this agent" in p.values[P + "agent.source.error"]["client"]
    assert "run the agent as root" in p.values[P + "agent.source.error"]["client"]


def test_no_lustre_at_all(tmp_path):
    p = make_refresher(str(tmp_path)).refresh_once()
    assert p.values[P + "agent.source.error"] == {
        "lustre": f"Lustre is not loaded on this node: neither {tmp_path}/sys/fs/lustre nor "
        f"{tmp_path}/proc/fs/lustre exists"
    }


@pytest.mark.parametrize("how", ["missing", "empty"])
def test_job_stats_disabled(tree, how):
    root = tree("v2_15", "oss")
    for target in ("scratch-OST0000", "scratch-OST0001"):
        path = os.path.join(root, "proc/fs/lustre/obdfilter", target, "job_stats")
        if how == "missing":
            os.unlink(path)
        else:
            with open(path, "w") as f:
                f.write("job_stats:\n")
    p = make_refresher(root).refresh_once()
    assert p.values[P + "agent.up"] == 1
    assert p.instances["job"] == {}
    entries = p.values[P + "server.target.job_stats.entries"]
    assert entries == ({} if how == "missing" else {"scratch-OST0000": 0, "scratch-OST0001": 0})
    assert p.values[P + "server.target.write.bytes"]["scratch-OST0000"] == 120311244800


def test_counter_going_backwards_stays_monotonic_and_is_reported(tree):
    root = tree("v2_15", "oss")
    r = make_refresher(root)
    before = r.refresh_once().values[P + "server.target.write.bytes"]["scratch-OST0000"]
    _edit(
        root,
        f"{OST0}/stats",
        f"30122 samples [bytes] 4096 16777216 {before} ",
        "30130 samples [bytes] 4096 16777216 120311344800 ",
    )
    grown = r.refresh_once().values[P + "server.target.write.bytes"]["scratch-OST0000"]
    assert grown - before == 100000
    _edit(
        root,
        f"{OST0}/stats",
        "30130 samples [bytes] 4096 16777216 120311344800 ",
        "5 samples [bytes] 4096 16777216 40960 ",
    )  # the OST restarted
    p = r.refresh_once()
    after = p.values[P + "server.target.write.bytes"]["scratch-OST0000"]
    assert after == grown + 40960
    assert p.values[P + "counter_resets"] == 2  # its samples and its sum
    assert p.values[P + "last_counter_reset"].startswith("ost scratch-OST0000 write_bytes ")
    assert "went back from 30130 to 5" in p.values[P + "last_counter_reset"]


def test_job_totals_survive_one_ost_restart_and_expiry(tree):
    root = tree("v2_15", "oss")
    r = make_refresher(root)
    job = "scratch/10"   # SLURM_JOB10:0:node-client
    first = r.refresh_once().values[P + "job.write.bytes"][job]
    # OST0001 restarts: its entry for the job starts again from a small value.
    _edit(
        root,
        "proc/fs/lustre/obdfilter/scratch-OST0001/job_stats",
        "sum:       2147483648",
        "sum:             4096",
    )
    second = r.refresh_once().values[P + "job.write.bytes"][job]
    assert second == first + 4096
    # The job's entry expires on OST0000 only: totals must not drop.
    with open(os.path.join(root, OST0, "job_stats"), "w") as f:
        f.write("job_stats:\n")
    third = r.refresh_once().values[P + "job.write.bytes"][job]
    assert third == second
    # Gone everywhere: the instance disappears.
    with open(os.path.join(root, "proc/fs/lustre/obdfilter/scratch-OST0001/job_stats"), "w") as f:
        f.write("job_stats:\n")
    assert job not in r.refresh_once().instances["job"]


def test_filesystem_unmounted_between_listing_and_reading(tree, monkeypatch):
    root = tree("v2_15", "client")
    real = paths.first_file

    def vanish(directories, name):
        for d in directories:
            if "home-" in d and os.path.isdir(d):
                shutil.rmtree(d)
        return real(directories, name)

    monkeypatch.setattr(paths, "first_file", vanish)
    p = make_refresher(root).refresh_once()
    assert p.values[P + "agent.up"] == 1
    assert set(p.instances["client.fs"]) == {"scratch"}
    assert not any(name.startswith("home-") for name in p.instances["client.target"])


def test_unmount_between_refreshes_removes_instances(tree):
    root = tree("v2_15", "client")
    r = make_refresher(root)
    assert set(r.refresh_once().instances["client.fs"]) == {"scratch", "home"}
    for base in ("sys/kernel/debug/lustre/llite", "sys/fs/lustre/llite"):
        shutil.rmtree(os.path.join(root, base, "home-ffff9c5d22b19000"))
    assert set(r.refresh_once().instances["client.fs"]) == {"scratch"}


def test_garbled_files_cost_only_their_values(tree):
    root = tree("v2_15", "oss")
    with open(os.path.join(root, "sys/kernel/debug/lnet/stats"), "w") as f:
        f.write("0 12 garbage\n")
    with open(os.path.join(root, OST0, "stats"), "w") as f:
        f.write(
            "write_bytes 12 samples [bytes] 1 2\x00\x00\nread_bytes 3 samples [bytes] 4096 4096 12288 1\n"
        )
    with open(os.path.join(root, OST0, "job_stats"), "wb") as f:
        f.write(
            b"job_stats:\n- job_id: \xff\xfe\n"
            b"  write_bytes: { samples: 1, unit: bytes, min: 1, max: 1, sum: 7 }\n"
            b"  read_bytes: { samples: 1, unit: by"
        )
    p = make_refresher(root).refresh_once()
    assert "is not in the expected format" in p.values[P + "agent.source.error"]["lnet"]
    assert (
        p.values[P + "agent.source.up"]["server"] == 1 and p.values[P + "agent.source.up"]["job_stats"] == 1
    )
    assert p.values[P + "server.target.read.bytes"]["scratch-OST0000"] == 12288
    assert p.values[P + "lnet.send.bytes"] is None


def test_demo_tree_moves(tmp_path):
    root = str(tmp_path / "demo")
    demo.main(["--root", root, "--filesystems", "2", "--jobs", "5", "--oscs", "1", "--osts", "1"])
    r = make_refresher(root)
    first = r.refresh_once()
    assert first.values[P + "agent.up"] == 1, first.values[P + "agent.last_error"]
    assert set(first.instances["client.fs"]) == {"scratch", "home"}
    assert len([j for j in first.instances["job"] if j.startswith("scratch/")]) == 5
    demo.main(["--root", root, "--advance"])
    second = r.refresh_once()
    for metric in ("client.write.bytes", "server.target.read.bytes"):
        for inst, value in first.values[P + metric].items():
            if "-MDT" in inst:
                continue  # MDTs move no bulk data in the demo
            assert second.values[P + metric][inst] > value, (metric, inst)
    assert second.values[P + "counter_resets"] == 0
    assert second.values[P + "lnet.send.bytes"] > first.values[P + "lnet.send.bytes"]


def test_demo_old_layout(tmp_path):
    root = str(tmp_path / "old")
    demo.main(["--root", root, "--version", "2.10", "--jobs", "3"])
    p = make_refresher(root).refresh_once()
    assert p.values[P + "agent.up"] == 1, p.values[P + "agent.last_error"]
    assert os.path.exists(os.path.join(root, "proc/sys/lnet/stats"))
    assert len(p.instances["job"]) == 3
