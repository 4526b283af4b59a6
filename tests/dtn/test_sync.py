"""--sync-level 0-3 as globus-url-copy has them, --preserve-mtime, and partial files that
never pass for whole ones."""
import json
import os
import time

import pytest

from .conftest import dtn, identical, make_files, needs_gridftp, run_dirs

MIB = 1 << 20
LAST_WEEK = time.time() - 7 * 86400


def _stale_copy(world, name):
    """A destination file of the source's size with other bytes, written just now (as a
    half-written file is: newer than its source)."""
    stale = world / "dst" / name
    stale.write_bytes(os.urandom(MIB))
    stale.chmod(0o666)
    return stale


@needs_gridftp
@pytest.mark.parametrize("level,skipped", [(0, True), (1, True), (2, False), (3, False)])
def test_sync_levels(world, servers, level, skipped):
    make_files(world / "src", {"a.dat": MIB, "b.dat": MIB})
    for name in ("a.dat", "b.dat"):
        os.utime(world / "src" / name, (LAST_WEEK, LAST_WEEK))
    _stale_copy(world, "b.dat")
    out = dtn(world, "run", "--json", "--sync-level", str(level), f"{servers[0].node}{world}/src",
              f"{servers[2].node}{world}/dst", check=0)
    report = json.loads(out.stdout)
    assert report["files"]["skipped"] == int(skipped), report
    assert identical(world / "src" / "b.dat", world / "dst" / "b.dat") is not skipped
    assert identical(world / "src" / "a.dat", world / "dst" / "a.dat")


@needs_gridftp
def test_preserved_times_let_level_2_skip_what_was_delivered_whole(world, servers):
    make_files(world / "src", {f"f{i}": 100_000 + i for i in range(5)})
    for i in range(5):
        os.utime(world / "src" / f"f{i}", (LAST_WEEK + i, LAST_WEEK + i))
    src, dst = f"{servers[0].node}{world}/src", f"{servers[2].node}{world}/dst"
    dtn(world, "run", "-q", "--preserve-mtime", src, dst, check=0)
    for i in range(5):
        assert int(os.stat(world / "dst" / f"f{i}").st_mtime) == int(LAST_WEEK + i)
    with open(world / "dst" / "f3", "r+b") as f:     # as if a later transfer was cut short
        f.write(b"partial")
    out = dtn(world, "run", "--json", "--sync-level", "2", "--preserve-mtime", src, dst, check=0)
    report = json.loads(out.stdout)
    assert report["files"]["skipped"] == 4 and report["files"]["done"] == 1
    assert identical(world / "src" / "f3", world / "dst" / "f3")
    assert len(run_dirs(world)) == 2


@needs_gridftp
def test_a_file_this_run_failed_is_sent_again_whatever_the_level(world, servers):
    make_files(world / "src", {"a.dat": MIB})
    (world / "src" / "a.dat").chmod(0o000)             # the first attempt fails
    src, dst = f"{servers[0].node}{world}/src", f"{servers[2].node}{world}/dst"
    first = dtn(world, "run", "-q", "--retries", "0", "--sync-level", "0", src, dst)
    assert first.returncode == 1
    (world / "src" / "a.dat").chmod(0o644)
    _stale_copy(world, "a.dat")                         # what the failed attempt left behind
    (run_dir,) = run_dirs(world)
    out = dtn(world, "run", "--json", "--resume", run_dir.name, check=0)
    assert json.loads(out.stdout)["files"]["skipped"] == 0
    assert identical(world / "src" / "a.dat", world / "dst" / "a.dat")


def test_a_file_a_killed_session_was_writing_is_never_skipped(tmp_path):
    """A killed session journals nothing for the files in flight; at full size with holes
    (parallel streams write out of order) they would pass a size check."""
    from dtn_transfer.endpoints import Endpoint
    from dtn_transfer.options import RunOptions
    from dtn_transfer.plan import SourceFile, make_plan
    from dtn_transfer.session import RunSession
    (tmp_path / "src").mkdir()
    (tmp_path / "dst").mkdir()
    for name in ("in flight.dat", "untouched.dat"):
        (tmp_path / "src" / name).write_bytes(os.urandom(MIB))
        (tmp_path / "dst" / name).write_bytes(os.urandom(MIB))     # same size, other bytes
    source, dest = Endpoint((), str(tmp_path / "src")), Endpoint((), str(tmp_path / "dst"))
    plan = make_plan(source, dest, [SourceFile("in flight.dat", MIB), SourceFile("untouched.dat", MIB)],
                     64 * MIB)
    session = RunSession.new(plan, RunOptions(sync=True), runs_base=str(tmp_path / "runs"))
    # what the killed session left: the batch list naming the file, no journal record for it
    with open(os.path.join(session.directory, "work", "batch-00001.list"), "w", encoding="utf-8") as f:
        f.write(f'"{source.url(None, "in flight.dat")}" "{dest.url(None, "in flight.dat")}"\n')
    resumed = RunSession.resume(session.run_id, runs_base=str(tmp_path / "runs"))
    report = resumed.run()
    assert report.state == "completed" and report.files["skipped"] == 1 and report.files["done"] == 1
    assert identical(tmp_path / "dst" / "in flight.dat", tmp_path / "src" / "in flight.dat")
