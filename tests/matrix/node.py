"""A node of another Debian release on this machine, for the version matrix.

The root (scripts/version-root.sh) holds that release's Slurm, PCP and bpftrace.  A node runs
it in its own PID, mount, network, UTS and IPC namespaces: its pmcd, pmproxy, munged,
slurmctld and slurmd see only each other (``pmsignal -a`` in an Install script cannot reach
the host's pmcd), bind the same ports as the host's without clashing, and everything mounted
for it (proc, sys, dev, run, tmp) lives in its private mount namespace.  Ending the
namespace's first process ends every process in it and drops every mount: nothing is left
behind, which ``stop`` checks.

pcp-hpc itself is copied into the root's Python path from this tree (product packages only)
and started by the root's own interpreter and bindings.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from tests.harness.pcp import wait_for

REPO = Path(__file__).resolve().parents[2]
ROOTS = Path(os.environ.get("HPC_PCP_ROOTS", "/var/lib/pcp-hpc/roots"))
PRODUCT = ("pmdas", "hpc_pcp", "dtn_transfer")

HOLDER = """set -e
root=$1
mount --rbind /sys "$root/sys"
mount --make-rslave "$root/sys"
mount --rbind /dev "$root/dev"
mount --make-rslave "$root/dev"
mount -t tmpfs -o mode=755 tmpfs "$root/run"
mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
hostname "$2"
# Loopback, and one address that is not loopback: getaddrinfo's AI_ADDRCONFIG (Slurm uses
# it) finds no address family on a namespace with loopback alone.  The veth pair's both
# ends stay in this namespace; the address is from TEST-NET-1, reachable from nowhere.
chroot "$root" sh -c 'ip link set lo up && ip link add m0 type veth peer name m1 &&
  ip addr add 192.0.2.1/32 dev m0 && ip link set m0 up && ip link set m1 up'
exec chroot "$root" /bin/sleep infinity
"""

SLURM_CONF = """ClusterName=matrix
SlurmctldHost={host}
SlurmUser=root
SlurmdUser=root
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/cgroup
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/cgroup
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
MinJobAge=3600
DefMemPerCPU=100
GresTypes=gpu
SlurmdParameters=config_overrides
NodeName={host} CPUs=8 RealMemory=1000 Gres=gpu:a100:2 State=UNKNOWN
PartitionName=batch Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


class NodeError(RuntimeError):
    pass


def build_root(release: str) -> Path:
    """The release's root, made (or reused) by scripts/version-root.sh."""
    root = ROOTS / release
    done = subprocess.run(["bash", str(REPO / "scripts" / "version-root.sh"), release, str(root)],
                          capture_output=True, text=True, timeout=1200)
    if done.returncode != 0:
        raise NodeError(f"root for {release} failed:\n{done.stdout}\n{done.stderr}")
    return root


def versions(root: Path) -> dict[str, str]:
    """Package → version, as recorded when the root was made."""
    lines = (root / ".pcp-hpc-root").read_text().splitlines()[1:]
    return dict(line.split(" ", 1) for line in lines if " " in line)


