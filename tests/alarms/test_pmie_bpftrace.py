"""Tier 2+3: real bpftrace scripts misbehave → hpcbpftrace under pmcd → real pmie → hpc.alarm.*.

One script floods its output past the agent's line-rate cap (it is stopped as
failed); another exits every second (it is restarted with back-off).  Removing
each script clears its alarm.
"""
from __future__ import annotations

import os
import shutil
import tempfile

import pytest

from tests.harness.pcp import hpc_pcp, installed_agent, reader, wait_for

from .live import rules_text, running_pmie, wait_alarms

pytestmark = [pytest.mark.pcp, pytest.mark.usefixtures("pmcd")]

FLOOD = """// name: flood_test
// description: prints far more lines than the agent allows (alarm test)
// requires: interval

interval:ms:2
{
	printf("line\\n");
}
"""

QUITS = """// name: quits_test
// description: exits after one second, every time (alarm test)
// requires: interval

interval:s:1
{
	exit();
}
"""


def _state(script: str):
    states = reader().fetch(["hpc.bpftrace.script.state"])["hpc.bpftrace.script.state"] or {}
    return states.get(script)


def test_bpftrace_rules_fire_and_clear():
    work = tempfile.mkdtemp(prefix="alarm-bpftrace-")
    os.chmod(work, 0o755)
    state = os.path.join(work, "state")
    config = {"script_dir": os.path.join(work, "admin"), "interval": 1, "enabled": [],
              "max_lines_per_sec": 50}
    try:
        with installed_agent("hpcbpftrace", config), \
                installed_agent("hpcalarm", {"directory": state, "interval": 1}), \
                running_pmie(rules_text(["bpftrace"], state)):
            for name, text in (("flood_test", FLOOD), ("quits_test", QUITS)):
                path = os.path.join(work, f"{name}.bt")
                with open(path, "w", encoding="utf-8") as f:
                    f.write(text)
                added = hpc_pcp("bpftrace", "add", path)
                assert added.returncode == 0, added.stderr
            wait_for(lambda: _state("flood_test") == "failed", 60, what="flood_test to be stopped")
            wait_alarms({"bpftrace.script_failed|flood_test": 1,
                         "bpftrace.script_restarting|quits_test": 1}, timeout=60)
            error = reader().fetch(["hpc.bpftrace.script.error"])["hpc.bpftrace.script.error"]
            assert "line" in error["flood_test"], error

            assert hpc_pcp("bpftrace", "remove", "flood_test").returncode == 0
            wait_alarms({"bpftrace.script_failed": 0})
            assert hpc_pcp("bpftrace", "remove", "quits_test").returncode == 0
            wait_alarms({"bpftrace.script_restarting": 0})   # the last script gone: the guard clears
    finally:
        shutil.rmtree(work, ignore_errors=True)
