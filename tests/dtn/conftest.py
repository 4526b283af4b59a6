"""Real GridFTP servers on 127.0.0.1 standing for DTN nodes, and a dtn-transfer runner."""
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import pytest

from dtn_transfer.servers import GridftpServer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BASE_PORT = 20910

needs_gridftp = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("globus-gridftp-server") or not shutil.which("globus-url-copy"),
    reason="needs root, globus-gridftp-server and globus-url-copy")


@pytest.fixture
def world():
    """Source and destination trees readable/writable by the servers' anonymous user.

    Not below pytest's tmp_path: that is private to root (0700), and the servers run
    transfers as the unprivileged anonymous user.
    """
    base = pathlib.Path(tempfile.mkdtemp(prefix="dtn-test-", dir="/tmp"))
    for sub in ("src", "dst", "state", "srv"):
        (base / sub).mkdir()
    for d in (base, base / "src", base / "dst", base / "srv"):
        os.chmod(d, 0o777)
    yield base
    if not os.environ.get("DTN_TEST_KEEP"):   # set it to inspect journals after a failure
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def servers(world):
    """Four GridFTP nodes: two stand for the source cluster, two for the destination."""
    started = []
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    offset = int(worker[2:] or 0) * 10 if worker.startswith("gw") else 0
    try:
        for i in range(4):
            server = GridftpServer(BASE_PORT + offset + i, str(world / "srv"),
                                   transfer_log=str(world / "srv" / f"transfer-{i}.log"))
            started.append(server.start())
        yield started
    finally:
        for server in started:
            server.stop()


def make_files(root, spec):
    """spec: {relpath: size}; contents are random so a wrong byte shows."""
    for relpath, size in spec.items():
        path = root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path.parent, 0o777)
        path.write_bytes(os.urandom(size))
        os.chmod(path, 0o644)


def dtn(world, *args, check=None, popen=None):
    """Run the dtn-transfer CLI (as the console script would) with the world's state dir."""
    env = {**os.environ, "DTN_TRANSFER_STATE_DIR": str(world / "state"), "PYTHONPATH": ROOT}
    argv = [sys.executable, "-m", "dtn_transfer.cli", *args]
    if popen:
        return subprocess.Popen(argv, env=env, **popen)
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    if check is not None:
        assert done.returncode == check, done.stdout + done.stderr
    return done


def identical(a, b) -> bool:
    return a.read_bytes() == b.read_bytes()


def run_dirs(world):
    runs = world / "state" / "runs"
    return sorted(runs.iterdir()) if runs.exists() else []


def journal(run_dir):
    with open(run_dir / "journal.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f]
