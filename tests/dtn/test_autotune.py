"""--auto's pure logic: the tuning model's starting point, the online search, the batch feeder."""
import math

import pytest

from dtn_transfer.endpoints import parse_endpoint
from dtn_transfer.plan import SourceFile, make_plan
from dtn_transfer.run_search import RunSearch, SearchOptions
from dtn_transfer.search import OnlineSearch, Point, utility
from dtn_transfer.state import PairState, RunState
from dtn_transfer.tuning import BLOCK, Limits, PathFigures, model_tuning, path_figures

MIB = 2 ** 20
PATH = PathFigures(bandwidth=4 * MIB, stream_rate=MIB / 4, origin="test")   # 16 streams fill a pair


def test_model_small_files_get_concurrency_and_pipelining_not_streams():
    choice = model_tuning([150_000] * 400, 400, PATH)
    assert choice.parallelism == 1, "a file smaller than a block rides one stream"
    assert choice.concurrency == Limits().max_concurrency
    assert choice.pipelining
    assert "block" in choice.reason and "testbed" not in choice.reason


def test_model_capped_concurrency_lets_two_block_files_use_two_streams():
    """Small set (30-400 KB): at the 16-files-in-flight cap one stream per file is 16 streams,
    short of the ~24 the path wants; files over one block may use a second stream."""
    sizes = [30_000 + (i * 7919) % 370_000 for i in range(600)]
    choice = model_tuning(sizes, 600, PATH)
    assert Point.of(choice) == Point(Limits().max_concurrency, 2)
    # all below one block: a second stream could carry nothing, so P stays 1
    assert model_tuning([150_000] * 400, 400, PATH).parallelism == 1


def test_model_big_files_get_parallelism_and_few_files_in_flight():
    choice = model_tuning([100 * MIB] * 2, 2, PATH)
    assert choice.concurrency <= 2, "never more files in flight than the pair has"
    assert choice.streams >= PATH.streams_to_fill, "enough streams to fill the link"
    assert not choice.pipelining


def test_model_respects_limits_and_powers_of_two():
    limits = Limits(max_concurrency=4, max_parallelism=8, max_streams=16)
    for sizes, per_pair in (([10_000] * 1000, 1000), ([3 * MIB] * 40, 40), ([500 * MIB] * 3, 3)):
        p = model_tuning(sizes, per_pair, PathFigures(bandwidth=10e9, stream_rate=1e6), limits)
        assert p.concurrency <= 4 and p.parallelism <= 8 and p.streams <= 16
        assert p.concurrency & (p.concurrency - 1) == 0 and p.parallelism & (p.parallelism - 1) == 0


def test_utility_charges_for_streams():
    assert utility(100.0, Point(1, 1), 0.03) == 100.0
    assert utility(100.0, Point(4, 4), 0.03) == pytest.approx(100.0 * 0.97 ** 4)
    # doubling streams for a 2% gain lowers utility; for a 10% gain raises it
    assert utility(102.0, Point(8, 2), 0.03) < utility(100.0, Point(4, 2), 0.03)
    assert utility(110.0, Point(8, 2), 0.03) > utility(100.0, Point(4, 2), 0.03)


def pair_rate(point: Point, avg=3 * MIB, bandwidth=4 * MIB, stream=MIB / 4) -> float:
    """Rate of a node pair: streams a file can use × per-stream cap, up to the link, minus per-file cost."""
    streams = point.concurrency * min(point.parallelism, math.ceil(avg / BLOCK))
    return min(bandwidth, streams * stream) * (1 - 0.01 * point.concurrency)


def drive(search: OnlineSearch, rate_of, batch_seconds=2.5, limit=40):
    t = 0.0
    for _ in range(limit):
        if search.settled:
            break
        t += batch_seconds
        search.record(search.current, rate_of(search.current), t)
    return t


def best_rate(rate_of, limits=Limits()):
    points = [Point(c, p) for c in (1, 2, 4, 8, 16) for p in (1, 2, 4, 8, 16, 32)
              if c * p <= limits.max_streams]
    return max(rate_of(p) for p in points)


