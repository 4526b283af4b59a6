"""Tier 2: a real Slurm → hpcjob under pmcd → real pmie → hpc.alarm.*.

The conditions are made the way they happen on a cluster: an admin drains the
node, then marks it down, a job waits on its begin time, a job waits behind one that holds
the node so the backfill scheduler works on it, the controller stops.  Each rule fires, then the
condition is removed and the alarm clears.  job.backfill_slow's limit is 0 s, so any backfill
cycle is "slow"; it clears when `sdiag --reset` zeroes the last cycle time, as it does on a
cluster where an admin resets the statistics after fixing the cause.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time

import pytest

from tests.harness.pcp import installed_agent, reader, wait_for
from tests.services.slurm import hpcjob_config

from .live import alarm_values, rules_text, running_pmie, wait_alarms

pytestmark = [pytest.mark.pcp, pytest.mark.usefixtures("pmcd")]


def test_job_rules_fire_and_clear(slurm_cluster):
    c = slurm_cluster
    work = tempfile.mkdtemp(prefix="alarm-jobs-")
    os.chmod(work, 0o755)
    state = os.path.join(work, "state")
    overrides = {"job.pending_too_long": {"max_seconds": 0}, "job.backfill_slow": {"max_seconds": 0}}
    waiting = holder = None
    try:
        with installed_agent("hpcjob", hpcjob_config(c, timeout=3)), \
                installed_agent("hpcalarm", {"directory": state, "interval": 1}), \
                running_pmie(rules_text(["jobs"], state, overrides)):
            # Nothing is wrong yet: no job rule fires (earlier tests' backfill cycles forgotten).
            c.run("sdiag", "--reset")
            time.sleep(4)
            assert not [k for k in alarm_values("firing") if k.startswith("job.")]

            c.run("scontrol", "update", f"NodeName={c.host}", "State=DRAIN", "Reason=alarm-test")
            wait_alarms({"job.nodes_drained|debug": 1, "job.nodes_drained|long": 1})
            c.run("scontrol", "update", f"NodeName={c.host}", "State=RESUME")
            wait_alarms({"job.nodes_drained": 0})

            c.run("scontrol", "update", f"NodeName={c.host}", "State=DOWN", "Reason=alarm-test")
            wait_alarms({"job.nodes_down|debug": 1, "job.nodes_down|long": 1})
            c.run("scontrol", "update", f"NodeName={c.host}", "State=RESUME")
            wait_alarms({"job.nodes_down": 0})

            waiting = c.sbatch("-J", "waits", "--begin=now+1hour", "--wrap", "true")
            wait_alarms({f"job.pending_too_long|{waiting}": 1})
            c.run("scancel", waiting)
            wait_alarms({"job.pending_too_long": 0})

            # Backfill runs every 30 s (bf_interval) when a job is pending on resources.
            holder = c.sbatch("-J", "holds", "--exclusive", "--wrap", "sleep 300")
            waiting = c.sbatch("-J", "behind", "-t", "5", "--wrap", "true")
            wait_alarms({"job.backfill_slow": 1}, timeout=90)
            c.run("scancel", holder, waiting)
            c.run("sdiag", "--reset")
            wait_alarms({"job.backfill_slow": 0})

            c.stop_controller()
            try:
                wait_alarms({"job.scheduler_unresponsive": 1})
                # The agent keeps answering pmcd while its scheduler is gone.
                reachable = reader().fetch(["hpc.job.scheduler.reachable"])["hpc.job.scheduler.reachable"]
                assert reachable == 0
            finally:
                c.start_controller()
            wait_alarms({"job.scheduler_unresponsive": 0})
    finally:
        for job in (waiting, holder):
            if job:
                c.run("scancel", job, check=False)
        c.run("scontrol", "update", f"NodeName={c.host}", "State=RESUME", check=False)
        wait_for(lambda: "idle" in c.run("sinfo", "-h", "-o", "%T", check=False), 30,
                 what="the node to be idle again")
        shutil.rmtree(work, ignore_errors=True)
