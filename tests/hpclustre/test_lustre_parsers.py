"""Parsers, table-driven on the fixture files of both Lustre versions."""

from __future__ import annotations

import pytest
from lustre_helpers import fixture_text

from pmdas.hpclustre.parsers import (
    StatCounter,
    parse_health_check,
    parse_lnet_stats,
    parse_number_file,
    parse_recovery_status,
    parse_rpc_stats,
    parse_stats,
)

LLITE_10 = "proc/fs/lustre/llite/scratch-ffff8800b8a8c000/stats"
LLITE_15 = "sys/kernel/debug/lustre/llite/scratch-ffff9c5d1a3f4800/stats"
OSC_10 = "proc/fs/lustre/osc/scratch-OST0000-osc-ffff8800b8a8c000"
OSC_15 = "sys/kernel/debug/lustre/osc/scratch-OST0001-osc-ffff9c5d1a3f4800"


@pytest.mark.parametrize(
    "version,role,path,name,expected",
    [
        # 2.10: "[regs]" quirk means reqs, lines without min/max/sum, no sumsq on bytes.
        ("v2_10", "client", LLITE_10, "write_bytes", StatCounter(89467810, "bytes", 93813797294080)),
        ("v2_10", "client", LLITE_10, "read_bytes", StatCounter(1, "bytes", 4194304)),
        ("v2_10", "client", LLITE_10, "open", StatCounter(136, "reqs", None)),
        ("v2_10", "client", OSC_10 + "/stats", "req_waittime", StatCounter(16392560, "usecs", 50876321)),
        (
            "v2_10",
            "oss",
            "proc/fs/lustre/obdfilter/scratch-OST0001/stats",
            "punch",
            StatCounter(48, "reqs", None),
        ),
        (
            "v2_10",
            "mds",
            "proc/fs/lustre/mdt/scratch-MDT0000/md_stats",
            "crossdir_rename",
            StatCounter(11, "reqs", None),
        ),
        # 2.15: [usecs] with sumsq, [reqs] with min/max/sum (opencount), start/elapsed headers.
        ("v2_15", "client", LLITE_15, "write", StatCounter(2831, "usecs", 7304967)),
        ("v2_15", "client", LLITE_15, "opencount", StatCounter(415, "reqs", 901)),
        ("v2_15", "client", LLITE_15, "getxattr_hits", StatCounter(640, "reqs", None)),
        (
            "v2_15",
            "oss",
            "proc/fs/lustre/obdfilter/scratch-OST0000/stats",
            "write_bytes",
            StatCounter(30122, "bytes", 120311244800),
        ),
        (
            "v2_15",
            "mds",
            "proc/fs/lustre/mdt/scratch-MDT0000/md_stats",
            "getattr",
            StatCounter(120120, "usecs", 401201),
        ),
    ],
)
def test_stats_lines(version, role, path, name, expected):
    assert parse_stats(fixture_text(version, role, path))[name] == expected


@pytest.mark.parametrize("version,path", [("v2_10", LLITE_10), ("v2_15", LLITE_15)])
def test_stats_headers_are_not_counters(version, path):
    stats = parse_stats(fixture_text(version, "client", path))
    assert not {"snapshot_time", "start_time", "elapsed_time"} & set(stats)


def test_stats_skips_garbage_but_keeps_the_rest():
    text = (
        "read_bytes 4 samples [bytes] 1 2 10\nwrite_bytes x samples [bytes] 1 2 3\n"
        "open 3 samples reqs\nclose 7 samples [reqs]\ntrunc 5 sam"
    )
    assert parse_stats(text) == {"read_bytes": StatCounter(4, "bytes", 10), "close": StatCounter(7, "reqs")}


