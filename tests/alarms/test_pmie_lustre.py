"""Tier 2: Lustre faults in the demo tree → hpclustre under pmcd → real pmie → hpc.alarm.*.

Phase 1 writes static faults (full MDT, no inodes, recovery, NOT HEALTHY) into a
still tree; one demo advance rewrites a clean tree.  Phase 2 advances the counters
every 0.4 s (traffic, with the rate rules' thresholds at 0) and then stops.
"""
from __future__ import annotations

import glob
import os
import shutil
import tempfile
import threading

import pytest

from hpc_demo import hpclustre as demo
from tests.harness.pcp import installed_agent, wait_refreshed

from .live import rules_text, running_pmie, wait_alarms

pytestmark = [pytest.mark.pcp, pytest.mark.usefixtures("pmcd")]


def _set(pattern: str, text: str) -> None:
    paths = glob.glob(pattern)
    assert paths, f"demo tree has no {pattern}"
    for path in paths:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)


def _faults(root: str) -> None:
    osd = os.path.join(root, "sys/fs/lustre/osd-ldiskfs")
    _set(f"{osd}/*-MDT0000/kbytesavail", "1000\n")              # nearly full
    _set(f"{osd}/*-OST0000/filesfree", "10\n")                  # out of inodes
    _set(os.path.join(root, "proc/fs/lustre/obdfilter/*-OST0001/recovery_status"),
         "status: RECOVERING\nrecovery_start: 1700000000\ntime_remaining: 120\n"
         "connected_clients: 1/4\nreq_replay_clients: 0\nlock_repay_clients: 0\n"
         "completed_clients: 1/4\nevicted_clients: 0\nreplayed_requests: 0\nqueued_requests: 0\n"
         "next_transno: 12884901889\n")
    _set(os.path.join(root, "sys/fs/lustre/health_check"), "NOT HEALTHY\n")


STATIC = ["lustre.target_space_low", "lustre.target_inodes_low", "lustre.target_recovering",
          "lustre.unhealthy"]
# Every demo advance ends some jobs and starts others: the per-job rules read the agent's own
# rates (job.io_rate, job.mdt.ops_rate), which stay defined while the job set changes.
RATES = ["lustre.rpc_wait_high", "lustre.job_io_heavy", "lustre.job_metadata_heavy"]


def test_lustre_rules_fire_and_clear():
    work = tempfile.mkdtemp(prefix="alarm-lustre-")
    os.chmod(work, 0o755)
    settings = demo.prepare(work)
    root, state = settings["root"], os.path.join(work, "state")
    overrides = {"lustre.rpc_wait_high": {"max_seconds": 0},
                 "lustre.job_io_heavy": {"max_mbytes_per_sec": 0},
                 "lustre.job_metadata_heavy": {"max_ops_per_sec": 0}}
    stop = threading.Event()

    def busy() -> None:
        while not stop.wait(0.4):
            demo.advance(work)

    try:
        with installed_agent("hpclustre", {**settings, "interval": 1}), \
                installed_agent("hpcalarm", {"directory": state, "interval": 1}):
            wait_refreshed("hpc.lustre", 1)
            with running_pmie(rules_text(["lustre"], state, overrides)):
                # Phase 1: full targets, recovery, NOT HEALTHY (the tree stands still).
                _faults(root)
                wait_alarms({r: 1 for r in STATIC}, timeout=40)
                demo.advance(work)  # rewrites a clean tree
                wait_alarms({r: 0 for r in STATIC}, timeout=40)
                # Phase 2: traffic, with the rate thresholds at 0.
                worker = threading.Thread(target=busy, daemon=True)
                worker.start()
                try:
                    wait_alarms({r: 1 for r in RATES}, timeout=40)
                finally:
                    stop.set()
                    worker.join()
                wait_alarms({r: 0 for r in RATES}, timeout=40)
    finally:
        shutil.rmtree(work, ignore_errors=True)
