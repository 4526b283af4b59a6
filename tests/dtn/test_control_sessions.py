"""One GSI login per node and run: the listing's connection serves the checks that follow.

A GSI login costs round trips and a forked, authenticating server session; the run used
to log in to the source to list it, again to check there (--verify), and to the
destination once per batch.  Within ``control.kept()`` (a CLI run) a connection that
finished cleanly is reused; one that failed midway never is (it may owe replies);
liveness checks always log in afresh.  Logins are counted where they happen
(``plan.connect``, the GSI login), on real GSI-only servers.
"""
import json
import os
import socket

import pytest

from dtn_transfer import control, plan
from dtn_transfer.endpoints import Endpoint
from dtn_transfer.plan import make_plan, walk_remote
from dtn_transfer.verify import Checker, node_answers

from .conftest import GRIDFTP, make_files

pytestmark = GRIDFTP


@pytest.fixture
def logins(monkeypatch):
    """Nodes logged in to, in order."""
    seen: list[str] = []
    real = plan.connect

    def counting(node, *args, **kwargs):
        seen.append(node)
        return real(node, *args, **kwargs)

    monkeypatch.setattr(plan, "connect", counting)
    return seen


def _setup(world, servers):
    make_files(world / "src", {"a.bin": 300_000, "b.bin": 5000})
    src = Endpoint((servers[0].node,), f"{world}/src")
    dst = Endpoint((servers[2].node,), f"{world}/dst")
    return src, dst, (servers[0].node, servers[2].node)


def _send(world, names):
    for name in names:
        (world / "dst" / name).write_bytes((world / "src" / name).read_bytes())


def test_a_run_logs_in_once_per_node_for_listing_checksums_and_every_batch(world, servers, logins):
    src, dst, pair = _setup(world, servers)
    with control.kept():
        planned = make_plan(src, dst, walk_remote(pair[0], src.path, scheme=src.scheme), 1 << 20)
        _send(world, ["a.bin", "b.bin"])
        for _batch in range(3):                        # three batches, --verify (CKSM both sides)
            checker = Checker(src, dst, pair, checksum=True)
            assert checker.verify(planned.files) == {"a.bin": None, "b.bin": None}
            checker.close()
        assert logins == [pair[0], pair[1]], "listing + CKSM share one source login; batches one dest login"
        assert node_answers(pair[1], scheme=dst.scheme)
        assert logins[-1] == pair[1] and len(logins) == 3, "a liveness check logs in afresh"
    # outside a run nothing is kept: every checker logs in again (as before)
    checker = Checker(src, dst, pair, checksum=True)
    assert checker.verify(planned.files) == {"a.bin": None, "b.bin": None}
    checker.close()
    assert len(logins) == 5


def test_a_reused_connection_still_finds_a_wrong_file(world, servers, logins):
    src, dst, pair = _setup(world, servers)
    with control.kept():
        planned = make_plan(src, dst, walk_remote(pair[0], src.path, scheme=src.scheme), 1 << 20)
        _send(world, ["a.bin"])
        checker = Checker(src, dst, pair, checksum=True)
        first = checker.verify(planned.files)
        checker.close()
        assert first["a.bin"] is None and first["b.bin"] == "missing at the destination after transfer"
        (world / "dst" / "b.bin").write_bytes(b"x" * 5000)      # right size, other bytes
        checker = Checker(src, dst, pair, checksum=True)
        second = checker.verify(planned.files)
        checker.close()
        assert second["a.bin"] is None and second["b.bin"].startswith("MD5 mismatch")
        assert len(logins) == 2


def test_a_connection_that_failed_or_went_away_is_not_reused(world, servers, logins):
    src, dst, pair = _setup(world, servers)
    _send(world, ["a.bin", "b.bin"])
    files = make_plan(src, dst, [plan.SourceFile("a.bin", 300_000)], 1 << 20).files
    with control.kept():
        checker = Checker(src, dst, pair, checksum=False)
        assert checker.verify(files) == {"a.bin": None}
        checker.close(broken=True)                 # as after an exchange that failed midway
        checker = Checker(src, dst, pair, checksum=False)
        assert checker.verify(files) == {"a.bin": None}
        assert logins == [pair[1], pair[1]], "a broken connection is closed, not parked"
        checker._dst.ftp.sock.shutdown(socket.SHUT_RDWR)   # the connection dies while parked
        checker.close()
        checker = Checker(src, dst, pair, checksum=False)
        assert checker.verify(files) == {"a.bin": None}, "a dead parked connection is replaced"
        checker.close()
        assert logins == [pair[1]] * 3


