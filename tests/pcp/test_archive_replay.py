"""Tier 2: an archive recorded by the agents as they shipped still means the same thing.

``tests/fixtures/archives/agents-2026-12-04`` was recorded by pmlogger (every hpc metric,
three samples) from the agents of 2026-12-04, before the namespace was pinned.  Each agent
is installed into the real pmcd and every metric the archive holds must come back under
the same name with the same PMID, type, semantics, units and instance domain; a PCP client
replaying the archive against live agents would otherwise mislabel history.
"""
from __future__ import annotations

import contextlib
import os
import re

import pytest

from hpc_pcp import install as installer
from pmdas.agents import AGENTS
from tests.harness.pcp import run_pcp, wait_refreshed

pytestmark = pytest.mark.usefixtures("pmcd")

ARCHIVE = os.path.join(os.path.dirname(__file__), "..", "fixtures", "archives", "agents-2026-12-04")


def descriptors(*source: str) -> dict[str, str]:
    """name → 'PMID type indom semantics units' from ``pminfo -d -m [source] hpc``."""
    out = run_pcp("pminfo", *source, "-d", "-m", "hpc", timeout=120)
    assert out.returncode == 0, out.stderr
    found: dict[str, str] = {}
    for block in out.stdout.strip().split("\n\n"):
        head, *rest = block.strip().splitlines()
        name, pmid = re.match(r"(\S+) PMID: (\S+)", head).groups()
        found[name] = " | ".join([pmid, *(line.strip() for line in rest)])
    return found


def test_recorded_archive_replays_against_todays_agents():
    recorded = descriptors("-a", ARCHIVE)
    assert len(recorded) > 400
    roots = {name.split(".")[1] for name in recorded}
    with contextlib.ExitStack() as stack:
        for name, entry in AGENTS.items():
            root = entry.load().root
            if root.split(".")[1] not in roots:
                continue
            result = installer.install(name)
            stack.callback(installer.remove, name)
            assert result.ok, result.output
            wait_refreshed(root, 1)
        live = descriptors()
    missing = sorted(set(recorded) - set(live))
    assert not missing, f"metrics recorded in the archive that the agents no longer export: {missing}"
    changed = {name: (recorded[name], live[name]) for name in recorded if recorded[name] != live[name]}
    assert not changed, f"recorded vs live descriptors differ: {changed}"
