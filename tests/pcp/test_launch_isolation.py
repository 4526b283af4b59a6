"""Tier 2: the pcp user cannot get code run by a root agent.

pmcd starts agents in its log directory ($PCP_LOG_DIR/pmcd), which the pcp user owns.  With a
plain ``python -m``, that directory came first on the module path, and a ``pmdas/__init__.py``
written there was imported as root when the agent next started.  Planted here for an agent
refreshing in its own thread (hpcsample) and one with a refresh child (hpclustre): neither
the agent nor its child imports it.  The installer refuses an interpreter or code that a user
other than root could change.
"""
from __future__ import annotations

import os
import shutil
import stat

import pytest

from hpc_pcp import install as installer
from tests.harness.pcp import installed_agent, wait_refreshed

pytestmark = [pytest.mark.pcp, pytest.mark.usefixtures("pmcd")]

PMCD_DIR = os.path.join(os.environ.get("PCP_LOG_DIR", "/var/log/pcp"), "pmcd")


def test_code_planted_in_pmcds_directory_is_never_imported(tmp_path):
    marker = tmp_path / "imported-as"
    planted = os.path.join(PMCD_DIR, "pmdas")
    assert not os.path.exists(planted), f"{planted} exists before the test"
    os.makedirs(os.path.join(planted, "common"))
    payload = f"import os\nopen({str(marker)!r}, 'a').write(f'{{os.getuid()}}\\n')\n"
    for module in ("__init__.py", os.path.join("common", "__init__.py"), "yaml.py"):
        with open(os.path.join(planted, module), "w", encoding="utf-8") as f:
            f.write(payload)
    shutil.copy(os.path.join(planted, "yaml.py"), os.path.join(PMCD_DIR, "yaml.py"))
    try:
        with installed_agent("hpcsample", {"interval": 1}), installed_agent("hpclustre", {"interval": 1}):
            wait_refreshed("hpc.sample", 2)
            wait_refreshed("hpc.lustre", 2)
        assert not marker.exists(), f"planted code ran as uid {marker.read_text()}"
    finally:
        shutil.rmtree(planted, ignore_errors=True)
        os.unlink(os.path.join(PMCD_DIR, "yaml.py"))


def test_an_interpreter_others_can_write_is_refused(tmp_path):
    shared = tmp_path / "shared-bin"
    shared.mkdir()
    os.chmod(shared, 0o777)                       # any user may replace what is in here
    python = shared / "python3"
    os.symlink(os.path.realpath("/usr/bin/python3"), python)
    result = installer.install("hpcsample", python=str(python))
    assert not result.ok
    assert f"refusing to install hpcsample: {shared} is writable by group or others" in result.output
    assert not os.path.exists(os.path.join(installer.agent_dir("hpcsample"), "Install")) or \
        "hpcsample" not in open("/etc/pcp/pmcd/pmcd.conf", encoding="utf-8").read()


def test_trusted_paths(tmp_path):
    installer.check_trusted("/usr/bin/python3")
    sticky = tmp_path / "sticky"
    sticky.mkdir()
    os.chmod(sticky, 0o1777)
    installer.check_trusted(str(sticky))           # root's, sticky: others cannot replace it
    os.chown(sticky, 65534, 65534)
    with pytest.raises(installer.UntrustedPath, match="owned by uid 65534"):
        installer.check_trusted(str(sticky))
    assert stat.S_IMODE(os.stat("/").st_mode) & stat.S_IWOTH == 0
