"""Shared helpers of the hpcjob tests (a module of its own so test files can import it)."""
from __future__ import annotations

import tempfile
from pathlib import Path

from pmdas.common.config import COMMON_OPTIONS, Config, validate
from pmdas.common.refresh import Refresher
from pmdas.hpcjob.collector import JobAgent

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
# Fixture-based tests read no host state: with the default root "/", the job cgroups of
# whatever Slurm runs on this machine (the demo's, after 'make demo') joined their jobs.
NO_HOST = tempfile.mkdtemp(prefix="hpcjob-test-root-")


def make_agent(**options) -> JobAgent:
    """The agent on fixtures: ``root`` is an empty tree unless a test names one ("/" for the
    tests on this machine's real Slurm and cgroups)."""
    options.setdefault("timeout", 3.0)
    options.setdefault("root", NO_HOST)
    return JobAgent(Config(validate(options, {**COMMON_OPTIONS, **JobAgent.options}, "test"), None))


def refresh(**options):
    return Refresher(make_agent(**options)).refresh_once()
