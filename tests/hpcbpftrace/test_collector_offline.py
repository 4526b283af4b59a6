"""The agent offline: a stand-in bpftrace replays captured output, the shared refresher publishes.

No pmcd, no kernel probes: what a refresh makes of a script's prints (metric values, instance
names, labels, stable instance numbers) through the agent's own runner and metric table.
"""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from pmdas.common.config import COMMON_OPTIONS, Config, validate
from pmdas.common.refresh import Refresher
from pmdas.hpcbpftrace.collector import BpftraceAgent
from pmdas.hpcbpftrace.registry import CURATED_DIR

from .conftest import fixture_path


@pytest.fixture
def agent(tmp_path):
    curated = tmp_path / "curated"
    curated.mkdir()
    shutil.copy(os.path.join(CURATED_DIR, "biolatency.bt"), curated)
    replay = tmp_path / "lines.jsonl"
    capture = Path(fixture_path("script_biolatency.jsonl")).read_bytes()
    replay.write_bytes(capture.split(b"\n\n\n")[0] + b"\n")
    fake = tmp_path / "fake-bpftrace"      # prints the capture up to the exit dump, then idles
    fake.write_text(f"#!/bin/sh\ncat {replay}\nexec sleep 60\n")
    fake.chmod(0o755)
    options = {**COMMON_OPTIONS, **BpftraceAgent.options}
    agent = BpftraceAgent(Config(validate({"script_dir": str(tmp_path / "admin"), "curated_dir": str(curated),
                                           "enabled": ["biolatency"], "bpftrace": str(fake)},
                                          options, "test"), None))
    yield agent
    agent.close()


def refresh_until(refresher: Refresher, metric: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        published = refresher.refresh_once()
        if published.values.get(metric) or time.monotonic() > deadline:
            return published
        time.sleep(0.1)


def test_prints_become_values_instances_and_labels(agent):
    refresher = Refresher(agent)
    published = refresh_until(refresher, "hpc.bpftrace.data.histogram")
    hist = dict(published.values["hpc.bpftrace.data.histogram"])
    names = list(hist)
    assert names == ["biolatency:@biolatency_us:254,0|32-63", "biolatency:@biolatency_us:254,0|64-127",
                     "biolatency:@biolatency_us:254,0|128-255", "biolatency:@biolatency_us:254,0|256-511",
                     "biolatency:@biolatency_us:254,0|512-1023"]
    assert list(hist.values()) == [13, 40, 27, 16, 61]
    byte_counters = dict(published.values["hpc.bpftrace.data.counter_bytes"])
    assert byte_counters == {"biolatency:@bio_bytes:254,0": 3031040}
    assert not published.values["hpc.bpftrace.data.counter"]      # @bio_bytes is 'unit bytes'
    instances = published.instances["data.histogram"]
    assert list(instances) == names
    assert instances[names[0]][1] == {"script": "biolatency", "variable": "@biolatency_us", "unit": "us",
                                      "key": "254,0", "bucket": "32-63"}
    assert published.instances["data.counter_bytes"]["biolatency:@bio_bytes:254,0"][1]["unit"] == "bytes"
    assert published.values["hpc.bpftrace.script.state"]["biolatency"] == "running"
    assert published.values["hpc.bpftrace.script.output_lines"]["biolatency"] == 3

    again = refresher.refresh_once()       # nothing printed since: the same instances and numbers
    assert again.instances["data.histogram"] == instances
    assert dict(again.values["hpc.bpftrace.data.histogram"]) == hist
