"""pmdas.common.shipped: the one place that finds the data pcp-hpc ships beside its code."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pmdas.common import shipped


def _installed_layout(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Code outside any checkout, interpreter prefix tmp_path/prefix."""
    monkeypatch.setattr(shipped, "_SOURCE_TREE", tmp_path / "lib" / "python3")
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "prefix"))
    monkeypatch.setattr(shipped, "DEBIAN_SHARE", tmp_path / "usr-share")
    return tmp_path / "prefix" / "share" / "pcp-hpc"


def test_a_checkout_finds_its_own_data():
    tree = shipped.source_tree()
    assert tree is not None and (tree / "setup.py").is_file()
    assert shipped.missing() == []
    for name in shipped.SHIPPED:
        assert shipped.data_dir(name) == tree / name


def test_installed_code_finds_the_data_under_its_prefix(monkeypatch, tmp_path):
    share = _installed_layout(monkeypatch, tmp_path)
    for name in shipped.SHIPPED:
        (share / name).mkdir(parents=True)
    assert shipped.source_tree() is None
    assert [shipped.data_dir(name) for name in shipped.SHIPPED] == [share / n for n in shipped.SHIPPED]
    assert shipped.missing() == []


def test_a_directory_missing_everywhere_is_named_with_every_place_looked(monkeypatch, tmp_path):
    share = _installed_layout(monkeypatch, tmp_path)
    (share / shipped.PMIE_RULES).mkdir(parents=True)
    problems = shipped.missing()
    assert len(problems) == len(shipped.SHIPPED) - 1
    assert all(str(share) in p and str(tmp_path / "usr-share") in p for p in problems)
    # The reader's error then names the first candidate, not a path beside the code.
    assert shipped.data_dir(shipped.BPFTRACE_SCRIPTS) == share / shipped.BPFTRACE_SCRIPTS


def test_only_shipped_names_are_looked_up():
    with pytest.raises(ValueError, match="not shipped data"):
        shipped.data_dir("../etc")
