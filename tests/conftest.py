"""Shared pytest setup: make the repo importable, expose the harness fixtures, and keep
temporary directories where an agent running as the pcp user can be let in."""
import os
import shutil
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

pytest_plugins = ["tests.harness.pcp", "tests.services.slurm"]

_OWN_BASETEMP = "_pcp_hpc_basetemp"


def pytest_configure(config):
    """Agents installed into pmcd drop root and read fixture trees in tmp_path.  pytest's
    default base, /tmp/pytest-of-root, is put back to mode 0700 by every pytest session that
    starts (other developers run theirs on the same machine), so an agent could not be let in
    there for long: this session's temporary directories live in a base of their own, which
    the harness opens for search only (tests/harness/pcp.py, reachable_by_agents)."""
    if config.option.basetemp is None and os.geteuid() == 0:
        base = tempfile.mkdtemp(prefix="pytest-pcp-hpc-")
        config.option.basetemp = base
        setattr(config, _OWN_BASETEMP, base)


def pytest_sessionfinish(session, exitstatus):
    """Remove this session's base when every test passed; kept for a look otherwise."""
    base = getattr(session.config, _OWN_BASETEMP, None)
    if base and exitstatus == 0:
        shutil.rmtree(base, ignore_errors=True)
