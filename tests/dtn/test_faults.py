"""Faults: a GridFTP node killed mid-run, and dtn-transfer itself killed then resumed."""
import json
import os
import signal
import subprocess
import time

from .conftest import GRIDFTP, dtn, identical, journal, make_files, run_dirs

pytestmark = GRIDFTP

SLOW = ("-c", "1", "-p", "1", "--no-pipelining", "--bdp", "64M")   # one file at a time per pair


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not reached in time")


def done_files(world, pair_dest=None):
    runs = run_dirs(world)
    if not runs or not (runs[0] / "journal.jsonl").exists():
        return []
    return [e for e in journal(runs[0]) if e["result"] == "done"
            and (pair_dest is None or e["pair"].endswith(">" + pair_dest))]


def test_server_killed_mid_run_every_file_still_arrives(world, servers):
    spec = {f"f{i:03d}": 300_000 + i for i in range(600)}   # seconds of work per pair
    make_files(world / "src", spec)
    victim = servers[3]
    proc = dtn(world, "run", f"{servers[0].node},{servers[1].node}{world}/src",
               f"{servers[2].node},{victim.node}{world}/dst", *SLOW, "--json",
               popen={"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True})
    wait_for(lambda: len(done_files(world, victim.node)) >= 3)
    victim.stop(signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, out + err
    for rel in spec:
        assert identical(world / "src" / rel, world / "dst" / rel), rel
    entries = journal(run_dirs(world)[0])
    hit = [e for e in entries if e["result"] == "failed" and e["pair"].endswith(victim.node)]
    assert hit, "the kill landed while the pair still had files"
    for e in hit:   # each file that failed there was delivered by the surviving pair
        final = [x for x in entries if x["file"] == e["file"]][-1]
        assert final["result"] == "done" and final["pair"].endswith(servers[2].node)
    assert json.loads(out)["state"] == "completed"


def test_killed_transfer_resumes_without_resending(world, servers):
    spec = {f"f{i:03d}": 300_000 + i for i in range(600)}
    make_files(world / "src", spec)
    proc = dtn(world, "run", f"{servers[0].node}{world}/src", f"{servers[2].node}{world}/dst", *SLOW, "-q",
               popen={"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL})
    wait_for(lambda: len(done_files(world)) >= 5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    (run_dir,) = run_dirs(world)
    before = {e["file"] for e in journal(run_dir) if e["result"] == "done"}
    assert 5 <= len(before) < len(spec)
    stamps = {f: os.stat(world / "dst" / f).st_mtime_ns for f in before}
    # The killed run left state "running" behind; its globus-url-copy children died with it.
    assert json.loads((run_dir / "state.json").read_text())["state"] == "running"
    time.sleep(0.05)
    out = dtn(world, "run", "--resume", run_dir.name, "--json", check=0)
    report = json.loads(out.stdout)
    assert report["state"] == "completed" and report["files"]["done"] == len(spec)
    for rel in spec:
        assert identical(world / "src" / rel, world / "dst" / rel), rel
    assert {f: os.stat(world / "dst" / f).st_mtime_ns for f in before} == stamps, "no re-send"
    resent = [e for e in journal(run_dir)[len(before):] if e["file"] in before]
    assert resent == []
