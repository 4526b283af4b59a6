"""Nothing reported delivered that is not: a file counts done only when this run wrote it
(its own transfer reply) and the destination then checks out (size, and the check level)."""
import json
import os

from .conftest import GRIDFTP, dtn, identical, journal, make_files, run_dirs

pytestmark = GRIDFTP

MIB = 1 << 20


def stale_destination(world):
    """a.dat, b.dat at the source; at the destination a b.dat of the same size with other
    bytes, owned by root and read-only: the servers' anonymous user cannot overwrite it."""
    make_files(world / "src", {"a.dat": MIB, "b.dat": MIB})
    stale = world / "dst" / "b.dat"
    stale.write_bytes(os.urandom(MIB))
    os.chown(stale, 0, 0)
    stale.chmod(0o444)
    return stale


def test_a_stale_file_the_server_cannot_overwrite_is_reported_failed(world, servers):
    stale = stale_destination(world)
    old = stale.read_bytes()
    src, dst = f"{servers[0].node}{world}/src", f"{servers[2].node}{world}/dst"
    out = dtn(world, "run", "-q", "--json", "--retries", "1", src, dst)
    assert out.returncode == 1, out.stdout + out.stderr
    report = json.loads(out.stdout)
    assert report["files"]["done"] == 1 and report["files"]["failed"] == 1, report
    assert [i["file"] for i in report["not_transferred"]] == ["b.dat"]
    assert identical(world / "src" / "a.dat", world / "dst" / "a.dat")
    assert stale.read_bytes() == old, "the stale file is what the destination still holds"
    (run_dir,) = run_dirs(world)
    assert all(e["result"] != "done" for e in journal(run_dir) if e["file"] == "b.dat")
    again = dtn(world, "run", "-q", "--json", "--resume", run_dir.name)
    assert again.returncode == 1, again.stdout + again.stderr
    resumed = json.loads(again.stdout)
    assert [i["file"] for i in resumed["not_transferred"]] == ["b.dat"]
    assert resumed["files"]["done"] == 1
    assert all(e["result"] != "done" for e in journal(run_dir) if e["file"] == "b.dat")
