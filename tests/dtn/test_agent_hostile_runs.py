"""hpcdtn reads a directory users write: a hostile run state is skipped and said, never followed,
waited on or read without bound, and the other runs are still served."""
from __future__ import annotations

import json
import os
import threading

from .test_agent import _state, agent


def _good(tmp_path, run="good"):
    (tmp_path / run).mkdir()
    (tmp_path / run / "state.json").write_text(json.dumps(_state(run, "completed", 1, "elsewhere")))


def test_hostile_state_files_are_skipped_with_reasons(tmp_path):
    _good(tmp_path)
    for name in ("zero", "fifo", "latin1", "huge", "dir"):
        (tmp_path / name).mkdir()
    os.symlink("/dev/zero", tmp_path / "zero" / "state.json")
    os.mkfifo(tmp_path / "fifo" / "state.json")
    (tmp_path / "latin1" / "state.json").write_bytes(b'{"version": 1, "run": "caf\xe9"}')
    with open(tmp_path / "huge" / "state.json", "wb") as f:
        f.truncate(64 * 1024 * 1024)     # sparse: 64 MiB of zeros, over the limit
    (tmp_path / "dir" / "state.json").mkdir()
    result: dict = {}
    reader = threading.Thread(target=lambda: result.update(p=agent(tmp_path).refresh_once()), daemon=True)
    reader.start()
    reader.join(20)
    assert not reader.is_alive(), "the refresh hung on a hostile state file"
    v = result["p"].values
    assert set(result["p"].instances["run"]) == {"good"}
    assert v["hpc.dtn.agent.up"] == 1 and v["hpc.dtn.run.state"] == {"good": "completed"}
    assert v["hpc.dtn.runs.unreadable"] == 5
    problems = v["hpc.dtn.runs.problems"]
    assert "zero/state.json is a symbolic link; not followed" in problems
    assert "fifo/state.json is not a regular file" in problems
    assert "latin1/state.json is not UTF-8 text (byte 26)" in problems
    assert "huge/state.json is 67108864 bytes, over the 4194304-byte limit" in problems
    assert "dir/state.json is not a regular file" in problems


def test_no_problems_reads_as_empty(tmp_path):
    _good(tmp_path)
    (tmp_path / "starting").mkdir()        # a run directory before its first state: not a problem
    v = agent(tmp_path).refresh_once().values
    assert v["hpc.dtn.runs.unreadable"] == 0 and v["hpc.dtn.runs.problems"] == ""
