"""Fixtures for the hpcbpftrace tests: captured bpftrace 0.17 output, and a live bpftrace."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

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
# (a real one detaching many probes, or printing big maps, on a loaded node).  One process,
# no children: the runner's SIGKILL after its stop_timeout leaves nothing behind.
SLOW_TO_STOP = """#!{python}
import signal, sys, time
def stop(*_):
    time.sleep({delay})
    sys.exit(0)
signal.signal(signal.SIGINT, stop)
print('{{"type": "attached_probes", "data": {{"probes": 1}}}}', flush=True)
while True:
    time.sleep(3600)
"""


def slow_to_stop_bpftrace(directory, delay: float) -> str:
    """Write the stand-in into ``directory`` and return its path."""
    path = os.path.join(str(directory), "slow-bpftrace")
    with open(path, "w", encoding="ascii") as f:
        f.write(SLOW_TO_STOP.format(python=sys.executable, delay=delay))
    os.chmod(path, 0o755)
    return path
