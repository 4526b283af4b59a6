"""Real GridFTP servers on 127.0.0.1 standing for DTN nodes, and a dtn-transfer runner.

The servers are GSI-only (X.509: a CA, a host certificate for 127.0.0.1, a grid-mapfile and
a user proxy made by the lab's ``GsiFiles`` with Debian's GSI tools, kept per xdist worker
under /tmp and reused); ``dtn()`` runs with that proxy.  ``anonymous_servers`` are for the
tests about anonymous ftp:// (which dtn-transfer uses only with --anonymous)."""
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile

import pytest

from dtn_lab.testbed.gsi import GsiFiles, GsiSetupError
from dtn_transfer.servers import GridftpServer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLIENT_ENV: dict[str, str] = {}     # the test user's proxy and CA directory, once gsi_files ran

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


def _worker_offset() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(worker[2:] or 0) * 10 if worker.startswith("gw") else 0


@pytest.fixture(scope="session")
def gsi_files(gridftp_tools):
    """CA, host certificate for 127.0.0.1, grid-mapfile and proxy (made once, then reused)."""
    missing = missing_tools("grid-ca-create", "grid-proxy-init", "grid-cert-info")
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: run `make setup` (Debian packages globus-simple-ca, "
                    "globus-proxy-utils, globus-gsi-cert-utils-progs)")
    try:
        files = GsiFiles(f"/tmp/dtn-test-gsi-{_worker_offset() // 10}", "dtntest").ensure(["127.0.0.1"])
    except GsiSetupError as exc:
        pytest.fail(f"GSI setup failed: {exc}")
    CLIENT_ENV.update(files.client_environment())
    return files


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


def free_port() -> int:
    """A port nothing listens on now.  The machine is shared: fixed ports collided with
    another checkout's test servers (and a connect to theirs passed for a start of ours)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _four_servers(world, gsi: dict[str, str] | None, first: int):
    started = []
    try:
        for i in range(4):
            server = GridftpServer(free_port(), str(world / "srv"),
                                   transfer_log=str(world / "srv" / f"transfer-{first + i}.log"), gsi=gsi)
            started.append(server.start())
        yield started
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def servers(world, gsi_files, monkeypatch):
    """Four GSI-only GridFTP nodes: two stand for the source cluster, two for the destination.
    In-process clients (Checker, walk) present the test proxy while they run."""
    for name in ("X509_USER_CERT", "X509_USER_KEY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in gsi_files.client_environment().items():
        monkeypatch.setenv(name, value)
    yield from _four_servers(world, gsi_files.server_environment("127.0.0.1"), 0)


@pytest.fixture
def anonymous_servers(world):
    """Four anonymous GridFTP nodes, for tests about --anonymous (ftp://)."""
    yield from _four_servers(world, None, 4)


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
    env = {**os.environ, **CLIENT_ENV, "DTN_TRANSFER_STATE_DIR": str(world / "state"), "PYTHONPATH": ROOT}
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
