"""bpftrace 0.17 -f json lines, from real captures (fixtures/*.jsonl), and fuzzing."""
from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pmdas.hpcbpftrace.output import (
    Attached,
    Bucket,
    HelperError,
    LostEvents,
    Text,
    Variable,
    bucket_bounds,
    bucket_name,
    flatten,
    parse_line,
)

from .conftest import fixture_text


def events(name: str) -> list:
    return [parse_line(line) for line in fixture_text(name).splitlines()]


def first(name: str, variable: str) -> Variable:
    return next(e for e in events(name) if isinstance(e, Variable) and e.name == variable)


def test_every_nonblank_fixture_line_parses():
    for name in ("maps_and_hists.jsonl", "edge_buckets.jsonl", "text_events.jsonl",
                 "lost_events.jsonl", "helper_error.jsonl", "script_biolatency.jsonl",
                 "script_runqlat.jsonl", "script_procexec.jsonl"):
        lines = fixture_text(name).splitlines()
        for line, event in zip(lines, events(name), strict=True):
            assert (event is None) == (not line.strip()), (name, line)


def test_attached_probes():
    assert events("maps_and_hists.jsonl")[0] == Attached(2)


def test_keyed_map_matches_the_raw_json():
    raw = next(json.loads(line) for line in fixture_text("maps_and_hists.jsonl").splitlines()
               if '"@opens"' in line)["data"]["@opens"]
    opens = first("maps_and_hists.jsonl", "@opens")
    assert opens.keyed and opens.kind == "map" and opens.value == raw
    assert flatten(opens) == raw


def test_multi_key_map_keeps_bpftrace_join():
    multi = first("maps_and_hists.jsonl", "@multi")
    assert multi.keyed and all("," in k for k in multi.value)
    assert first("edge_buckets.jsonl", "@s").value == {"a b,c,d": 3}


def test_scalars_strings_tuples_and_u64_quirk():
    assert first("maps_and_hists.jsonl", "@bytes").value == \
        sum(first("maps_and_hists.jsonl", "@opens").value.values())
    assert first("maps_and_hists.jsonl", "@str").value == "bpftrace"
    assert first("edge_buckets.jsonl", "@tup").value == [1, "a"]
    assert first("edge_buckets.jsonl", "@u").value == -1      # bpftrace prints 2**64-1 as -1
    assert flatten(first("edge_buckets.jsonl", "@i")) == -7


def test_stats_and_avg():
    avg = first("maps_and_hists.jsonl", "@avg")
    assert avg.kind == "stats" and not avg.keyed and isinstance(avg.value, int)
    stats = first("maps_and_hists.jsonl", "@st")
    assert set(flatten(stats)) == {"count", "average", "total"}
    assert stats.value["total"] // stats.value["count"] == stats.value["average"]
    keyed = first("text_events.jsonl", "@s")
    assert flatten(keyed) == {"1|count": 1, "1|average": 4, "1|total": 4,
                              "2|count": 1, "2|average": 8, "2|total": 8}
    assert flatten(first("text_events.jsonl", "@a")) == {"1": 3, "2": 5}


def test_log2_hist_buckets_are_named_and_ordered():
    hist = first("edge_buckets.jsonl", "@neg")
    names = list(flatten(hist))
    assert names[:6] == ["<0", "0", "1", "2-3", "4-7", "8-15"]
    assert names[-1] == "524288-1048575"
    bounds = [bucket_bounds(n) for n in names]
    assert bounds == sorted(bounds)
    assert sum(flatten(hist).values()) == 6


def test_lhist_open_ended_buckets():
    lh = first("edge_buckets.jsonl", "@lo")
    assert lh.value[0] == Bucket(None, -1, 1) and lh.value[-1] == Bucket(100, None, 1)
    names = list(flatten(lh))
    assert names[0] == "<0" and names[1] == "0-9" and names[-1] == ">=100"
    assert [bucket_bounds(n) for n in names] == sorted(bucket_bounds(n) for n in names)


