"""Run files that a resume depends on: the journal survives a torn line, the plan is durable."""
from __future__ import annotations

import json
import os

from dtn_transfer.state import Journal, read_journal, write_json_atomic


def test_a_torn_last_line_loses_only_itself(tmp_path):
    path = tmp_path / "journal.jsonl"
    torn = '{"file": "b", "sta'                 # killed mid-write
    path.write_text(json.dumps({"file": "a", "state": "done"}) + "\n" + torn)
    Journal(str(path)).record([{"file": "c", "state": "done"}, {"file": "d", "state": "done"}])
    assert sorted(read_journal(str(path))) == ["a", "c", "d"]


def test_a_clean_journal_gets_no_blank_lines(tmp_path):
    path = tmp_path / "journal.jsonl"
    journal = Journal(str(path))
    journal.record([{"file": "a", "state": "done"}])
    Journal(str(path)).record([{"file": "b", "state": "done"}])
    assert path.read_text().count("\n") == 2 and "\n\n" not in path.read_text()


def test_plan_writes_are_durable_live_state_writes_are_not(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    write_json_atomic(str(tmp_path / "plan.json"), {"files": []}, durable=True)
    assert len(synced) == 2                      # the file, then its directory
    write_json_atomic(str(tmp_path / "state.json"), {"state": "running"})
    assert len(synced) == 2
    assert json.loads((tmp_path / "plan.json").read_text()) == {"files": []}


def _run(base, name, state):
    (base / name).mkdir(parents=True)
    (base / name / "state.json").write_text(json.dumps({"state": state, "host": "elsewhere", "pid": 1}))


def test_only_completed_runs_are_pruned_resumable_ones_stay(tmp_path):
    from dtn_transfer.state import list_runs, prune_runs
    _run(tmp_path, "20260101-000000-aaaaaa", "interrupted")
    _run(tmp_path, "20260101-000001-aaaaaa", "incomplete")
    for i in range(25):
        _run(tmp_path, f"20260102-{i:06d}-bbbbbb", "completed")
    prune_runs(str(tmp_path), keep=20)
    kept = list_runs(str(tmp_path))
    assert kept[:2] == ["20260101-000000-aaaaaa", "20260101-000001-aaaaaa"]
    assert len(kept) == 22


def test_remove_deletes_one_run_and_refuses_other_paths(tmp_path):
    import pytest

    from dtn_transfer.state import list_runs, remove_run
    _run(tmp_path / "runs", "r1", "interrupted")
    (tmp_path / "outside").mkdir()
    for bad in ("..", "../outside", "", "nope"):
        with pytest.raises(ValueError):
            remove_run(str(tmp_path / "runs"), bad)
    remove_run(str(tmp_path / "runs"), "r1")
    assert list_runs(str(tmp_path / "runs")) == [] and (tmp_path / "outside").exists()


def test_every_write_a_resume_depends_on_reaches_the_disk(tmp_path, monkeypatch):
    """The run's directory name, its plan and options, the journal's name and records, and the
    last state (a resume carries its counters on) are fsynced; live state updates are not."""
    from dtn_transfer.endpoints import Endpoint
    from dtn_transfer.options import RunOptions
    from dtn_transfer.plan import SourceFile, make_plan
    from dtn_transfer.session import RunSession
    synced = []
    real_fsync = os.fsync

    def fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a").write_bytes(b"x" * 10)
    plan = make_plan(Endpoint((), str(tmp_path / "src")), Endpoint((), str(tmp_path / "dst")),
                     [SourceFile("a", 10)], 1 << 20)
    runs = tmp_path / "runs"
    session = RunSession.new(plan, RunOptions(), runs_base=str(runs))
    run_dir = runs / session.run_id
    assert str(runs) in synced, "the run directory's name"
    temporaries = [p for p in synced if p.startswith(str(run_dir / ".tmp."))]
    assert len(temporaries) == 2 and synced.count(str(run_dir)) == 2, "plan.json, settings.json"
    synced.clear()
    assert session.run().state == "completed"
    assert str(run_dir / "journal.jsonl") in synced and str(run_dir) in synced
    assert synced.count(str(run_dir)) >= 2, "the journal's name, then the final state"
