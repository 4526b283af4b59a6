"""Issue #17 findings 4-7 and 14 on fixtures in the exact formats of Lustre 2.10-2.16.

The fixture trees v2_12, v2_14 and v2_16 follow lustre-release's printf formats
(see tests/fixtures/lustre/README.md); v2_10 and v2_15 are the older captures.
"""

from __future__ import annotations

import os

import pytest
from lustre_helpers import fixture_root, fixture_text, make_refresher

from pmdas.hpclustre.collector import LustreAgent
from pmdas.hpclustre.job_stats import parse_job_stats
from pmdas.hpclustre.parsers import parse_lnet_stats, parse_stats

P = "hpc.lustre."
OST0 = "proc/fs/lustre/obdfilter/scratch-OST0000"
MDT0 = "proc/fs/lustre/mdt/scratch-MDT0000"
HELP = {P + m.name: m.long_help for m in LustreAgent.metrics}


def refresh(version, role, **options):
    return make_refresher(fixture_root(version, role), **options).refresh_once()


def _write(root, path, text):
    with open(os.path.join(root, path), "w") as f:
        f.write(text)


# ---- finding 4: a job whose entries expired everywhere comes back from zero -------------

RETURNED = (
    "job_stats:\n"
    "- job_id:          4242\n"
    "  snapshot_time:   1583413400\n"
    "  read_bytes:      { samples:           0, unit: bytes, min:       0, max:       0,"
    " sum:               0 }\n"
    "  write_bytes:     { samples:           3, unit: bytes, min:     100, max:     100,"
    " sum:             300 }\n"
)


def test_job_counters_go_on_after_the_entry_expires_everywhere_and_returns(tree):
    """5000 -> absent -> 300 read as 5000 -> absent -> 5300 (Lustre 2.12 OST job_stats)."""
    root = tree("v2_12", "oss")
    r = make_refresher(root)
    job = "scratch/4242"
    first = r.refresh_once().values
    before = parse_job_stats(fixture_text("v2_12", "oss", f"{OST0}/job_stats"))["4242"]
    assert first[P + "job.write.bytes"][job] == before["write_bytes"][2]
    kept = first[P + "job.write.count"][job]
    _write(root, f"{OST0}/job_stats", "job_stats:\n")          # job_cleanup_interval passed
    gone = r.refresh_once()
    assert job not in gone.instances["job"]
    _write(root, f"{OST0}/job_stats", RETURNED)                  # the job writes again
    back = r.refresh_once().values
    assert back[P + "job.write.bytes"][job] == before["write_bytes"][2] + 300
    assert back[P + "job.write.count"][job] == kept + 3
    assert back[P + "job.forgotten"] == 0
    assert back[P + "counter_resets"] == 0


def test_a_job_absent_longer_than_job_memory_is_forgotten_and_flagged(tree):
    root = tree("v2_12", "oss")
    r = make_refresher(root, job_memory=0)
    r.refresh_once()
    _write(root, f"{OST0}/job_stats", "job_stats:\n")
    r.refresh_once()
    jobs = parse_job_stats(fixture_text("v2_12", "oss", f"{OST0}/job_stats"))
    assert r.refresh_once().values[P + "job.forgotten"] == len(jobs)   # absent past job_memory
    _write(root, f"{OST0}/job_stats", RETURNED)
    back = r.refresh_once().values
    assert back[P + "job.write.bytes"]["scratch/4242"] == 300     # starts again, flagged above
    assert "job_memory" in HELP[P + "job.write.bytes"]


def test_a_job_stats_read_that_fails_once_counts_nothing_twice(tree):
    """The job rests while its only target's job_stats cannot be read; when the same entry
    reads again, only its increase since the last good read is added."""
    root = tree("v2_12", "oss")
    r = make_refresher(root)
    job = "scratch/4242"
    first = r.refresh_once().values[P + "job.write.bytes"][job]
    path = os.path.join(root, OST0, "job_stats")
    with open(path) as f:
        text = f.read()
    os.remove(path)                                               # unreadable this refresh
    p = r.refresh_once()
    assert p.values[P + "server.target.job_stats.entries"] == {}
    _write(root, f"{OST0}/job_stats", text)
    assert r.refresh_once().values[P + "job.write.bytes"][job] == first


# ---- finding 5: one count per request, per version ---------------------------------------

