"""Tier 2+3: a real dtn-transfer run between real GridFTP servers → hpcdtn under pmcd →
real pmie → hpc.alarm.*.

The run is frozen (SIGSTOP) mid-way: it stops updating its state (dtn.run_stalled) and,
with the floor set above what loopback moves, it is "too slow" (dtn.throughput_low).  One
source file is unreadable by the servers' anonymous user, so it fails on every attempt
(dtn.files_failing).  Once the run is let go and ends, every alarm clears.

dtn.gridftp_failures counts transfer-log lines whose CODE is not 226.  The server here
(globus-gridftp-server 13) logs no line for a transfer refused at open or failing on a
full disk, and logs CODE=226 with a short NBYTES for one whose client was killed or sent
ABOR mid-transfer (tried with a raw FTP control connection), so no fault we can cause makes
it write another code.  That rule is shown with one line in the
server's exact format appended to a live transfer log.
"""
from __future__ import annotations

import os
import signal
import subprocess

import pytest

from dtn_transfer.state import read_state
from tests.dtn.conftest import GRIDFTP, dtn, gridftp_tools, gsi_files, make_files, servers, world  # noqa: F401
from tests.harness.pcp import installed_agent, wait_for

from .live import alarm_values, rules_text, running_pmie, wait_alarms

pytestmark = [pytest.mark.pcp, pytest.mark.usefixtures("pmcd"), *GRIDFTP]

ABORTED = ("DATE=20261121101500.000000 HOST=dtn01 PROG=globus-gridftp-server NL.EVNT=FTP_INFO "
           "START=20261121101455.000000 USER=anonymous FILE=/data/set/f001 BUFFER=131072 "
           "BLOCK=262144 NBYTES=1048576 VOLUME=/ STREAMS=4 STRIPES=1 DEST=[127.0.0.1] TYPE=RETR "
           "CODE=426 TASKID=none\n")
OVERRIDES = {"dtn.throughput_low": {"min_mbytes_per_sec": 1_000_000},
             "dtn.run_stalled": {"max_seconds": 3}}


def _running_state(base) -> dict | None:
    runs = base / "state" / "runs"
    for run_dir in runs.iterdir() if runs.exists() else ():
        state = read_state(str(run_dir))
        if state and state.get("state") == "running" and state.get("files", {}).get("done", 0) >= 1:
            return state
    return None


def test_dtn_rules_fire_and_clear(world, servers):  # noqa: F811  (fixtures imported above)
    make_files(world / "src", {f"set/f{i:03d}": 400_000 for i in range(120)})
    secret = world / "src" / "set" / "secret.dat"
    secret.write_bytes(os.urandom(1000))
    os.chmod(secret, 0o600)                      # root's only: the anonymous user cannot read it
    alarm_state = world / "alarm-state"
    logs = [str(world / "srv" / f"transfer-{i}.log") for i in range(4)]
    config = {"runs_directory": str(world / "state" / "runs"), "transfer_logs": logs, "interval": 1}
    src = f"{servers[0].node}{world}/src/set"
    dst = f"{servers[2].node}{world}/dst/set"
    with installed_agent("hpcdtn", config), \
            installed_agent("hpcalarm", {"directory": str(alarm_state), "interval": 1}), \
            running_pmie(rules_text(["dtn"], str(alarm_state), OVERRIDES)):
        run = dtn(world, "run", src, dst, "-q", "-c", "1", "-p", "1", "--retries", "1",
                  popen={"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL})
        try:
            wait_for(lambda: _running_state(world), 60, 0.05, what="the run to start moving files")
            os.kill(run.pid, signal.SIGSTOP)
            wait_alarms({"dtn.run_stalled": 1, "dtn.throughput_low": 1}, timeout=40)
        finally:
            os.kill(run.pid, signal.SIGCONT)
        assert run.wait(180) != 0                # one file could not be sent
        wait_alarms({"dtn.run_stalled": 0, "dtn.throughput_low": 0, "dtn.files_failing": 0}, timeout=60)
        # A "0" entry exists only for an alarm that fired and then cleared.
        assert any(k.startswith("dtn.files_failing:") for k in alarm_values("firing"))

        with open(logs[0], "a", encoding="ascii") as f:
            f.write(ABORTED)
        wait_alarms({"dtn.gridftp_failures|127.0.0.1": 0}, timeout=40)   # fired once, then cleared
