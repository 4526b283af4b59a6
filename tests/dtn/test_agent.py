"""hpcdtn agent: snapshot from a real run's state, liveness, bad input, transfer-log counters."""
import json
import os
import shutil
import subprocess

from pmdas.common.config import COMMON_OPTIONS, Config, validate
from pmdas.common.refresh import Refresher
from pmdas.hpcdtn.collector import DtnAgent

from .conftest import dtn, make_files, needs_gridftp, run_dirs

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


def agent(runs_directory, logs=()):
    options = {**COMMON_OPTIONS, **DtnAgent.options}
    raw = {"runs_directory": str(runs_directory), "transfer_logs": [str(p) for p in logs]}
    return Refresher(DtnAgent(Config(validate(raw, options, "test"), None)))


@needs_gridftp
def test_snapshot_from_a_real_run(world, servers):
    spec = {f"f{i}": 50_000 * (i + 1) for i in range(10)}
    make_files(world / "src", spec)
    dtn(world, "run", f"{servers[0].node},{servers[1].node}{world}/src",
        f"{servers[2].node},{servers[3].node}{world}/dst", "-q", check=0)
    (run_dir,) = run_dirs(world)
    run = run_dir.name
    state = json.loads((run_dir / "state.json").read_text())
    logs = [world / "srv" / f"transfer-{i}.log" for i in range(4)]
    published = agent(world / "state" / "runs", logs).refresh_once()
    v = published.values
    assert v["hpc.dtn.agent.up"] == 1
    assert v["hpc.dtn.run.state"] == {run: "completed"} and v["hpc.dtn.run.state_code"] == {run: 1}
    assert v["hpc.dtn.run.files.done"][run] == len(spec) == v["hpc.dtn.run.files.total"][run]
    assert v["hpc.dtn.run.bytes.done"][run] == sum(spec.values()) == state["bytes"]["done"]
    assert v["hpc.dtn.runs.active"] == 0
    nodes = published.instances["node"]
    assert set(nodes) == {f"{run}/{name}" for name in state["pairs"]} and len(nodes) == 2
    assert sum(v["hpc.dtn.node.bytes.done"].values()) == sum(spec.values())
    assert all(labels["run"] == run for _, labels in nodes.values())
    # Servers logged each file once as RETR (source) and once as STOR (destination).
    assert v["hpc.dtn.gridftp.bytes"]["127.0.0.1"] == 2 * sum(spec.values())
    assert v["hpc.dtn.gridftp.transfers"]["127.0.0.1"] >= 2 * len(spec)
    assert v["hpc.dtn.gridftp.failed_transfers"]["127.0.0.1"] == 0


def _state(run, state, pid, host):
    return {"version": 1, "run": run, "state": state, "pid": pid, "host": host, "started": 1.0,
            "updated": 2.0, "finished": None, "source": "a:1/x", "dest": "b:2/y", "settings": {},
            "files": {"total": 3, "done": 1, "skipped": 0, "failed": 0},
            "bytes": {"total": 30, "done": 10, "moved": 15},
            "throughput": {"instant": 5.0, "average": 4.0}, "streams_in_flight": 4, "retries": 0,
            "pairs": {"a:1>b:2": {"source": "a:1", "dest": "b:2", "state": "active", "files_total": 3,
                                  "bytes_total": 30, "files_done": 1, "bytes_done": 10, "failures": 0,
                                  "retries": 0, "throughput_instant": 5.0, "throughput_average": 4.0,
                                  "streams_in_flight": 4, "concurrency": 2, "parallelism": 2,
                                  "pipelining": True}}}


def test_running_run_whose_process_died_is_interrupted(tmp_path):
    import socket
    dead = subprocess.Popen(["true"])
    dead.wait()
    for run, pid in (("r1-dead", dead.pid), ("r2-live", os.getpid())):
        (tmp_path / run).mkdir()
        doc = _state(run, "running", pid, socket.gethostname())
        (tmp_path / run / "state.json").write_text(json.dumps(doc))
    v = agent(tmp_path).refresh_once().values
    assert v["hpc.dtn.run.state"] == {"r1-dead": "interrupted", "r2-live": "running"}
    assert v["hpc.dtn.runs.active"] == 1
    assert v["hpc.dtn.run.concurrency"]["r2-live"] == 2 and v["hpc.dtn.run.pipelining"]["r2-live"] == 1
    assert v["hpc.dtn.run.streams"]["r2-live"] == 4


def test_bad_state_files_are_skipped_and_bad_fields_unavailable(tmp_path):
    (tmp_path / "torn").mkdir()
    (tmp_path / "torn" / "state.json").write_text('{"version": 1, "run": "torn", "fi')
    (tmp_path / "nostate").mkdir()
    doc = _state("odd", "completed", 1, "elsewhere")
    doc["files"]["done"] = "many"
    doc["pairs"] = {"x": "not a mapping"}
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "state.json").write_text(json.dumps(doc))
    published = agent(tmp_path).refresh_once()
    assert set(published.instances["run"]) == {"odd"}
    assert published.values["hpc.dtn.run.files.done"] == {"odd": None}
    assert published.values["hpc.dtn.run.files.total"] == {"odd": 3}
    assert published.instances["node"] == {}


def test_missing_runs_directory_is_a_source_error(tmp_path):
    v = agent(tmp_path / "absent").refresh_once().values
    assert v["hpc.dtn.agent.up"] == 0 and "does not exist" in v["hpc.dtn.agent.last_error"]


def test_transfer_log_counters_grow_and_survive_rotation(tmp_path):
    log = tmp_path / "transfer.log"
    lines = open(os.path.join(FIXTURES, "transfer.log"), encoding="utf-8").read().splitlines(True)
    log.write_text("".join(lines[:3]))
    os.makedirs(tmp_path / "runs")
    refresher = agent(tmp_path / "runs", [log])
    first = refresher.refresh_once().values["hpc.dtn.gridftp.bytes"]["127.0.0.1"]
    assert first == 2 * 30000000
    with open(log, "a", encoding="utf-8") as f:
        f.write(lines[3] + lines[4][:40])    # the last line is still being written
    second = refresher.refresh_once().values["hpc.dtn.gridftp.bytes"]["127.0.0.1"]
    assert second == 3 * 30000000
    rotated = tmp_path / "transfer.log.1"
    shutil.move(log, rotated)
    log.write_text(lines[4])
    third = refresher.refresh_once().values
    assert third["hpc.dtn.gridftp.bytes"]["127.0.0.1"] == 4 * 30000000
    assert third["hpc.dtn.gridftp.transfers"]["127.0.0.1"] == 4
    assert third["hpc.dtn.gridftp.streams"]["127.0.0.1"] == 4
