"""A node's private PCP: copies of the host's PCP directories, bind-mounted in its namespace.

Each node gets /etc/pcp, /var/lib/pcp and /var/log/pcp of its own (and a fresh /run), so
its pmcd.conf, PMNS, agents and logs are its own, as on a real node.  The copies start from
the host's PCP installation with only PCP's base agents in pmcd.conf: agents another
process installed on the host are not this node's.
"""
from __future__ import annotations

import os
import shutil
import subprocess

from .layout import Node

BASE_AGENTS = ("root", "pmcd", "proc", "linux", "pmproxy", "mmv")
# The node's mounts, made by the namespace's first process before it sleeps.  /run is a
# tmpfs of the node's own: pid files and sockets (pmcd, munge, slurmd) never meet the host's.
HOLDER = """set -e
d=$1
hostname "$2"
mount --bind "$d/pcp/etc" /etc/pcp
mount --bind "$d/pcp/lib" /var/lib/pcp
mount --bind "$d/pcp/log" /var/log/pcp
mount --bind "$d/hosts" /etc/hosts
mount -t tmpfs -o mode=755 tmpfs /run
mkdir -p /run/pcp /run/munge /run/lock
chown pcp:pcp /run/pcp
chmod 775 /run/pcp
exec sleep infinity
"""


def base_pmcd_conf(text: str) -> str:
    """pmcd.conf with only PCP's base agents before [access]; the access section as it is."""
    out, access = [], False
    for line in text.splitlines(keepends=True):
        access = access or line.strip().startswith("[access]")
        fields = line.split()
        if access or not fields or line.startswith("#") or fields[0] in BASE_AGENTS:
            out.append(line)
    return "".join(out)


def prepare(node: Node, hosts: str) -> None:
    """Fresh copies of the host's PCP directories under the node's directory."""
    pcp = os.path.join(node.directory, "pcp")
    shutil.rmtree(pcp, ignore_errors=True)
    os.makedirs(pcp)
    for source, name in (("/etc/pcp", "etc"), ("/var/lib/pcp", "lib")):
        subprocess.run(["cp", "-a", source, os.path.join(pcp, name)], check=True, timeout=60)
    log = os.path.join(pcp, "log")
    os.makedirs(log)
    for sub in ("", *sorted(os.listdir("/var/log/pcp"))):
        if os.path.isdir(os.path.join("/var/log/pcp", sub)):
            os.makedirs(os.path.join(log, sub), exist_ok=True)
            shutil.chown(os.path.join(log, sub), "pcp", "pcp")
    conf = os.path.join(pcp, "etc", "pmcd", "pmcd.conf")
    with open(conf, encoding="utf-8") as f:
        text = base_pmcd_conf(f.read())
    with open(conf, "w", encoding="utf-8") as f:
        f.write(text)
    # pcp-hpc's settings and state on the host are not the node's: the host's hpcalarm.yaml
    # (hpc-demo up writes one) pointed the logger's hpcalarm at the host demo's alarms, and
    # their instance names (tests' hostile job names) came back through pmproxy as the
    # cluster's.  Agents on the node get their settings from the cluster (or defaults).
    for own in (("etc", "hpc"), ("lib", "config", "hpc")):
        shutil.rmtree(os.path.join(pcp, *own), ignore_errors=True)
    for dirpath, _, files in os.walk(os.path.join(pcp, "lib", "pmdas")):
        for name in files:   # an agent the host was about to (un)install is not ours
            if name in (".NeedInstall", ".NeedRemove"):
                os.unlink(os.path.join(dirpath, name))
    with open(os.path.join(node.directory, "hosts"), "w", encoding="utf-8") as f:
        f.write(hosts)