@pytest.mark.parametrize(
    "version,role,path,target,repeats",
    [
        # 2.10 OST stats carry the OBD-op lines: each bulk I/O again in preprw and commitrw
        ("v2_10", "oss", f"{OST0}/stats", "scratch-OST0000", ("preprw", "commitrw")),
        # MDT: every rename is also a samedir_ or crossdir_rename
        ("v2_10", "mds", f"{MDT0}/md_stats", "scratch-MDT0000", ("samedir_rename", "crossdir_rename")),
        ("v2_12", "mds", f"{MDT0}/md_stats", "scratch-MDT0000", ("samedir_rename", "crossdir_rename")),
        ("v2_12", "oss", f"{OST0}/stats", "scratch-OST0000", ()),
        # 2.14+: read/write timing lines beside read_bytes/write_bytes
        ("v2_14", "oss", f"{OST0}/stats", "scratch-OST0000", ("read", "write")),
        ("v2_14", "mds", f"{MDT0}/md_stats", "scratch-MDT0000", ("samedir_rename", "crossdir_rename")),
        ("v2_15", "mds", f"{MDT0}/md_stats", "scratch-MDT0000", ("samedir_rename",)),
        # 2.16 adds parallel_rename_file/_dir, and MDT read/write timing lines
        ("v2_16", "mds", f"{MDT0}/md_stats", "scratch-MDT0000",
         ("samedir_rename", "parallel_rename_file", "parallel_rename_dir", "crossdir_rename",
          "read", "write")),
    ],
)
def test_server_ops_count_each_request_once(version, role, path, target, repeats):
    stats = parse_stats(fixture_text(version, role, path))
    assert all(name in stats for name in repeats)                 # the fixture has the repeats
    every_line = sum(c.samples for name, c in stats.items() if not name.endswith("_bytes"))
    ops = refresh(version, role).values[P + "server.target.ops"][target]
    assert ops == every_line - sum(stats[name].samples for name in repeats)
    if "rename" in stats:                                          # renames counted once
        assert stats["rename"].samples <= ops


def test_job_ops_count_each_request_once():
    # 2.12 MDT job_stats: rename 10 = samedir_rename 7 + crossdir_rename 3
    entry = parse_job_stats(fixture_text("v2_12", "mds", f"{MDT0}/job_stats"))["4242"]
    p = refresh("v2_12", "mds").values
    requests = ("open", "close", "rename", "getattr", "mkdir")
    assert p[P + "job.mdt.ops"]["scratch/4242"] == sum(entry[op][0] for op in requests)
    assert p[P + "job.mdt.rename"]["scratch/4242"] == entry["rename"][0]
    # 2.14 OST job_stats: the read/write timing lines are the bulk I/O again
    entry = parse_job_stats(fixture_text("v2_14", "oss", f"{OST0}/job_stats"))["4242"]
    p = refresh("v2_14", "oss").values
    assert p[P + "job.ost.ops"]["scratch/4242"] == entry["punch"][0] + entry["setattr"][0]
    assert p[P + "job.write.time"]["scratch/4242"] == entry["write"][2]
    # 2.16 MDT job_stats: parallel_rename_* and the DoM write timing line
    job = "scratch/4242"   # SLURM_JOB4242:1000:node-c01
    entry = parse_job_stats(fixture_text("v2_16", "mds", f"{MDT0}/job_stats"))["SLURM_JOB4242:1000:node-c01"]
    p = refresh("v2_16", "mds").values
    assert p[P + "job.mdt.ops"][job] == sum(entry[op][0] for op in requests)
    assert "parallel_rename_file" in HELP[P + "job.mdt.ops"] and "2.16" in HELP[P + "server.target.ops"]


# ---- finding 6: timings from 2.14; a line a version lacks is unavailable, not 0 ----------

@pytest.mark.parametrize(
    "version,timed",
    [("v2_10", False), ("v2_12", False), ("v2_14", True), ("v2_15", True), ("v2_16", True)],
)
def test_llite_timings_start_in_2_14(version, timed):
    p = refresh(version, "client").values
    assert ("scratch" in p[P + "client.open.time"]) is timed
    assert ("scratch" in p[P + "client.read.time"]) is timed
    assert "scratch" in p[P + "client.open.count"]


@pytest.mark.parametrize(
    "version,available",
    [
        ("v2_10", {"alloc_inode"}),
        ("v2_12", {"alloc_inode"}),
        ("v2_14", {"fallocate"}),
        ("v2_15", {"fallocate", "opencount", "openclosetime"}),
        ("v2_16", {"fallocate", "opencount", "openclosetime"}),
    ],
)
def test_llite_lines_a_version_lacks_are_unavailable(version, available):
    p = refresh(version, "client").values
    for op in ("fallocate", "opencount", "openclosetime", "alloc_inode"):
        assert ("scratch" in p[P + f"client.{op}.count"]) is (op in available), op
    # a line the version has but did not print (zero count) still reads 0
    assert p[P + "client.link.count"]["scratch"] == 0


def test_llite_zero_line_reads_zero_only_where_the_version_has_it():
    assert refresh("v2_14", "client").values[P + "client.fallocate.count"]["scratch"] == 0
    assert refresh("v2_14", "client").values[P + "client.fallocate.time"]["scratch"] == 0
    assert "scratch" not in refresh("v2_12", "client").values[P + "client.fallocate.time"]


def test_unknown_client_version_makes_version_bound_lines_unavailable(tree):
    root = tree("v2_14", "client")
    os.remove(os.path.join(root, "sys/fs/lustre/version"))
    p = make_refresher(root).refresh_once().values
    assert "scratch" not in p[P + "client.fallocate.count"]
    assert p[P + "client.link.count"]["scratch"] == 0


