"""Whatever installation runs this (the checkout, the Debian package, a wheel in a virtual
env: scripts/test-packages.sh runs it in all three), it is complete and safe to launch: every
shipped directory is found, every reader of shipped data uses it, the dashboards it carries
are those its code generates, and pmcd may start each agent from it as root."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from hpc_pcp import alarm, dashboards, install, logger
from hpc_pcp.agents import AGENTS, available
from pmdas.common import shipped
from pmdas.hpcbpftrace.registry import CURATED_DIR, ScriptRegistry


def test_every_shipped_directory_is_found():
    assert shipped.missing() == []
    tree = shipped.source_tree()
    for name in shipped.SHIPPED:   # installed: under a share/pcp-hpc, never beside the code
        place = shipped.data_dir(name)
        assert place == tree / name if tree else str(place).endswith(f"/share/pcp-hpc/{name}")


def test_every_reader_of_shipped_data_uses_the_installation(tmp_path):
    assert Path(CURATED_DIR) == shipped.data_dir(shipped.BPFTRACE_SCRIPTS)
    assert Path(dashboards.DEFAULT_DIR) == shipped.data_dir(shipped.GRAFANA_DASHBOARDS)
    assert logger.groups_source() == shipped.data_dir(shipped.PMLOGCONF_GROUPS)
    assert {logger.group_agent(g) for g in logger.pmlogconf_groups()} <= set(AGENTS)
    assert logger.default_pmie_rules() == str(shipped.data_dir(shipped.PMIE_RULES) / "hpc-alarms.pmie")
    if "HPC_PCP_RULES_DIR" not in os.environ:
        assert alarm.catalogue_dir() == str(shipped.data_dir(shipped.PMIE_RULES))
    assert alarm.load_catalogue(), "no alarm rule in the installed catalogue"
    registry = ScriptRegistry(admin_dir=str(tmp_path / "admin"))
    curated = {s.name for s in registry.scripts().values() if s.origin == "curated"}
    bt_files = {p.stem for p in Path(CURATED_DIR).glob("*.bt")}
    assert curated == bt_files and "biolatency" in curated


def test_the_installed_dashboards_are_what_the_code_generates():
    assert dashboards.differences(dashboards.DEFAULT_DIR) == []


def test_pmcd_may_start_every_agent_from_this_installation():
    assert set(available()) == set(AGENTS)
    for entry in AGENTS.values():
        install.check_launch(sys.executable, entry.module)   # raises UntrustedPath