def test_keyed_hist_from_biolatency_script():
    lat = first("script_biolatency.jsonl", "@biolatency_us")
    assert lat.kind == "hist" and lat.keyed
    flat = flatten(lat)
    devices = {name.split("|")[0] for name in flat}
    assert devices == set(lat.value) and all("," in d for d in devices)   # major,minor
    for device, buckets in lat.value.items():
        lows = [b.low for b in buckets]
        assert lows == sorted(lows)
        assert sum(b.count for b in buckets) == sum(v for k, v in flat.items()
                                                    if k.startswith(device + "|"))


def test_bucket_names_are_stable_for_the_same_range():
    assert bucket_name(4, 7) == "4-7" and bucket_name(0, 0) == "0"
    assert bucket_name(None, -1) == "<0" and bucket_name(100, None) == ">=100"
    assert bucket_name(-10, -6) == "-10--6" and bucket_bounds("-10--6") == (-10, -6)
    assert bucket_bounds("garbage") == (float("inf"), float("inf"))


def test_text_events_and_utf8_repair():
    texts = [e for e in events("text_events.jsonl") if isinstance(e, Text)]
    kinds = {t.type for t in texts}
    assert {"printf", "cat", "syscall", "time"} <= kinds
    printed = [t.text for t in texts if t.type == "printf"]
    assert 'a"b\\c\n' in printed and "no newline" in printed
    assert "é\n" in printed            # bpftrace wrote \uffffffc3\uffffffa9


def test_repair_leaves_escaped_backslash_alone():
    event = parse_line(r'{"type": "printf", "data": "\\uffffffc3"}')
    assert event == Text("printf", "\\uffffffc3")


def test_lost_events_and_helper_errors():
    lost = [e for e in events("lost_events.jsonl") if isinstance(e, LostEvents)]
    assert lost and all(e.events > 0 for e in lost)
    errors = [e for e in events("helper_error.jsonl") if isinstance(e, HelperError)]
    assert errors and errors[0] == HelperError("probe_read", -14, 1, 62)


@pytest.mark.parametrize("line", [
    "", "\n", "garbage", "{", "[]", '{"type": "map"}', '{"type": "map", "data": {"x": 1}}',
    '{"type": "map", "data": {"@a": 1, "@b": 2}}', '{"type": "hist", "data": {"@h": [{"min": 1}]}}',
    '{"type": "hist", "data": {"@h": {"k": [{"count": "x"}]}}}', '{"type": "printf", "data": 5}',
    '{"type": "attached_probes", "data": {"probes": true}}', '{"type": "new_kind", "data": 1}',
    '{"type": "map", "data": {"@m": {"k": {"nested": 1}}}}', b"\xff\xfe{",
    '{"type": "stats", "data": {"@s": {"k": "x"}}}', '{"type": "helper_error", "helper": 1}',
    "[" * 100000,
])
def test_malformed_lines_give_none(line):
    assert parse_line(line) is None


def test_wrong_shape_keyed_hist_is_none_not_partial():
    line = '{"type": "hist", "data": {"@h": {"a": [{"min": 0, "max": 0, "count": 1}], "b": 3}}}'
    assert parse_line(line) is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children,
                                                                      max_size=4),
    max_leaves=20)


@given(st.text(max_size=300))
def test_fuzz_text_never_raises(text):
    parse_line(text)


@given(st.sampled_from(["map", "stats", "hist", "printf", "attached_probes", "lost_events",
                        "helper_error", "time"]), json_values)
def test_fuzz_shaped_json_never_raises(kind, data):
    event = parse_line(json.dumps({"type": kind, "data": data}))
    if isinstance(event, Variable):
        flatten(event)          # whatever parses must also flatten


@given(st.binary(max_size=200))
def test_fuzz_bytes_never_raise(data):
    parse_line(data)
