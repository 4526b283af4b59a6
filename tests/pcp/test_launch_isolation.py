"""Tier 2: the pcp user cannot get code run by a root agent.

pmcd starts agents in its log directory ($PCP_LOG_DIR/pmcd), which the pcp user owns.  With a
plain ``python -m``, that directory came first on the module path, and a ``pmdas/__init__.py``
written there was imported as root when the agent next started.  Planted here for an agent
refreshing in its own thread (hpcsample), one with a refresh child (hpclustre) and one that
stays root (hpcbpftrace), with sitecustomize.py and usercustomize.py beside it: none of them,
nor a refresh child, imports any of it.  The installer refuses an interpreter or code that a user
other than root could change.
"""
from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import stat
import subprocess
import tempfile

import pytest

from hpc_pcp import install as installer
from tests.harness.pcp import installed_agent, wait_refreshed

pytestmark = [pytest.mark.pcp, pytest.mark.usefixtures("pmcd")]

PMCD_DIR = os.path.join(os.environ.get("PCP_LOG_DIR", "/var/log/pcp"), "pmcd")
PLANTED_MODULES = ("yaml.py", "sitecustomize.py", "usercustomize.py")


def test_code_planted_in_pmcds_directory_is_never_imported():
    """Planted by the pcp user (its files): a pmdas package, yaml.py, sitecustomize.py and
    usercustomize.py (which site imports at every start from the module path, and from the
    user's site directory).  Agents: one that stays root (hpcbpftrace, the one this matters
    most for), one refreshing in its own thread as pcp (hpcsample) and one with a refresh
    child (hpclustre).  The marker directory is writable by everyone, so planted code that ran
    as pcp would be seen too."""
    marker_dir = tempfile.mkdtemp(prefix="planted-")
    os.chmod(marker_dir, 0o1777)
    marker = os.path.join(marker_dir, "imported-as")
    planted = os.path.join(PMCD_DIR, "pmdas")
    singles = [os.path.join(PMCD_DIR, name) for name in PLANTED_MODULES]
    for path in (planted, *singles):
        assert not os.path.exists(path), f"{path} exists before the test"
    os.makedirs(os.path.join(planted, "common"))
    payload = f"import os\nopen({marker!r}, 'a').write(f'{{os.getuid()}} {{__name__}}\\n')\n"
    pcp = pwd.getpwnam("pcp")
    for path in (os.path.join(planted, "__init__.py"), os.path.join(planted, "common", "__init__.py"),
                 *singles):
        with open(path, "w", encoding="utf-8") as f:
            f.write(payload)
    for directory, _, files in os.walk(planted):
        os.chown(directory, pcp.pw_uid, pcp.pw_gid)
        for name in files:
            os.chown(os.path.join(directory, name), pcp.pw_uid, pcp.pw_gid)
    for path in singles:
        os.chown(path, pcp.pw_uid, pcp.pw_gid)
    try:
        with installed_agent("hpcbpftrace", {"interval": 1, "enabled": []}), \
                installed_agent("hpcsample", {"interval": 1}), \
                installed_agent("hpclustre", {"interval": 1}):
            wait_refreshed("hpc.bpftrace", 2)
            wait_refreshed("hpc.sample", 2)
            wait_refreshed("hpc.lustre", 2)
        assert not os.path.exists(marker), f"planted code ran (uid, module): {open(marker).read()}"
    finally:
        shutil.rmtree(planted, ignore_errors=True)
        for path in singles:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        shutil.rmtree(marker_dir, ignore_errors=True)


def test_the_planted_payload_runs_when_imported_and_not_with_isolation():
    """The test above proves something only if its payload runs when imported: from a
    directory holding a planted yaml.py, plain python3 imports it (as the pcp user here),
    python3 -I, as the launcher and the refresh child start, does not."""
    marker_dir = tempfile.mkdtemp(prefix="planted-")
    os.chmod(marker_dir, 0o1777)
    marker = os.path.join(marker_dir, "imported-as")
    with open(os.path.join(marker_dir, "yaml.py"), "w", encoding="utf-8") as f:
        f.write(f"import os\nopen({marker!r}, 'a').write(f'{{os.getuid()}}\\n')\n")
    os.chmod(os.path.join(marker_dir, "yaml.py"), 0o644)

    def import_yaml_as_pcp(*flags: str) -> None:
        command = f"cd {marker_dir} && /usr/bin/python3 {' '.join(flags)} -c 'import yaml'"
        subprocess.run(["su", "pcp", "-s", "/bin/sh", "-c", command], capture_output=True,
                       timeout=30, env={"PATH": "/usr/bin:/bin"}, check=True)
    try:
        import_yaml_as_pcp("-I")
        assert not os.path.exists(marker)
        import_yaml_as_pcp()
        assert open(marker).read().split() == [str(pwd.getpwnam("pcp").pw_uid)]
    finally:
        shutil.rmtree(marker_dir, ignore_errors=True)


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