@pytest.mark.parametrize("version,timed", [("v2_12", False), ("v2_14", True), ("v2_16", True)])
def test_server_timings_start_in_2_14(version, timed):
    p = refresh(version, "mds").values
    assert ("scratch-MDT0000::open" in p[P + "server.target.op.time"]) is timed


def test_mdt_bulk_bytes_exist_from_2_12():
    assert "scratch-MDT0000" not in refresh("v2_10", "mds").values[P + "server.target.read.bytes"]
    p = refresh("v2_12", "mds").values
    assert p[P + "server.target.read.bytes"]["scratch-MDT0000"] == 0       # zero line left out
    stats = parse_stats(fixture_text("v2_12", "mds", f"{MDT0}/md_stats"))
    assert p[P + "server.target.write.bytes"]["scratch-MDT0000"] == stats["write_bytes"].total


def test_job_read_time_unavailable_on_2_14_mdt():
    """2.14 MDT job_stats time every op but have no read/write lines (those come in 2.15)."""
    p = refresh("v2_14", "mds").values
    assert "scratch/4242" in p[P + "job.read.bytes"]
    assert p[P + "job.read.time"] == {}


def test_help_names_2_14_for_timings():
    for name in ("client.read.time", "client.open.time", "server.target.op.time", "job.read.time"):
        assert "2.14" in HELP[P + name] and "2.12+" not in HELP[P + name], name
    one_line = {P + m.name: m.help for m in LustreAgent.metrics}
    assert "2.12" not in one_line[P + "client.read.time"]


# ---- finding 7: LNet's 32-bit counters wrap --------------------------------------------

LNET = "sys/kernel/debug/lnet/stats"


def test_lnet_wrap_is_counted_not_taken_for_a_restart(tree):
    root = tree("v2_12", "client")
    raw = parse_lnet_stats(fixture_text("v2_12", "client", LNET))
    assert raw["send_count"] > 2**31                      # near the top of 32 bits
    r = make_refresher(root)
    first = r.refresh_once().values
    assert first[P + "lnet.send.count"] == raw["send_count"]
    moved = dict(raw, send_count=1000, recv_count=7, send_length=raw["send_length"] + 10**6,
                 recv_length=raw["recv_length"] + 10**6)
    _write(root, LNET, " ".join(str(v) for v in moved.values()) + "\n")
    wrapped = r.refresh_once().values
    assert wrapped[P + "lnet.send.count"] == 2**32 + 1000
    assert wrapped[P + "lnet.recv.count"] == 2**32 + 7
    assert wrapped[P + "lnet.wraps"] == 2
    assert wrapped[P + "counter_resets"] == 0
    # A restart zeroes everything, byte counters too: counting goes on, flagged as a reset.
    restarted = dict.fromkeys(raw, 5)
    _write(root, LNET, " ".join(str(v) for v in restarted.values()) + "\n")
    after = r.refresh_once().values
    assert after[P + "lnet.send.count"] == 2**32 + 1000 + 5
    assert after[P + "lnet.wraps"] == 2
    assert after[P + "counter_resets"] > 0


def test_lnet_small_decrease_without_byte_drop_is_not_a_wrap(tree):
    """A counter low in its range that goes down is a reset, never a wrap (no 2^32 added)."""
    root = tree("v2_12", "oss")
    raw = parse_lnet_stats(fixture_text("v2_12", "oss", LNET))
    r = make_refresher(root)
    r.refresh_once()
    _write(root, LNET, " ".join(str(v) for v in dict(raw, send_count=10).values()) + "\n")
    p = r.refresh_once().values
    assert p[P + "lnet.wraps"] == 0
    assert p[P + "lnet.send.count"] == raw["send_count"] + 10
    assert p[P + "counter_resets"] == 1


def test_lnet_help_says_32_bits_and_msgs_max_is_a_sum():
    assert "32-bit" in HELP[P + "lnet.send.count"] and "64 bits" in HELP[P + "lnet.send.bytes"]
    assert "sum" in HELP[P + "lnet.msgs_max"] and "upper bound" in HELP[P + "lnet.msgs_max"]


# ---- finding 14: help texts -------------------------------------------------------------

def test_help_recovery_inactive_and_in_flight_buckets():
    assert "permanent" in HELP[P + "server.target.recovery.state"]
    assert "stays INACTIVE" in HELP[P + "server.target.recovery.status"]
    assert "itself" in HELP[P + "client.target.rpc_hist.in_flight.write"]
    assert "itself" not in HELP[P + "client.target.rpc_hist.pages.write"]


def test_lnet_bt_says_it_times_the_hand_off():
    path = os.path.join(os.path.dirname(__file__), "..", "..", "bpftrace_scripts", "lnet.bt")
    with open(path) as f:
        description = next(line for line in f if line.startswith("// description:"))
    assert "hand" in description and "completion of the send" not in description