class VersionNode:
    """One release's node: ``start`` brings up its namespaces, ``run`` runs in them."""

    def __init__(self, release: str, root: Path):
        self.release = release
        self.root = root
        self.host = f"matrix-{release}"
        self.holder: subprocess.Popen | None = None
        self.pid = 0   # the namespace's first process (chroot'ed sleep), as the host sees it

    # -- lifetime -------------------------------------------------------------------------
    def start(self) -> None:
        self._install_product()
        (self.root / "etc" / "hosts").write_text(f"127.0.0.1 localhost {self.host}\n")
        self.holder = subprocess.Popen(
            ["unshare", "--pid", "--fork", "--kill-child", "--mount", "--net", "--uts", "--ipc",
             "--propagation", "private", f"--mount-proc={self.root}/proc",
             "sh", "-c", HOLDER, "holder", str(self.root), self.host],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            self.pid = self._namespace_init()
            if self.pid and os.readlink(f"/proc/{self.pid}/root") == str(self.root):
                break
            if self.holder.poll() is not None:
                raise NodeError(f"{self.release} namespace ended: {self.holder.stdout.read()!r}")
            time.sleep(0.1)
        else:
            raise NodeError(f"{self.release} namespace did not come up")
        self.run("sh", "-c", "hostname >/dev/null")

    def _namespace_init(self) -> int:
        """The pid of the namespace's first process: the child of unshare."""
        try:
            children = Path(f"/proc/{self.holder.pid}/task/{self.holder.pid}/children").read_text().split()
        except OSError:
            return 0
        return int(children[0]) if children else 0

    def stop(self) -> None:
        """End every process of the node (SIGKILL to its first process ends the namespace)."""
        if self.holder is None:
            return
        if self.holder.poll() is None:
            if self.pid:
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                self.holder.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.holder.kill()
                self.holder.wait(timeout=10)
        self.holder.stdout.close()
        self.holder = None
        self.remove_job_cgroups()

    def job_cgroups(self) -> list[Path]:
        """This node's Slurm cgroups in the machine's v1 hierarchies (slurm_<host>)."""
        return sorted(Path("/sys/fs/cgroup").glob(f"*/slurm_{self.host}"))

    def remove_job_cgroups(self) -> None:
        """Slurm removes a job's cgroups when its step daemon ends the job; a node ended by
        SIGKILL leaves them (empty): remove them, deepest first."""
        for top in self.job_cgroups():
            for directory in sorted((d for d in top.rglob("*") if d.is_dir()), key=lambda d: -len(d.parts)):
                directory.rmdir()
            top.rmdir()

    def leftovers(self) -> list[str]:
        """Processes rooted in this node's root and mounts under it, as the host sees them."""
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.readlink(entry / "root") == str(self.root):
                        found.append(f"process {entry.name}")
                except OSError:
                    continue
        found += [f"cgroup {c}" for c in self.job_cgroups()]
        with open("/proc/self/mountinfo", encoding="utf-8") as f:
            for line in f:
                point = line.split()[4]
                if point == str(self.root) or point.startswith(str(self.root) + "/"):
                    found.append(f"mount {point}")
        return found

    # -- inside the node ------------------------------------------------------------------
    def run(self, *argv: str, check: bool = True, timeout: float = 60,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        environ = {"PATH": "/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
                   "LANG": "C.UTF-8", **(env or {})}
        command = ["nsenter", "-t", str(self.pid), "-p", "-m", "-n", "-u", "-i", "-r", "-w",
                   "env", "-i", *[f"{k}={v}" for k, v in environ.items()], *argv]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
        if check and done.returncode != 0:
            raise NodeError(f"{self.release}: {' '.join(argv)} exited {done.returncode}:\n"
                            f"{done.stdout}\n{done.stderr}")
        return done

    def sh(self, script: str, **kwargs) -> subprocess.CompletedProcess:
        return self.run("sh", "-c", script, **kwargs)

    def wait(self, predicate, seconds: float, why: str):
        return wait_for(predicate, timeout=seconds, interval=0.5, what=f"{self.release}: {why}")

    # -- services ---------------------------------------------------------------------------
    def start_slurm(self) -> None:
        conf = SLURM_CONF.format(host=self.host)
        (self.root / "etc" / "slurm").mkdir(exist_ok=True)
        (self.root / "etc" / "slurm" / "slurm.conf").write_text(conf)
        (self.root / "etc" / "slurm" / "gres.conf").write_text(
            f"NodeName={self.host} Name=gpu Type=a100 File=/var/lib/matrix-gpu/gpu[0-1]\n")
        # Jobs in this machine's cgroup v1 hierarchies, <ctrl>/slurm_<host>/uid_<uid>/job_<id>:
        # every release here still has cgroup/v1; its v2 plugin refuses a host that mounts
        # v1 and v2 side by side ("Hybrid mode is not supported", 26.05).  No limits.
        (self.root / "etc" / "slurm" / "cgroup.conf").write_text(
            "CgroupPlugin=cgroup/v1\nConstrainCores=no\nConstrainRAMSpace=no\n")
        self.remove_job_cgroups()
        self.sh("mkdir -p /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge "
                "/var/lib/matrix-gpu && touch /var/lib/matrix-gpu/gpu0 /var/lib/matrix-gpu/gpu1 "
                "&& chown munge:munge /run/munge && rm -rf /var/spool/slurmctld/* /var/spool/slurmd/*")
        self.run("runuser", "-u", "munge", "--", "/usr/sbin/munged")
        self.run("slurmctld")
        self.run("slurmd")
        self.wait(lambda: "idle" in self.run("sinfo", "-h", "-o", "%T", check=False).stdout, 60,
                  "the node to be idle in Slurm")

    def sbatch(self, *args: str) -> str:
        out = self.run("sbatch", "--parsable", "-o", "/dev/null", *args).stdout.strip()
        return out.split(";")[0]

    def start_pmcd(self) -> None:
        self.sh("/etc/init.d/pmcd start >/tmp/pmcd-start.log 2>&1 || cat /tmp/pmcd-start.log")
        self.wait(lambda: self.run("pminfo", "-f", "pmcd.version", check=False).returncode == 0, 60,
                  "pmcd")

    def start_pmproxy(self) -> None:
        self.sh("/etc/init.d/pmproxy start >/tmp/pmproxy-start.log 2>&1 || true")
        self.wait(self._pmproxy_answers, 60, "pmproxy")

    def load_series(self, archive: Path) -> None:
        """A Redis of the release's own, pmproxy restarted onto it, and ``archive`` loaded
        into it with the release's pmseries."""
        target = self.root / "var" / "tmp" / "matrix-archive"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for part in archive.parent.glob(archive.name + ".*"):
            shutil.copy(part, target / part.name)
        self.run("redis-server", "--port", "6379", "--save", "", "--appendonly", "no",
                 "--daemonize", "yes")
        self.wait(lambda: self.run("redis-cli", "ping", check=False).stdout.strip() == "PONG", 30, "redis")
        self.sh("/etc/init.d/pmproxy restart >/tmp/pmproxy-start.log 2>&1 || true")
        self.wait(self._pmproxy_answers, 60, "pmproxy with series")
        self.run("pmseries", "--load", f"/var/tmp/matrix-archive/{archive.name}", timeout=300)

    def _pmproxy_answers(self) -> bool:
        probe = ("import urllib.request,sys; "
                 "urllib.request.urlopen('http://127.0.0.1:44322/pmapi/context', timeout=5); print('ok')")
        return "ok" in self.run("python3", "-c", probe, check=False).stdout

    def pmapi(self, path: str) -> str:
        probe = ("import urllib.request,sys; "
                 f"sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:44322{path}', timeout=10)"
                 ".read().decode())")
        return self.run("python3", "-c", probe).stdout

    def install_agent(self, name: str, config: str | None = None) -> str:
        if config is not None:
            directory = self.root / "etc" / "pcp" / "hpc"
            directory.mkdir(parents=True, exist_ok=True)
            (directory / f"{name}.yaml").write_text(config)
        done = self.run("hpc-pcp", "install", name, check=False, timeout=240)
        if done.returncode != 0:
            raise NodeError(f"{self.release}: installing {name} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def pminfo(self, *args: str) -> str:
        return self.run("pminfo", *args, check=False).stdout

    # -- the product inside the root --------------------------------------------------------
    def _install_product(self) -> None:
        """Copy pcp-hpc's product packages into the root's Python path, root-owned, with the
        hpc-pcp command: the agents then run on the root's own interpreter and PCP bindings."""
        target = self.root / "usr" / "lib" / "python3" / "dist-packages"
        for package in PRODUCT:
            shutil.rmtree(target / package, ignore_errors=True)
            shutil.copytree(REPO / package, target / package,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        share = self.root / "usr" / "share" / "pcp-hpc"
        shutil.rmtree(share, ignore_errors=True)
        for data in ("bpftrace_scripts", "pmie_rules", "grafana_dashboards", "logger"):
            shutil.copytree(REPO / data, share / data, ignore=shutil.ignore_patterns("__pycache__"))
        command = self.root / "usr" / "bin" / "hpc-pcp"
        command.write_text("#!/usr/bin/python3 -I\nfrom hpc_pcp.cli import main\nmain()\n")
        command.chmod(0o755)


class SeriesClient:
    """pmproxy's REST API inside the node: tests/logger/http11.py run by the root's Python,
    one JSON request and reply per line."""

    def __init__(self, node: VersionNode, port: int = 44322):
        shutil.copy(REPO / "tests" / "logger" / "http11.py", node.root / "var" / "tmp" / "http11.py")
        self.process = subprocess.Popen(
            ["nsenter", "-t", str(node.pid), "-p", "-m", "-n", "-u", "-i", "-r", "-w",
             "python3", "-I", "/var/tmp/http11.py", str(port)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def get(self, path: str, **params) -> object:
        self.process.stdin.write(json.dumps([path, params]) + "\n")
        self.process.stdin.flush()
        reply = json.loads(self.process.stdout.readline())
        if "error" in reply:
            raise AssertionError(f"pmproxy gave no JSON for {path} {params}: {reply['error']}")
        return reply["json"]

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=10)
        self.process.stdout.close()
