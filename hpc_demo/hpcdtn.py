"""Demo node hook: hpcdtn watching dtn-transfer move data between two DTN clusters.

``prepare`` brings up the DTN testbed (``dtn_lab.testbed``: a source and a
destination cluster of two nodes each as network namespaces, real GridFTP servers,
links shaped to 4 MiB/s per node; about a second to build) with two data sets, and
starts a transfer between the clusters.  ``advance`` starts the next transfer (the
other data set, its destination emptied) whenever one has ended, so hpc.dtn always has
a run in flight and the servers' transfer logs keep growing.  ``teardown`` stops the
transfer and removes the testbed: namespaces, links, servers and data.

Demo runs live in the demo's own state directory, so the machine's real dtn-transfer
runs are neither shown nor pruned by the demo.  If the testbed cannot be built (no
network namespaces here), the reason is written to ``testbed-error.txt`` and the agent
still serves the (empty) demo state directory.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from dtn_lab.testbed import Testbed, TestbedError
from dtn_lab.testbed import servers as testbed_servers

TESTBED = "dtndemo"
SUBNET = "10.213.120.0/24"
DATASETS = ("medium", "small")   # taken in turn, one transfer each (~15 s and ~7 s)


def _state_dir(directory: str) -> str:
    return os.path.join(directory, "state")


def _pidfile(directory: str) -> str:
    return os.path.join(directory, "transfer.pid")


def prepare(directory: str) -> dict:
    runs = os.path.join(_state_dir(directory), "runs")
    os.makedirs(runs, exist_ok=True)
    config: dict = {"runs_directory": runs, "interval": 1}
    try:
        bed = Testbed.up(TESTBED, source_nodes=2, dest_nodes=2, datasets=DATASETS, subnet=SUBNET)
    except (TestbedError, OSError) as exc:
        with open(os.path.join(directory, "testbed-error.txt"), "w", encoding="utf-8") as f:
            f.write(f"the DTN testbed could not be built, so the demo moves no data: {exc}\n")
        return config
    _start_transfer(directory, bed)
    config["transfer_logs"] = [testbed_servers.transfer_log(bed.layout, n) for n in bed.layout.nodes]
    return config


def advance(directory: str) -> None:
    try:
        bed = Testbed.load(TESTBED)
    except TestbedError:
        return
    _start_transfer(directory, bed)


def teardown(directory: str, wait: float = 15.0) -> None:
    """Stop the transfer, then remove the testbed (while it stops, the transfer still
    verifies and journals what arrived, which needs the servers)."""
    pid = _transfer_pid(directory)
    if pid is not None:
        try:
            os.kill(pid, signal.SIGTERM)   # dtn-transfer stops its globus-url-copy children
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + wait
        while _transfer_pid(directory) is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        if _transfer_pid(directory) is not None:
            os.kill(pid, signal.SIGKILL)
            _transfer_pid(directory)      # reap it if it is our child
    try:
        os.unlink(_pidfile(directory))
    except FileNotFoundError:
        pass
    Testbed.down(TESTBED)


def _transfer_pid(directory: str) -> int | None:
    """The demo's running transfer, if any (reaped if it was our child and has ended)."""
    try:
        with open(_pidfile(directory), encoding="ascii") as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return None
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass   # started by an earlier demo process: not ours to reap
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            zombie = f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return None
    return pid if b"dtn_transfer.cli" in cmdline and not zombie else None


def _start_transfer(directory: str, bed: Testbed) -> None:
    if _transfer_pid(directory) is not None:
        return
    turn_file = os.path.join(directory, "transfer.turn")
    try:
        with open(turn_file, encoding="ascii") as f:
            turn = int(f.read().strip()) + 1
    except (OSError, ValueError):
        turn = 0
    dataset = DATASETS[turn % len(DATASETS)]
    bed.clear_dest(dataset)
    src, dst = bed.endpoints(dataset)
    env = {**os.environ, **bed.client_environment(), "DTN_TRANSFER_STATE_DIR": _state_dir(directory)}
    with open(os.path.join(directory, "transfer.log"), "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "dtn_transfer.cli", "run", src, dst, "-q"],
                                stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True)
    with open(_pidfile(directory), "w", encoding="ascii") as f:
        f.write(str(proc.pid))
    with open(turn_file, "w", encoding="ascii") as f:
        f.write(str(turn))
