"""Shared helpers of the hpcjob tests (a module of its own so test files can import it)."""
from __future__ import annotations

from pathlib import Path

from pmdas.common.config import COMMON_OPTIONS, Config, validate
from pmdas.common.refresh import Refresher
from pmdas.hpcjob.collector import JobAgent

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def make_agent(**options) -> JobAgent:
    options.setdefault("timeout", 3.0)
    return JobAgent(Config(validate(options, {**COMMON_OPTIONS, **JobAgent.options}, "test"), None))


def refresh(**options):
    return Refresher(make_agent(**options)).refresh_once()
