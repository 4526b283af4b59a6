"""conftest.py of a copy of tests/ run against an INSTALLED pcp-hpc (scripts/test-packages.sh).

scripts/test-packages.sh copies tests/ out of the checkout and puts this file in the copy as
tests/conftest.py: the harness fixtures only (the demo's Slurm plugin needs hpc_demo, which
the Debian package does not ship), and a guard.  The guard stops the session before any
test runs unless pmdas and hpc_pcp import from outside the checkout named by
$HPC_PCP_CHECKOUT: a suite that quietly imported the checkout would prove nothing about the
package.
"""
from __future__ import annotations

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

pytest_plugins = ["tests.harness.pcp"]


def outside(path: str, checkout: str) -> bool:
    real, top = os.path.realpath(path), os.path.realpath(checkout)
    return os.path.commonpath([real, top]) != top


def pytest_sessionstart(session: pytest.Session) -> None:
    import hpc_pcp
    import pmdas

    checkout = os.environ.get("HPC_PCP_CHECKOUT")
    if not checkout:
        raise pytest.UsageError("HPC_PCP_CHECKOUT is not set: run this copy through scripts/test-packages.sh")
    for package in (pmdas, hpc_pcp):
        if not outside(package.__file__, checkout):
            raise pytest.UsageError(f"{package.__name__} imports from {package.__file__}, inside the "
                                    f"checkout {checkout}: this run would not test the installed package")
    print(f"testing the installation: pmdas from {os.path.dirname(pmdas.__file__)}, "
          f"interpreter {sys.executable}")