def test_checksums_of_many_files_are_pipelined_and_stay_in_step_after_refusals(world, servers, monkeypatch):
    """--verify on many small files: CKSM commands go out in a few writes per side instead of a
    round trip per file; a refused CKSM (file gone at the source) or a wrong byte touches only
    its own file's result."""
    from dtn_transfer import gsi

    spec = {f"f{i:02d}.bin": 1000 + i for i in range(40)}
    make_files(world / "src", spec)
    src = Endpoint((servers[0].node,), f"{world}/src")
    dst = Endpoint((servers[2].node,), f"{world}/dst")
    pair = (servers[0].node, servers[2].node)
    files = make_plan(src, dst, [plan.SourceFile(r, n) for r, n in spec.items()], 1 << 20).files
    _send(world, spec)
    (world / "dst" / "f07.bin").write_bytes(b"\0" * spec["f07.bin"])      # same size, other bytes
    (world / "src" / "f21.bin").unlink()                                  # the source cannot hash it
    (world / "dst" / "f33.bin").unlink()                                  # never arrived
    writes = []
    real = gsi._ProtectedSocket.sendall

    def counting(self, data, flags=0):
        writes.append(data.count(b"CKSM"))
        return real(self, data, flags)

    monkeypatch.setattr(gsi._ProtectedSocket, "sendall", counting)
    checker = Checker(src, dst, pair, checksum=True)
    try:
        result = checker.verify(files)
    finally:
        checker.close()
    assert result.pop("f07.bin").startswith("MD5 mismatch")
    assert result.pop("f21.bin") == "checksum could not be computed"
    assert result.pop("f33.bin") == "missing at the destination after transfer"
    assert result == dict.fromkeys(result), "every other file checks out"
    cksm_writes = [n for n in writes if n]
    assert sum(cksm_writes) == 2 * 39 and len(cksm_writes) <= 4, cksm_writes


def test_directories_are_made_ahead_for_many_files_and_a_new_nested_destination(world, servers):
    """-cd costs globus-url-copy a round trip per file (2.3 s of 9.5 for 100 files at 130 ms):
    with more than 12 files per slot the directories, the new destination's parents included, are
    made beforehand over the checks' connection and -cd is left out; a destination that
    cannot be made still fails every file with the server's reason."""
    from dtn_transfer.batchrun import batch_argv, dest_dirs, dirs_ahead
    from dtn_transfer.options import RunOptions
    from dtn_transfer.schedule import Batch
    from dtn_transfer.tuning import Tuning

    from .conftest import dtn, identical

    spec = {f"d{i % 3}/sub{i % 2}/f{i:03d}.bin": 2000 + i for i in range(100)}
    make_files(world / "src", spec)
    tuning = Tuning(concurrency=8, parallelism=1, pipelining=True)
    batch = Batch(pair=0, bin="small", tuning=tuning,
                  files=make_plan(Endpoint(("a:1",), "/s"), Endpoint(("b:1",), "/d"),
                                  [plan.SourceFile(r, n) for r, n in spec.items()], 1 << 20).files)
    few = Batch(pair=0, bin="small", tuning=tuning, files=batch.files[:96])
    assert dirs_ahead(batch) and not dirs_ahead(few), "more than 12 files per slot"
    assert dest_dirs(batch)[:4] == ["", "d0", "d1", "d2"] and "d2/sub1" in dest_dirs(batch)
    assert "-cd" not in batch_argv(batch, RunOptions(), "l", "d", True, make_dirs=False)
    assert "-cd" in batch_argv(batch, RunOptions(), "l", "d", True)

    src, dst = f"{servers[0].node}{world}/src", f"{servers[2].node}{world}/dst/new/deeper"
    dtn(world, "run", "-q", src, dst, check=0)
    for rel in spec:
        assert identical(world / "src" / rel, world / "dst" / "new" / "deeper" / rel), rel

    locked = world / "locked"
    locked.mkdir()
    os.chmod(locked, 0o755)          # root's: the servers' mapped user cannot make anything in it
    out = dtn(world, "run", "-q", "--json", "--retries", "1", src, f"{servers[2].node}{locked}/x", check=1)
    report = json.loads(out.stdout)
    assert report["files"]["done"] == 0 and len(report["not_transferred"]) == len(spec)
    assert not (locked / "x").exists()
