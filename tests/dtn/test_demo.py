"""The hpcdtn demo hook on the DTN testbed: a transfer in flight at once, the next one after
it, and nothing left behind (namespaces, servers, transfer) after teardown.  No pmcd needed."""
import os
import shutil
import tempfile
import time

from dtn_lab.testbed import netns
from dtn_transfer.state import read_state
from hpc_demo import hpcdtn as demo
from tests.harness.pcp import wait_for

from .conftest import TESTBED
from .testbed_support import leftovers

pytestmark = TESTBED


def runs_in(directory):
    runs = os.path.join(directory, "state", "runs")
    return [read_state(os.path.join(runs, r)) or {} for r in sorted(os.listdir(runs))]


def test_demo_moves_data_between_testbed_clusters_and_teardown_removes_it():
    directory = tempfile.mkdtemp(prefix="hpcdtn-demo-")
    started = time.monotonic()
    try:
        config = demo.prepare(directory)
        assert time.monotonic() - started < 30, "the testbed comes up in well under a minute"
        assert not os.path.exists(os.path.join(directory, "testbed-error.txt"))
        assert config["runs_directory"] == os.path.join(directory, "state", "runs")
        assert len(config["transfer_logs"]) == 4
        first = wait_for(lambda: [r for r in runs_in(directory) if r.get("bytes", {}).get("moved")], 30)
        assert first[0]["state"] == "running" and first[0]["source"].startswith("10.213.120.")
        demo.advance(directory)             # the first is still running: no second transfer yet
        assert len(runs_in(directory)) == 1
        wait_for(lambda: runs_in(directory)[0].get("state") == "completed", 90)
        # The run's state says completed a moment before its process exits (longer on a loaded
        # machine); the demo's ticker calls advance every few seconds, and so does this loop.
        wait_for(lambda: demo.advance(directory) or len(runs_in(directory)) == 2, 20, 1,
                 what="the demo's next transfer")
        assert any(os.path.getsize(log) > 0 for log in config["transfer_logs"]), "servers log transfers"
    finally:
        transfer = demo._transfer_pid(directory)
        demo.teardown(directory)
    assert leftovers(demo.TESTBED) == {"namespaces": [], "etc_netns": [], "host_link": [], "processes": []}
    assert not [n for n in netns.namespaces() if n.startswith(demo.TESTBED + "-")]
    if transfer is not None:   # the second transfer was stopped (and reaped) before the testbed went
        assert not os.path.exists(f"/proc/{transfer}")
    shutil.rmtree(directory, ignore_errors=True)
