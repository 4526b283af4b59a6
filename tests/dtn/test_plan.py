"""Plan and schedule: binning by BDP, byte spreading over node pairs, batches, endpoints."""
from urllib.parse import unquote, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dtn_transfer.endpoints import EndpointError, nameable, parse_endpoint
from dtn_transfer.options import RunOptions
from dtn_transfer.plan import LARGE, MEDIUM, SMALL, SourceFile, make_plan, node_pairs, size_bin, spread
from dtn_transfer.schedule import MAX_BATCH_FILES, MIN_BATCH_FILES, batch_files, schedule
from dtn_transfer.tuning import default_tuning

SRC = parse_endpoint("a1:2811,a2:2811,a3:2811/data/in")
DST = parse_endpoint("b1:2811,b2:2811/data/out")


def test_size_bins_relative_to_bdp():
    assert size_bin(0, 1000) == SMALL
    assert size_bin(999, 1000) == SMALL
    assert size_bin(1000, 1000) == MEDIUM
    assert size_bin(15_999, 1000) == MEDIUM
    assert size_bin(16_000, 1000) == LARGE


def test_node_pairs_cycle_the_smaller_cluster_and_respect_limit():
    assert node_pairs(SRC, DST) == [("a1:2811", "b1:2811"), ("a2:2811", "b2:2811"), ("a3:2811", "b1:2811")]
    assert node_pairs(SRC, DST, limit=1) == [("a1:2811", "b1:2811")]
    local = parse_endpoint("/tmp/x")
    assert node_pairs(local, DST) == [(None, "b1:2811"), (None, "b2:2811")]


@given(st.lists(st.integers(0, 10**9), max_size=200), st.integers(1, 12))
def test_spread_balances_bytes_within_one_file(sizes, pairs):
    assignment = spread(sizes, pairs)
    loads = [0] * pairs
    for size, pair in zip(sizes, assignment, strict=True):
        assert 0 <= pair < pairs
        loads[pair] += size
    # LPT: the most loaded pair exceeds the least by at most the largest file.
    assert max(loads) - min(loads) <= (max(sizes) if sizes else 0)


def test_plan_spreads_bytes_not_file_counts():
    files = [SourceFile("big", 900)] + [SourceFile(f"s{i}", 100) for i in range(9)]
    plan = make_plan(SRC, DST, files, bdp=200, nodes=2)
    assert plan.bytes_per_pair() == [900, 900]
    assert sorted(f.relpath for f in plan.files if f.pair == plan.files[0].pair) == ["big"]
    assert {f.bin for f in plan.files} == {SMALL, MEDIUM}


def test_schedule_tunes_by_size_class_and_bounds_batches():
    per_batch = batch_files(default_tuning(SMALL, RunOptions(), third_party=True).concurrency)
    files = [SourceFile(f"f{i}", 10) for i in range(per_batch + 5)] + [SourceFile("huge", 10**6)]
    plan = make_plan(SRC, DST, files, bdp=100, nodes=1)
    batches = schedule(plan, RunOptions())[0]
    assert [len(b.files) for b in batches] == [per_batch, 5, 1]
    assert batch_files(1) == MIN_BATCH_FILES and batch_files(1000) == MAX_BATCH_FILES
    small, large = batches[0].tuning, batches[-1].tuning
    assert small.pipelining and small.parallelism == 1 and small.concurrency > large.concurrency
    assert large.parallelism > 1 and not large.pipelining
    forced = default_tuning(LARGE, RunOptions(concurrency=3, parallelism=5, pipelining=True),
                            third_party=True)
    assert (forced.concurrency, forced.parallelism, forced.pipelining) == (3, 5, True)
    assert not default_tuning(SMALL, RunOptions(), third_party=False).pipelining


def test_endpoint_parsing():
    assert SRC.nodes == ("a1:2811", "a2:2811", "a3:2811") and SRC.path == "/data/in"
    assert parse_endpoint("/x/y").local
    with pytest.raises(EndpointError):
        parse_endpoint("host:port:/x")
    with pytest.raises(EndpointError):
        parse_endpoint("nodeonly:2811")


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00/"),
               min_size=1, max_size=40))
def test_urls_carry_any_name_percent_encoded(name):
    url = DST.url("b1:2811", "dir/" + name)
    parts = urlsplit(url)
    assert parts.scheme == "gsiftp" and parts.netloc == "b1:2811"   # GSI unless --anonymous
    assert unquote(parts.path) == "/data/out/dir/" + name
    assert all(c not in url for c in ' "\'$()') and url.isascii()


def test_nameable_rejects_what_the_control_channel_drops():
    assert nameable("a b'\"$(x)%.txt")
    assert not nameable("caf\u00e9") and not nameable("tab\there")
