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


def test_resume_asks_sizes_again_instead_of_trusting_the_plan(world, servers):
    make_files(world / "src", {"grows.dat": MIB, "kept.dat": MIB})
    grows = world / "src" / "grows.dat"
    grows.chmod(0o000)                       # unreadable: the first attempt fails it
    src, dst = f"{servers[0].node}{world}/src", f"{servers[2].node}{world}/dst"
    first = dtn(world, "run", "-q", "--json", "--retries", "0", src, dst)
    assert first.returncode == 1, first.stdout + first.stderr
    (run_dir,) = run_dirs(world)
    with open(grows, "ab") as f:             # it changes before the resume
        f.write(os.urandom(12345))
    grows.chmod(0o644)
    (world / "dst" / "kept.dat").unlink()    # and the destination loses a finished file
    again = dtn(world, "run", "-q", "--json", "--resume", run_dir.name)
    assert again.returncode == 0, again.stdout + again.stderr
    report = json.loads(again.stdout)
    assert report["bytes"]["total"] == 2 * MIB + 12345 and report["not_transferred"] == []
    assert identical(grows, world / "dst" / "grows.dat")
    assert identical(world / "src" / "kept.dat", world / "dst" / "kept.dat")
    plan = json.loads((run_dir / "plan.json").read_text())
    assert {f["relpath"]: f["size"] for f in plan["files"]}["grows.dat"] == MIB + 12345


def test_a_file_that_grew_while_sent_is_reported_with_its_new_size(tmp_path):
    from dtn_transfer.endpoints import Endpoint
    from dtn_transfer.plan import PlannedFile
    from dtn_transfer.verify import verify_files
    (tmp_path / "s").mkdir()
    (tmp_path / "d").mkdir()
    (tmp_path / "s" / "log").write_bytes(b"x" * 5000)     # grew from 1000 after the listing
    (tmp_path / "d" / "log").write_bytes(b"x" * 3000)     # what was sent of it
    f = PlannedFile(relpath="log", size=1000, bin="small", pair=0)
    why = verify_files(Endpoint((), str(tmp_path / "s")), Endpoint((), str(tmp_path / "d")), [f],
                       (None, None), False)["log"]
    assert "5000 bytes now" in why and "1000 when listed" in why, why
