"""A private one-node Slurm (munge + slurmctld + slurmd) living in one directory.

The demo node runs hpcjob against it, and the tests use it to see what squeue,
sinfo, sdiag and scontrol really print. Nothing here touches the system's Slurm or
munge: its own munge key and socket, its own slurm.conf (given to every command
through SLURM_CONF), free TCP ports, and daemons in the foreground of their own
sessions, each recorded in ``<directory>/pids/<daemon>.pid`` so that a later
process (``hpc-demo down``) can stop exactly them.

    cluster = LocalSlurm("/var/lib/pcp-hpc/demo/hpcjob/slurm")
    cluster.start()                 # idempotent: a running cluster is kept
    cluster.sbatch("--wrap", "sleep 60")
    cluster.stop()
"""
from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence

SLURMCTLD = shutil.which("slurmctld") or "/usr/sbin/slurmctld"
SLURMD = shutil.which("slurmd") or "/usr/sbin/slurmd"
MUNGED = shutil.which("munged") or "/usr/sbin/munged"
DAEMONS = ("slurmd", "slurmctld", "munged")  # the order they are stopped in

# How jobs are placed and kept, shared by every demo Slurm (this one-node one, the cluster's).
SCHEDULING = """\
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=100
MpiDefault=none
ReturnToService=2
MinJobAge=600
KillWait=2
SchedulerParameters=sched_interval=2
"""

SLURM_CONF = """\
ClusterName={cluster}
SlurmctldHost={host}
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={munge_socket}
CredType=cred/munge
StateSaveLocation={dir}/state
SlurmdSpoolDir={dir}/spool
SlurmctldPidFile={dir}/slurmctld.pid
SlurmdPidFile={dir}/slurmd.pid
SlurmctldLogFile={dir}/slurmctld.log
SlurmdLogFile={dir}/slurmd.log
{tracking}""" + SCHEDULING + """GresTypes=gpu
NodeName={host} CPUs=2 RealMemory=1000 Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
PartitionName=long Nodes={host} Default=NO MaxTime=2-00:00:00 State=UP
"""

GRES_CONF = "NodeName={host} Name=gpu File={dir}/dev/gpu[0-1]\n"
# Jobs in cgroup v1 hierarchies (memory, cpuacct, ...) as on a production node: the
# cgroup/v2 plugin of Slurm 22.05 needs systemd, cgroup/v1 does not. No limits enforced.
CGROUP_CONF = "CgroupPlugin=cgroup/v1\nCgroupAutomount=no\nConstrainCores=no\nConstrainRAMSpace=no\n"
CGROUP_V1 = "/sys/fs/cgroup"


def tracking(cgroups: bool) -> str:
    """slurm.conf's job tracking, shared by every demo Slurm: with ``cgroups`` each job in
    cgroup v1 hierarchies of its node, ``<ctrl>/slurm_<node>/uid_<uid>/job_<id>`` (Debian's
    Slurm is built for several slurmd per host: the node name is in the path), with
    cgroup.conf's CGROUP_CONF beside slurm.conf; else tracked by process."""
    if cgroups:
        return ("ProctrackType=proctrack/cgroup\nTaskPlugin=task/none\n"
                "JobAcctGatherType=jobacct_gather/cgroup\n")
    return "ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\nJobAcctGatherType=jobacct_gather/none\n"


def write_cgroup_conf(directory: str, cgroups: bool) -> None:
    """cgroup.conf beside slurm.conf (where Slurm looks for it) with ``cgroups``, else none."""
    path = os.path.join(directory, "cgroup.conf")
    if cgroups:
        with open(path, "w", encoding="utf-8") as f:
            f.write(CGROUP_CONF)
    elif os.path.exists(path):
        os.unlink(path)


def job_cgroups(node: str, root: str = CGROUP_V1) -> list[str]:
    """The Slurm cgroups of one node (``slurm_<node>``) in every v1 hierarchy of the host."""
    return sorted(glob.glob(os.path.join(root, "*", f"slurm_{node}")))


def remove_job_cgroups(node: str, root: str = CGROUP_V1) -> list[str]:
    """Remove a node's Slurm cgroups, deepest first (a slurmd ended by SIGKILL leaves them,
    empty); return those that could not go (a process still in them)."""
    left = []
    for top in job_cgroups(node, root):
        for directory, _, _ in sorted(os.walk(top), key=lambda w: -w[0].count(os.sep)):
            try:
                os.rmdir(directory)
            except OSError:
                left.append(directory)
    return left


