"""A full destination (or quota) stops the run with one message instead of re-sending."""
import json
import subprocess
import time

import pytest

from dtn_transfer.progress import destination_full

from .conftest import dtn, journal, make_files, needs_gridftp, run_dirs

MIB = 1 << 20


@pytest.mark.parametrize("reply,full", [
    ("552 Exceeded storage allocation", True),
    ("500 500-Command failed. : callback failed. 500-globus_xio: System error in write: "
     "No space left on device", True),
    ("451 Disk quota exceeded", True),
    ("550 Permission denied", False), ("426 Data connection closed", False)])
def test_full_replies_are_told_from_others(reply, full):
    assert destination_full(reply) is full


@pytest.fixture
def small_destination(world):
    """A 3 MiB file system as the destination directory (unmounted by its path afterwards)."""
    target = world / "dst"
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m,mode=0777", "tmpfs", str(target)], check=True)
    yield target
    subprocess.run(["umount", str(target)], check=True)


@needs_gridftp
def test_a_full_destination_stops_the_run_once(world, servers, small_destination):
    make_files(world / "src", {f"f{i:02d}": MIB for i in range(12)})
    started = time.monotonic()
    out = dtn(world, "run", "--json", "-c", "1", "--retries", "3", f"{servers[0].node}{world}/src",
              f"{servers[2].node},{servers[3].node}{world}/dst")
    took = time.monotonic() - started
    assert out.returncode == 1, out.stdout + out.stderr
    report = json.loads(out.stdout)
    assert "full or over quota" in report["stopped_because"] and "No space left" in report["stopped_because"]
    assert report["state"] == "incomplete" and report["files"]["done"] <= 3
    assert len(report["not_transferred"]) == 12 - report["files"]["done"]
    assert all("full or over quota" in item["reason"] for item in report["not_transferred"])
    entries = journal(run_dirs(world)[0])
    assert max(e["attempt"] for e in entries) == 0, "no retry round: sending again cannot help"
    assert json.loads((run_dirs(world)[0] / "state.json").read_text())["retries"] == 0
    assert took < 60
