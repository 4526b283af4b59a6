"""Pytest fixtures for the Lustre agent tests."""
from __future__ import annotations

import shutil

import pytest
from lustre_helpers import fixture_root


@pytest.fixture
def tree(tmp_path):
    """Copy a fixture tree somewhere writable: tree('v2_15', 'oss') → its root."""

    def copy(version: str, role: str) -> str:
        dest = tmp_path / f"{version}-{role}"
        shutil.copytree(fixture_root(version, role), dest)
        return str(dest)

    return copy
