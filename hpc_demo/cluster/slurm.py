"""One real multi-node Slurm: slurmctld on the head, slurmd on every compute node, munge
everywhere with one key.  slurm.conf sits in the cluster's shared directory, as on an NFS
share; spool, logs and pid files are per node (%n, or the node's own /run).

Every node declares CPUS processors although the machine has 2 for all nodes
(``config_overrides``: slurmd believes slurm.conf): the demo's jobs sleep, and a job
spanning nodes then never waits behind the job mix.

Where the host mounts cgroup v1 memory and cpuacct hierarchies, jobs run in cgroups as on
the demo node (hpc_demo.localslurm's tracking and cgroup.conf), each compute node's under
``<ctrl>/slurm_<node>`` (Debian's Slurm is built for several slurmd on one host).  Job ids
start at FIRST_JOB_ID, apart from the demo node's and the tests' own Slurm (from 1): the
hierarchies are the host's, and two ``job_7`` in them would be one job to a reader."""
from __future__ import annotations

import os

from hpc_demo.localslurm import SCHEDULING, cgroup_v1_available, tracking, write_cgroup_conf
from hpc_demo.namespace import Namespace

from .layout import BASE, Node, node_set

MUNGE_SOCKET = "/run/munge/munge.socket.2"
SLURM_DIR = os.path.join(BASE, "slurm")
CONF = os.path.join(SLURM_DIR, "slurm.conf")
ENV = {"SLURM_CONF": CONF}
CPUS = 8
FIRST_JOB_ID = 100000

SLURM_CONF = """\
ClusterName=hpcdemo
SlurmctldHost={head}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={socket}
CredType=cred/munge
StateSaveLocation={base}/{head}/slurmctld
SlurmdSpoolDir={base}/%n/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile={base}/{head}/slurmctld.log
SlurmdLogFile={base}/%n/slurmd.log
FirstJobId={first_job}
{tracking}""" + SCHEDULING + """SlurmdParameters=config_overrides
NodeName={nodes} CPUs={cpus} RealMemory=4000 State=UNKNOWN
PartitionName=batch Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


def write_conf(nodes: list[Node], cgroups: bool | None = None) -> None:
    """slurm.conf (and cgroup.conf, with ``cgroups``: by default where the host has cgroup
    v1) and the munge key every node shares."""
    os.makedirs(SLURM_DIR, exist_ok=True)
    head = next(n for n in nodes if n.role == "head")
    cgroups = cgroup_v1_available() if cgroups is None else cgroups
    with open(CONF, "w", encoding="utf-8") as f:
        f.write(SLURM_CONF.format(head=head.name, socket=MUNGE_SOCKET, base=BASE, nodes=node_set(nodes),
                                  cpus=CPUS, first_job=FIRST_JOB_ID, tracking=tracking(cgroups)))
    write_cgroup_conf(SLURM_DIR, cgroups)
    key = os.path.join(SLURM_DIR, "munge.key")
    if not os.path.exists(key):
        with open(key, "wb") as f:
            f.write(os.urandom(1024))
    os.chmod(key, 0o400)
    for node in nodes:
        if node.role in ("head", "compute"):
            os.makedirs(os.path.join(node.directory, "slurmd" if node.role == "compute" else "slurmctld"),
                        exist_ok=True)


def start_munge(node: Node, ns: Namespace) -> None:
    ns.daemon(os.path.join(node.directory, "munged.out"), "/usr/sbin/munged", "-F", "--force",
              f"--socket={MUNGE_SOCKET}", f"--key-file={SLURM_DIR}/munge.key",
              "--pid-file=/run/munge/munged.pid", f"--log-file={node.directory}/munged.log",
              f"--seed-file={node.directory}/munged.seed")


def start(node: Node, ns: Namespace) -> None:
    """munged, then the node's Slurm daemon (slurmctld on the head, slurmd on a compute node)."""
    start_munge(node, ns)
    ns.sh(f"for i in $(seq 50); do [ -S {MUNGE_SOCKET} ] && exit 0; sleep 0.1; done; exit 1")
    daemon = "/usr/sbin/slurmctld" if node.role == "head" else "/usr/sbin/slurmd"
    ns.daemon(os.path.join(node.directory, "slurm.out"), daemon, "-D", "-f", CONF)


def run(head: Namespace, *argv: str, check: bool = True, timeout: float = 20) -> str:
    """A Slurm command on the head node."""
    return head.run(*argv, env=ENV, check=check, timeout=timeout).stdout