@pytest.mark.parametrize("start", [Point(1, 1), Point(2, 16), Point(16, 8), Point(1, 32)])
def test_search_reaches_near_best_from_any_start_within_budget(start):
    search = OnlineSearch(start, probe_budget=30.0)
    spent = drive(search, pair_rate)
    assert search.settled and spent <= 30.0 + 2.5
    got = pair_rate(search.current)
    assert got >= 0.9 * best_rate(pair_rate), (search.current, got, [d.to_json() for d in search.decisions])


def test_search_stops_adding_streams_that_buy_nothing():
    flat = lambda p: 4 * MIB   # noqa: E731 - any setting fills the link
    search = OnlineSearch(Point(2, 2))
    drive(search, flat)
    assert search.current.streams <= 4, "more streams for no gain would lower the utility"


def test_search_never_leaves_the_limits():
    limits = Limits(max_concurrency=4, max_parallelism=4, max_streams=8)
    search = OnlineSearch(Point(4, 4), limits=limits)
    assert search.current.streams <= 8
    greedy = lambda p: 1e6 * p.streams   # noqa: E731 - more is always better
    seen = []
    t = 0.0
    while not search.settled and t < 100:
        seen.append(search.current)
        t += 1
        search.record(search.current, greedy(search.current), t)
    assert all(p.concurrency <= 4 and p.parallelism <= 4 and p.streams <= 8 for p in seen)


def test_search_settles_when_the_budget_is_spent():
    search = OnlineSearch(Point(1, 1), probe_budget=5.0)
    drive(search, lambda p: 1e6 * p.streams, batch_seconds=3.0)
    assert search.settled
    assert search.decisions[-1].action == "settle" and "budget" in search.decisions[-1].why


def test_search_waits_for_one_sample_per_pair_and_ignores_stale_points():
    search = OnlineSearch(Point(2, 2), samples_needed=3)
    assert search.record(Point(2, 2), 1e6, 1.0) == []
    assert search.record(Point(8, 8), 9e9, 1.5) == [], "a batch of another point does not decide"
    assert search.record(Point(2, 2), 1e6, 2.0) == []
    assert search.record(Point(2, 2), 1e6, 2.5)
    assert search.current != Point(2, 2)


def test_settled_search_reprobes_after_a_sustained_drop():
    search = OnlineSearch(Point(4, 4), probe_budget=30.0)
    drive(search, pair_rate)
    settled = search.current
    rate = pair_rate(settled)
    for t in (100, 101, 102):
        search.record(settled, rate * 0.5, t)
    assert not search.settled and search.decisions[-1].action == "reprobe"


def test_batches_follow_the_search_and_keep_every_slot_busy():
    src = parse_endpoint("10.0.0.1:2811/src")
    dst = parse_endpoint("10.0.0.2:2811/dst")
    files = [SourceFile(f"f{i:03d}", 3 * MIB) for i in range(60)]
    plan = make_plan(src, dst, files, 64 * MIB)
    run = RunState(run_id="t", directory="/nonexistent", source=str(src), dest=str(dst), settings={},
                   files_total=60, bytes_total=plan.total_bytes, pairs=[PairState(source="a", dest="b")])
    clock = [0.0]
    tuner = RunSearch(plan, run, PATH, probe_seconds=2.5, clock=lambda: clock[0], sample_every=None)
    batches = tuner.batcher(plan, None, list(plan.files))[0]
    # the pair reaches 90% of the path's bandwidth at best: a point that filled it would end the search
    rate_of = lambda point: pair_rate(point, bandwidth=0.9 * PATH.bandwidth)   # noqa: E731
    seen = []
    sent = set()
    for batch in batches:
        seen.append(batch)
        point = Point(batch.tuning.concurrency, batch.tuning.parallelism)
        assert len(batch.files) >= min(point.concurrency, 60 - len(sent)), "at least one file per slot"
        assert not sent & {f.relpath for f in batch.files}, "no file twice"
        sent |= {f.relpath for f in batch.files}
        clock[0] += batch.nbytes / rate_of(point)     # the batch "runs"
        run.count_results([(0, batch.nbytes, "done")], final=True)
    assert len(sent) == 60
    tunings = [(b.tuning.concurrency, b.tuning.parallelism) for b in seen]
    assert len(set(tunings)) > 1, "the search tried more than the model's point"
    summary = tuner.summary()
    decisions = summary["classes"]["small"]["decisions"]
    assert decisions[0]["action"] == "start" and summary["path"]["origin"] == "test"


