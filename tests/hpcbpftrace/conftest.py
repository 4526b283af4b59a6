"""Fixtures for the hpcbpftrace tests: captured bpftrace 0.17 output, and a live bpftrace."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


def fixture_path(name: str) -> str:
    return os.path.join(FIXTURES, name)


def fixture_text(name: str) -> str:
    with open(fixture_path(name), encoding="utf-8") as f:
        return f.read()


def _mounted(path: str) -> bool:
    return os.path.isdir(os.path.join(path, "events")) or os.path.exists(os.path.join(path, "tracing"))


@pytest.fixture(scope="session")
def live_bpftrace() -> str:
    """The bpftrace binary, with tracefs/debugfs mounted; skip where it cannot run."""
    binary = shutil.which("bpftrace")
    if binary is None or os.geteuid() != 0:
        pytest.skip("needs bpftrace and root")
    if not _mounted("/sys/kernel/tracing"):
        subprocess.run(["mount", "-t", "tracefs", "tracefs", "/sys/kernel/tracing"], check=False)
    if not _mounted("/sys/kernel/debug"):
        subprocess.run(["mount", "-t", "debugfs", "debugfs", "/sys/kernel/debug"], check=False)
    probe = subprocess.run([binary, "-e", "BEGIN { exit(); }"], capture_output=True, timeout=60)
    if probe.returncode != 0:
        pytest.skip(f"bpftrace cannot run here: {probe.stderr.decode(errors='replace')[-200:]}")
    return binary


# A bpftrace stand-in that attaches at once and takes DELAY seconds to exit after SIGINT
# (a real one detaching many probes, or printing big maps, on a loaded node).
SLOW_TO_STOP = """#!/bin/sh
trap 'sleep {delay}; kill $idle 2>/dev/null; exit 0' INT
echo '{{"type": "attached_probes", "data": {{"probes": 1}}}}'
sleep 600 &
idle=$!
wait $idle
"""


def slow_to_stop_bpftrace(directory, delay: float) -> str:
    """Write the stand-in into ``directory`` and return its path."""
    path = os.path.join(str(directory), "slow-bpftrace")
    with open(path, "w", encoding="ascii") as f:
        f.write(SLOW_TO_STOP.format(delay=delay))
    os.chmod(path, 0o755)
    return path
