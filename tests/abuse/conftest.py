"""The abuse suite: every path a node user or a remote client controls, tried with hostile
values against the real agents in the real pmcd (ledger.py counts the harm).

At the end of a run that collected any abuse case, the figures are printed in one line
("abuse: N inputs, 0 crashes, ...") with one line per path, and written as JSON to
$HPC_PCP_ABUSE_REPORT or build/abuse-report.json.
"""
from __future__ import annotations

import os

import pytest

from .ledger import LEDGER

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def report_path() -> str:
    return os.environ.get("HPC_PCP_ABUSE_REPORT") or os.path.join(REPO, "build", "abuse-report.json")


@pytest.fixture(scope="session")
def ledger():
    return LEDGER


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ARG001 - pytest's hook
    if not LEDGER.paths:
        return
    path = report_path()
    LEDGER.write(path)
    terminalreporter.section("abuse figures")
    for name, f in sorted(LEDGER.paths.items()):
        terminalreporter.write_line(
            f"{name:28} {f.inputs:6} inputs in {f.cases:2} cases, {f.crashes} crashes, "
            f"{f.commands} commands run, {f.dropped} agents dropped, {f.outside} files outside")
    terminalreporter.write_line(f"{LEDGER.summary_line()}   (JSON: {path})")


@pytest.fixture()
def abuse_dir():
    """A fresh directory agents can read whatever user they run as (pytest's tmp_path is
    0700 root), removed after the case."""
    import secrets
    import shutil
    directory = f"/tmp/hpc-abuse-{secrets.token_hex(6)}"
    os.mkdir(directory)
    os.chmod(directory, 0o755)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)
