"""The Debian package's file tree, laid out from the unpacked wheel in a staging root.

Run by scripts/build-deb.sh as ``/usr/bin/python3 -I packaging/stage.py WHEEL_DIR STAGING``:

- the product packages (pmdas, hpc_pcp, dtn_transfer; not the demo nor the lab) in
  /usr/lib/python3/dist-packages with a dist-info naming only them, the shipped data in
  /usr/share/pcp-hpc, and /usr/bin/hpc-pcp and /usr/bin/dtn-transfer running
  ``/usr/bin/python3 -I`` (isolated: neither the current directory nor PYTHON* variables
  reach the module path of a command root runs);
- $PCP_PMDAS_DIR/<agent>/ for every agent, written by hpc_pcp.install exactly as
  ``hpc-pcp install`` writes it on a node (Install, Remove, pmns, domain.h, root, the
  wrapper running ``/usr/bin/python3 -I -m pmdas.<agent>``), so pmcd's .NeedInstall and
  the admin's ./Install work as for PCP's own agents (the packaged code is imported from
  the staging root for this, so these come from the code being packaged);
- /etc/pcp/hpc/<agent>.yaml.example, every setting commented out with its default and help
  (conffiles).  Not <agent>.yaml itself, which the agent reads: that file is the site's
  (configuration management writes it, so does the demo), and a package owning it would
  stop a non-interactive install at dpkg's conffile question and delete it on purge;
- the agent names, one a line, on standard output (for the maintainer scripts).
"""
from __future__ import annotations

import glob
import os
import shutil
import sys
import textwrap

PYTHON = "/usr/bin/python3"
DIST_PACKAGES = "usr/lib/python3/dist-packages"
PMDAS_DIR = "var/lib/pcp/pmdas"
CONFIG_DIR = "etc/pcp/hpc"
SHARE_DIR = "usr/share/pcp-hpc"
PRODUCT = ("pmdas", "hpc_pcp", "dtn_transfer")       # what nodes get; see setup.py
COMMAND = """#!/usr/bin/python3 -I
# pcp-hpc's {name} command (Debian package pcp-hpc).
import sys

from {module} import {function}

sys.exit({function}())
"""


def lay_out_wheel(wheel_dir: str, staging: str) -> None:
    """Copy the product packages, the shipped data and a trimmed dist-info out of the
    unpacked wheel, and write a command for each of the product's console scripts."""
    packages = os.path.join(staging, DIST_PACKAGES)
    os.makedirs(packages)
    for top in PRODUCT:
        shutil.copytree(os.path.join(wheel_dir, top), os.path.join(packages, top),
                        ignore=shutil.ignore_patterns("__pycache__"))
    (data,) = glob.glob(os.path.join(wheel_dir, "*.data", "data", "share", "pcp-hpc"))
    shutil.copytree(data, os.path.join(staging, SHARE_DIR))
    (info,) = glob.glob(os.path.join(wheel_dir, "*.dist-info"))
    packaged_info = os.path.join(packages, os.path.basename(info))
    os.makedirs(packaged_info)
    shutil.copy(os.path.join(info, "METADATA"), packaged_info)
    # No RECORD: pip leaves files dpkg owns alone.
    with open(os.path.join(packaged_info, "INSTALLER"), "w", encoding="utf-8") as f:
        f.write("dpkg\n")
    with open(os.path.join(packaged_info, "top_level.txt"), "w", encoding="utf-8") as f:
        f.write("".join(f"{top}\n" for top in PRODUCT))
    commands = []
    with open(os.path.join(info, "entry_points.txt"), encoding="utf-8") as f:
        for line in f:
            name, _, target = (part.strip() for part in line.partition("="))
            if target and target.split(".")[0] in PRODUCT:
                commands.append((name, target))
    with open(os.path.join(packaged_info, "entry_points.txt"), "w", encoding="utf-8") as f:
        f.write("[console_scripts]\n" + "".join(f"{name} = {target}\n" for name, target in commands))
    os.makedirs(os.path.join(staging, "usr", "bin"))
    for name, target in commands:
        module, _, function = target.partition(":")
        path = os.path.join(staging, "usr", "bin", name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(COMMAND.format(name=name, module=module, function=function))
        os.chmod(path, 0o755)


def example_config(name: str, root: str, options: dict) -> str:
    """The commented example configuration of one agent."""
    import yaml

    lines = [f"# Example of /{CONFIG_DIR}/{name}.yaml: settings of the pcp-hpc {name} agent ({root}.*).",
             "# Every setting is shown commented out with its default; copy this file to",
             f"# /{CONFIG_DIR}/{name}.yaml (or ship that with configuration management) and uncomment.",
             f"# Check the file with 'hpc-pcp check {name}'; the agent reads it when it starts",
             f"# (restart it: cd /{PMDAS_DIR}/{name} && ./Install).", ""]
    for key, option in options.items():
        value = yaml.safe_dump({key: option.default}, default_flow_style=True, width=1000)
        value = value.strip().removeprefix("{").removesuffix("}")
        lines += [f"# {line}" for line in textwrap.wrap(option.help, 86)]
        lines += [f"#{value}" if value.startswith(" ") else f"# {value}", ""]
    return "\n".join(lines)


def main(wheel_dir: str, staging: str) -> int:
    lay_out_wheel(wheel_dir, staging)
    sys.path.insert(0, os.path.join(staging, DIST_PACKAGES))
    os.environ["PCP_PMDAS_DIR"] = os.path.join(staging, PMDAS_DIR)
    import hpc_pcp
    import pmdas
    from hpc_pcp import install
    from hpc_pcp.agents import AGENTS
    from pmdas.common.config import COMMON_OPTIONS

    packaged = os.path.realpath(os.path.join(staging, DIST_PACKAGES))
    for package in (pmdas, hpc_pcp):
        if not os.path.realpath(package.__file__).startswith(packaged + os.sep):
            raise SystemExit(f"stage.py: {package.__name__} imports from {package.__file__}, not {packaged}")
    config_dir = os.path.join(staging, CONFIG_DIR)
    os.makedirs(config_dir, exist_ok=True)
    for name, entry in AGENTS.items():
        agent = entry.load()
        install.write_agent_dir(agent, entry.module, python=PYTHON)
        with open(os.path.join(config_dir, f"{name}.yaml.example"), "w", encoding="utf-8") as f:
            f.write(example_config(name, agent.root, {**COMMON_OPTIONS, **agent.options}))
        print(name)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: python3 -I packaging/stage.py WHEEL_DIR STAGING")
    raise SystemExit(main(sys.argv[1], sys.argv[2]))
