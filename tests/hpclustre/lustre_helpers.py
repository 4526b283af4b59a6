"""Helpers for the Lustre agent tests: fixture trees and a one-call refresher.

(A uniquely named module, so that it cannot clash with other agents' conftest.py.)
"""

from __future__ import annotations

import os

from pmdas.common.config import COMMON_OPTIONS, Config, validate
from pmdas.common.refresh import Refresher
from pmdas.hpclustre.collector import LustreAgent

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures", "lustre")


def fixture_root(version: str, role: str) -> str:
    return os.path.abspath(os.path.join(FIXTURES, version, role))


def fixture_text(version: str, role: str, path: str) -> str:
    with open(os.path.join(fixture_root(version, role), path.lstrip("/")), encoding="utf-8") as f:
        return f.read()


def make_refresher(root: str, **options) -> Refresher:
    config = Config(
        validate({"root": root, **options}, {**COMMON_OPTIONS, **LustreAgent.options}, "test"), None
    )
    return Refresher(LustreAgent(config))


