"""Tier 2: instance names a node user chooses reach pmcd safe, through the real pmcd.

DTN run names are chosen by whoever runs dtn-transfer and read from the runs directory by
hpcdtn.  Before the shared check (pmdas/common/names.py) a lone surrogate made every refresh
fail to publish while agent.up stayed 1, and a newline reached pmie's actions verbatim.
"""
from __future__ import annotations

import json
import os
import socket

import pytest

from tests.harness.pcp import installed_agent, reader, run_pcp, wait_for

pytestmark = [pytest.mark.pcp, pytest.mark.usefixtures("pmcd")]

RUNS = ["plain", "evil\nHPCALARM\ntouch /tmp/hpc-owned", "lone\ud800", "Not Running: a", "Not Running: b"]


def _write_run(directory, index: int, run: str) -> None:
    path = directory / f"run{index}"
    path.mkdir()
    doc = {"version": 1, "run": run, "state": "running", "pid": os.getpid(), "host": socket.gethostname(),
           "started": 1.0, "updated": 2.0, "source": "a:1/x", "dest": "b:2/y", "settings": {},
           "files": {"total": 3, "done": 1, "skipped": 0, "failed": 0},
           "bytes": {"total": 30, "done": 10, "moved": 15}, "pairs": {}}
    (path / "state.json").write_text(json.dumps(doc))     # ensure_ascii: the surrogate as \\ud800


def test_hostile_run_names_are_served_safely(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    for k, run in enumerate(RUNS):
        _write_run(runs, k, run)
    with installed_agent("hpcdtn", {"runs_directory": str(runs), "interval": 1}):
        got = wait_for(lambda: (v := reader().fetch(["hpc.dtn.run.state"])["hpc.dtn.run.state"])
                       and len(v) == len(RUNS) and v, 30, what="every run served")
        health = reader().fetch(["hpc.dtn.agent.up", "hpc.dtn.runs.active"])
        assert health == {"hpc.dtn.agent.up": 1, "hpc.dtn.runs.active": len(RUNS)}
        assert "plain" in got and set(got.values()) == {"running"}
        for name in got:
            assert not any(c in name for c in "\n\r\ud800"), repr(name)
        assert len({name.split(" ")[0] for name in got}) == len(RUNS)
        out = run_pcp("pminfo", "-f", "hpc.dtn.run.state")
        assert out.returncode == 0 and out.stdout.count('value "running"') == len(RUNS), out.stdout
        labels = run_pcp("pminfo", "-l", "hpc.dtn.run.state").stdout
        assert '"raw_name":"evil\\nHPCALARM\\ntouch /tmp/hpc-owned"' in labels, labels
        assert not os.path.exists("/tmp/hpc-owned")