def test_files_too_big_to_probe_keep_the_models_point():
    src, dst = parse_endpoint("10.0.0.1:2811/src"), parse_endpoint("10.0.0.2:2811/dst")
    plan = make_plan(src, dst, [SourceFile("a", 200 * MIB), SourceFile("b", 200 * MIB)], 64 * MIB)
    run = RunState(run_id="t", directory="/nonexistent", source=str(src), dest=str(dst), settings={},
                   files_total=2, bytes_total=plan.total_bytes, pairs=[PairState(source="a", dest="b")])
    said = []
    tuner = RunSearch(plan, run, PATH, probe_budget=30.0, report=said.append)
    (batch,) = list(tuner.batcher(plan, None, list(plan.files))[0])
    search = tuner.searches[batch.bin]
    assert search.settled and search.probing_time == 0.0
    assert "probe budget" in search.decisions[-1].why and any("settle" in line for line in said)




# Two --auto runs of the bench on its medium set (60 files of 3.23 MiB on one pair): rate in
# MiB/s and seconds each probe took.  Probes hold one file per slot, so C=16 takes ~13 s.
RUN_1 = {Point(4, 16): (3.33, 5.3), Point(8, 16): (3.55, 6.4), Point(4, 32): (3.28, 5.2),
         Point(8, 8): (3.59, 6.2), Point(16, 4): (3.61, 13.8)}
RUN_2 = {Point(4, 16): (3.33, 5.3), Point(8, 16): (3.25, 7.0), Point(4, 32): (3.21, 5.3),
         Point(8, 8): (3.48, 6.4), Point(2, 32): (2.85, 6.9)}


@pytest.mark.parametrize("measured", [RUN_1, RUN_2])
def test_search_settles_rather_than_start_a_probe_that_outlasts_the_budget(measured):
    plan = make_plan(parse_endpoint("10.0.0.1:2811/s"), parse_endpoint("10.0.0.2:2811/d"),
                     [SourceFile("f", 1)], 64 * MIB)
    run = RunState(run_id="t", directory="/nonexistent", source="s", dest="d", settings={}, files_total=1,
                   bytes_total=1)
    tuner = RunSearch(plan, run, PATH)
    search = OnlineSearch(Point(4, 16), probe_budget=30.0,
                          probe_length=lambda p: tuner.probe_length(p, 3.23 * MIB, 60))
    t = 0.0
    while not search.settled:
        rate, seconds = measured.get(search.current, (3.5, 6.0))
        t += seconds
        search.record(search.current, rate * MIB, t)
    assert search.probing_time <= 30.0, [d.to_json() for d in search.decisions]


def test_path_figures_are_inputs_filled_from_what_is_known_then_defaults():
    assert path_figures(4 * MIB, MIB / 4).origin == "options"
    lab = PathFigures(bandwidth=2 * MIB, stream_rate=MIB / 8, origin="testbed x")
    mixed = path_figures(bandwidth=8 * MIB, known=lab)
    assert (mixed.bandwidth, mixed.stream_rate, mixed.origin) == (8 * MIB, MIB / 8, "testbed x")
    bare = path_figures()
    assert bare.origin == "defaults" and bare.streams_to_fill == 16
    window = path_figures(bandwidth=100 * MIB, rtt=0.1, tcp_buffer=4 * MIB)
    assert window.stream_rate == pytest.approx(40 * MIB), "a stream moves a window per RTT"
    assert window.bdp == pytest.approx(10 * MIB)


def test_search_options_survive_the_run_directory_and_read_older_runs():
    kept = SearchOptions(path=PATH, probe_budget=12.0)
    assert SearchOptions.from_json(kept.to_json()) == kept
    older = SearchOptions.from_json({"bandwidth": 4 * MIB, "stream_rate": None, "probe_budget": 30.0})
    assert older.path.bandwidth == 4 * MIB and older.path.stream_rate == 4 * MIB / 16