@pytest.mark.parametrize(
    "version,path,header,pages_1024,in_flight_1",
    [
        (
            "v2_10",
            OSC_10 + "/rpc_stats",
            {
                "read RPCs in flight": 0,
                "write RPCs in flight": 6,
                "pending write pages": 1244,
                "pending read pages": 0,
            },
            (0, 16387470),
            (4, 120431),
        ),
        (
            "v2_15",
            OSC_15 + "/rpc_stats",
            {
                "read RPCs in flight": 0,
                "write RPCs in flight": 4,
                "pending write pages": 512,
                "pending read pages": 1,
            },
            (1651 - 62, 2635 - 384),
            (1651 - 300, 2635 - 900),
        ),
    ],
)
def test_rpc_stats(version, path, header, pages_1024, in_flight_1):
    rpc = parse_rpc_stats(fixture_text(version, "client", path))
    assert rpc.header == header
    assert set(rpc.histograms) == {"pages per rpc", "rpcs in flight", "offset"}
    assert rpc.histograms["pages per rpc"][1024] == pages_1024
    assert rpc.histograms["rpcs in flight"][1] == in_flight_1
    # The histogram totals equal the number of bulk RPCs in the same device's stats.
    stats = parse_stats(fixture_text(version, "client", path.replace("rpc_stats", "stats")))
    assert sum(w for _r, w in rpc.histograms["pages per rpc"].values()) == stats["write_bytes"].samples


@pytest.mark.parametrize(
    "version,role,path,expected",
    [
        (
            "v2_10",
            "client",
            "proc/sys/lnet/stats",
            {
                "msgs_max": 1456,
                "send_count": 1234567,
                "drop_count": 3,
                "send_length": 987654321,
                "drop_length": 4096,
            },
        ),
        ("v2_15", "oss", "sys/kernel/debug/lnet/stats", {"msgs_alloc": 2, "recv_length": 9012012012012}),
    ],
)
def test_lnet(version, role, path, expected):
    values = parse_lnet_stats(fixture_text(version, role, path))
    assert len(values) == 11
    assert {k: values[k] for k in expected} == expected


@pytest.mark.parametrize("text", ["", "1 2 3", "a b c d e f g h i j k", "1 2 3 4 5 6 7 8 9 10 -1"])
def test_lnet_rejects_partial_lines(text):
    with pytest.raises(ValueError):
        parse_lnet_stats(text)


@pytest.mark.parametrize(
    "version,role,path,status,connected,completed,total,remaining",
    [
        (
            "v2_10",
            "oss",
            "proc/fs/lustre/obdfilter/scratch-OST0000/recovery_status",
            "COMPLETE",
            None,
            42,
            42,
            None,
        ),
        (
            "v2_15",
            "oss",
            "proc/fs/lustre/obdfilter/scratch-OST0001/recovery_status",
            "INACTIVE",
            None,
            None,
            None,
            None,
        ),
        ("v2_15", "mds", "proc/fs/lustre/mdt/scratch-MDT0000/recovery_status", "RECOVERING", 31, 29, 42, 153),
    ],
)
def test_recovery(version, role, path, status, connected, completed, total, remaining):
    r = parse_recovery_status(fixture_text(version, role, path))
    assert (r.status, r.connected_clients, r.completed_clients, r.total_clients, r.time_remaining) == (
        status,
        connected,
        completed,
        total,
        remaining,
    )


@pytest.mark.parametrize(
    "text,expected",
    [
        ("healthy\n", True),
        ("NOT HEALTHY\n", False),
        ("device scratch-OST0001 reported unhealthy\nNOT HEALTHY\n", False),
        ("LBUG\n", False),
        ("", None),
    ],
)
def test_health_check(text, expected):
    assert parse_health_check(text) is expected


def test_health_check_fixture_of_unhealthy_oss():
    assert parse_health_check(fixture_text("v2_10", "oss", "proc/fs/lustre/health_check")) is False


@pytest.mark.parametrize("text,expected", [("12\n", 12), (" 0 ", 0), ("", None), ("-4", None), ("1.5", None)])
def test_number_file(text, expected):
    assert parse_number_file(text) == expected
