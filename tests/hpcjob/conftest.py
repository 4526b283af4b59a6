"""Helpers for the hpcjob tests: fake scheduler commands and an agent built from options."""
from __future__ import annotations

import os
import stat

import pytest


@pytest.fixture
def fake_command(tmp_path):
    """fake_command(body) → path of an executable shell script with that body."""
    counter = iter(range(1000))

    def make(body: str) -> str:
        path = tmp_path / f"cmd{next(counter)}"
        path.write_text("#!/bin/sh\n" + body + "\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
        return str(path)
    return make


@pytest.fixture
def cat_command(fake_command):
    """cat_command(file) → a command printing that file, whatever its arguments."""
    return lambda file: fake_command(f"cat '{os.fspath(file)}'")
