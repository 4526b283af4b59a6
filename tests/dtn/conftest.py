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

# Tier 3 (real services): setup installs GridFTP and iproute2, so their absence FAILS the
# tests that need them instead of skipping them.  Leave tier 3 out with -m "not services".


def missing_tools(*tools: str) -> list[str]:
    return [t for t in tools if shutil.which(t) is None]


@pytest.fixture(scope="session")
def gridftp_tools():
    if os.geteuid() != 0:
        pytest.fail("GridFTP tests need root: the servers switch to an unprivileged anonymous user")
    missing = missing_tools("globus-gridftp-server", "globus-url-copy")
    if missing:
        pytest.fail(f"{' and '.join(missing)} not found: run `make setup` (Debian packages "
                    "globus-gridftp-server-progs and globus-gass-copy-progs)")


@pytest.fixture(scope="session")
def testbed_tools(gridftp_tools):
    missing = missing_tools("ip", "tc")
    if missing:
        pytest.fail(f"{' and '.join(missing)} not found: run `make setup` (Debian package iproute2); "
                    "the testbed builds network namespaces and shapes them with tc")


GRIDFTP = [pytest.mark.services, pytest.mark.root, pytest.mark.usefixtures("gridftp_tools")]
TESTBED = [*GRIDFTP, pytest.mark.usefixtures("testbed_tools")]


def _marked(marks):
    def decorate(test):
        for mark in marks:
            test = mark(test)
        return test
    return decorate


needs_gridftp = _marked(GRIDFTP)     # decorators; as module ``pytestmark`` use the lists
needs_testbed = _marked(TESTBED)


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