class SlurmError(RuntimeError):
    """A Slurm command failed or a daemon did not come up; the message says which."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cgroup_v1_available(root: str = CGROUP_V1) -> bool:
    """True if the memory and cpuacct controllers are mounted as cgroup v1 hierarchies."""
    return all(os.path.exists(os.path.join(root, ctrl, "cgroup.procs")) for ctrl in ("memory", "cpuacct"))


def installed() -> bool:
    return all(os.access(p, os.X_OK) for p in (SLURMCTLD, SLURMD, MUNGED))


class LocalSlurm:
    """Owns the daemons and the directory; every command runs with this cluster's SLURM_CONF."""

    def __init__(self, directory: str, extra_conf: str = "", slurmd: bool = True,
                 cluster: str = "hpctest", cgroups: bool = False):
        """``extra_conf``: lines appended to slurm.conf (more nodes and partitions, limits such
        as MaxJobCount); ``slurmd=False`` runs the controller alone (its nodes never register);
        ``cgroups`` puts jobs in cgroup v1 hierarchies, ``<ctrl>/slurm_<host>/uid_<uid>/job_<id>``
        (proctrack/cgroup; jobacct_gather/cgroup creates the memory and cpuacct ones), instead
        of tracking them by process (proctrack/linuxproc).  Two clusters with cgroups on one
        host would share those directories: give one of them only."""
        self.dir = os.path.abspath(directory)
        self.extra_conf = extra_conf
        self.with_slurmd = slurmd
        self.cluster = cluster
        self.cgroups = cgroups
        self.host = socket.gethostname().split(".")[0]
        self.conf = os.path.join(self.dir, "slurm.conf")
        self.munge_socket = os.path.join(self.dir, "munge", "munge.socket")
        self.env = {**os.environ, "SLURM_CONF": self.conf}
        self._procs: dict[str, subprocess.Popen] = {}

    # -- life cycle -------------------------------------------------------
    def running(self) -> bool:
        """True when the controller answers ``scontrol ping`` (and slurmd runs, if wanted)."""
        if not os.path.exists(self.conf) or self._pid("slurmctld") is None:
            return False
        if self.with_slurmd and self._pid("slurmd") is None:
            return False
        return "UP" in self.run("scontrol", "ping", check=False, timeout=10)

    def start(self) -> None:
        """Start munge, slurmctld and slurmd; a cluster already running here is kept, one
        that was stopped starts afresh (no jobs, nodes and partitions as configured)."""
        if self.running():
            return
        self.stop()  # leftovers of a half-started or crashed cluster
        shutil.rmtree(os.path.join(self.dir, "state"), ignore_errors=True)
        for sub in ("state", "spool", "munge", "dev", "pids"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        os.chmod(os.path.join(self.dir, "munge"), 0o711)
        for n in range(2):  # stand-ins for /dev/nvidiaN: slurmd only checks they exist
            open(os.path.join(self.dir, "dev", f"gpu{n}"), "w").close()
        self._start_munge()
        values = dict(cluster=self.cluster, host=self.host, ctld_port=free_port(),
                      tracking=tracking(self.cgroups),
                      slurmd_port=free_port(), munge_socket=self.munge_socket, dir=self.dir)
        with open(self.conf, "w", encoding="utf-8") as f:
            f.write(SLURM_CONF.format(**values))
            f.write(self.extra_conf)
        with open(os.path.join(self.dir, "gres.conf"), "w", encoding="utf-8") as f:
            f.write(GRES_CONF.format(host=self.host, dir=self.dir))
        write_cgroup_conf(self.dir, self.cgroups)
        self.start_controller()
        if not self.with_slurmd:
            return
        self._spawn("slurmd", [SLURMD, "-D", "-f", self.conf, "-N", self.host])
        self.wait_for(lambda: "idle" in self.run("sinfo", "-h", "-o", "%T", check=False),
                      30, "slurmd did not register as idle")

    def _start_munge(self) -> None:
        d = os.path.join(self.dir, "munge")
        key = os.path.join(d, "munge.key")
        if os.path.exists(key):
            os.chmod(key, 0o600)
        with open(key, "wb") as f:
            f.write(os.urandom(1024))
        os.chmod(key, 0o400)
        self._spawn("munged", [MUNGED, "-F", "--force", f"--socket={self.munge_socket}",
                               f"--key-file={key}", f"--pid-file={d}/munged.pid",
                               f"--log-file={d}/munged.log", f"--seed-file={d}/munged.seed"])
        self.wait_for(lambda: os.path.exists(self.munge_socket), 10, "munged did not start")

    def start_controller(self) -> None:
        self._spawn("slurmctld", [SLURMCTLD, "-D", "-f", self.conf, "-i"])
        self.wait_for(lambda: "UP" in self.run("scontrol", "ping", check=False),
                      30, "slurmctld did not answer scontrol ping")

    def stop_controller(self) -> None:
        self._stop("slurmctld")

    def stop(self) -> None:
        """Cancel the jobs that have processes (proctrack/linuxproc leaves them behind a
        dead slurmd), then stop the daemons by their recorded pids, whatever happened before.

        Pending jobs are left alone: they have no processes, and cancelling 50,000 of
        them (bench/slurm_scale.py) takes longer than the daemons take to stop."""
        try:
            if self._pid("slurmctld") is not None and os.path.exists(self.conf):
                self._cancel_running()
        except (SlurmError, subprocess.SubprocessError, OSError):
            pass
        finally:
            for name in DAEMONS:
                self._stop(name)
            self._kill_leftovers()

    def _cancel_running(self, rounds: int = 15) -> None:
        """Stop scheduling (partitions DOWN: running jobs go on, none starts), then cancel
        running jobs until none is left."""
        for partition in set(self.run("sinfo", "-h", "-o", "%R", timeout=60).split()):
            self.run("scontrol", "update", f"PartitionName={partition}", "State=DOWN",
                     check=False, timeout=60)
        for _ in range(rounds):
            if not self.run("squeue", "-h", "-t", "R,S,CG", "-o", "%i", timeout=60).split():
                return
            for state in ("RUNNING", "SUSPENDED"):
                self.run("scancel", "--user", "root", f"--state={state}", check=False, timeout=60)
            time.sleep(1)

    def _kill_leftovers(self) -> None:
        """SIGKILL job steps and job processes (SLURM_JOB_ID set) still running with this
        cluster's SLURM_CONF: a slurmd that stopped first leaves them behind."""
        mark = f"SLURM_CONF={self.conf}".encode() + b"\0"
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                with open(f"/proc/{entry}/environ", "rb") as f:
                    environ = b"\0" + f.read() + b"\0"
                with open(f"/proc/{entry}/comm", "rb") as f:
                    step = f.read().strip() == b"slurmstepd"
                if b"\0" + mark not in environ or not (step or b"\0SLURM_JOB_ID=" in environ):
                    continue
                os.kill(int(entry), signal.SIGKILL)
            except OSError:
                continue

    # -- daemons ------------------------------------------------------------
    def _pidfile(self, name: str) -> str:
        return os.path.join(self.dir, "pids", f"{name}.pid")

    def _spawn(self, name: str, argv: Sequence[str]) -> None:
        with open(os.path.join(self.dir, f"{name}.out"), "ab") as log:
            proc = subprocess.Popen(list(argv), stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=self.env,
                                    start_new_session=True)
        self._procs[name] = proc
        with open(self._pidfile(name), "w", encoding="utf-8") as f:
            f.write(f"{proc.pid}\n")

    def _pid(self, name: str) -> int | None:
        """The daemon's pid if it is alive (and really that daemon), else None."""
        proc = self._procs.get(name)
        if proc is not None:
            return proc.pid if proc.poll() is None else None
        try:
            with open(self._pidfile(name), encoding="utf-8") as f:
                pid = int(f.read().strip())
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv0 = f.read().split(b"\0", 1)[0]
        except (OSError, ValueError):
            return None
        return pid if os.path.basename(argv0.decode(errors="replace")) == name else None

    def _stop(self, name: str) -> None:
        proc = self._procs.pop(name, None)
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        else:
            pid = self._pid(name)
            if pid is not None:
                _terminate(pid, 15)
        try:
            os.unlink(self._pidfile(name))
        except OSError:
            pass

    # -- commands -----------------------------------------------------------
    def run(self, *argv: str, check: bool = True, timeout: float = 20) -> str:
        """Run a Slurm client command against this cluster and return its stdout."""
        done = subprocess.run(list(argv), capture_output=True, text=True, env=self.env,
                              timeout=timeout, check=False)
        if check and done.returncode != 0:
            raise SlurmError(f"{' '.join(argv)} failed: {done.stderr.strip()}")
        return done.stdout

    def sbatch(self, *args: str) -> str:
        """Submit a batch job; returns its job id (for arrays, the array's master id)."""
        out = self.run("sbatch", "--parsable", "-o", "/dev/null", *args)
        return out.strip().split(";")[0]

    def job(self, job_id: str) -> dict[str, str]:
        """scontrol's truth about one job, as Key=Value pairs (values may hold '=')."""
        line = self.run("scontrol", "show", "job", "-o", job_id).splitlines()[0]
        return split_pairs(line)

    def wait_for(self, predicate: Callable[[], object], seconds: float, why: str) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            dead = [n for n, p in self._procs.items() if p.poll() is not None]
            if dead:
                raise SlurmError(f"{dead[0]} exited (logs in {self.dir})")
            try:
                if predicate():
                    return
            except (subprocess.SubprocessError, OSError):
                pass
            time.sleep(0.3)
        raise SlurmError(f"{why} within {seconds:g} s (logs in {self.dir})")


def _terminate(pid: int, seconds: float) -> None:
    """SIGTERM a process that is not our child, then SIGKILL it if it outlives ``seconds``."""
    try:
        os.kill(pid, signal.SIGTERM)
    except OSError:
        return
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def split_pairs(line: str) -> dict[str, str]:
    """Split scontrol's one-line form on spaces that start a new Key=."""
    pairs: dict[str, str] = {}
    key = None
    for token in line.split(" "):
        head, eq, rest = token.partition("=")
        if eq and head and head.replace("/", "").replace(":", "").isalnum():
            key = head
            pairs[key] = rest
        elif key is not None:
            pairs[key] += " " + token
    return pairs
