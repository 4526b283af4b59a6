"""A real, private, one-node Slurm for tests: munge + slurmctld + slurmd in a temp dir.

Why a real one: fixtures can only replay formats we already know; a live
controller shows what squeue/scontrol/sinfo/sdiag really print for jobs of each
shape (pending on a reason, held, arrays, failed, cancelled), and lets a test
stop the controller under a running agent.

Nothing here touches the system's Slurm or munge: its own munge key and socket,
its own slurm.conf (passed to every command through SLURM_CONF), free TCP ports,
and daemons kept in the foreground so that they are stopped by their own pids.

Use from a test module::

    from tests.services.slurm import slurm_cluster  # noqa: F401  (the fixture)

    def test_x(slurm_cluster):
        job = slurm_cluster.sbatch("--wrap", "sleep 60")
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence

import pytest

SLURMCTLD = shutil.which("slurmctld") or "/usr/sbin/slurmctld"
SLURMD = shutil.which("slurmd") or "/usr/sbin/slurmd"
MUNGED = shutil.which("munged") or "/usr/sbin/munged"

SLURM_CONF = """\
ClusterName=hpctest
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
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
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
GresTypes=gpu
NodeName={host} CPUs=2 RealMemory=1000 Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
PartitionName=long Nodes={host} Default=NO MaxTime=2-00:00:00 State=UP
"""

GRES_CONF = "NodeName={host} Name=gpu File={dir}/dev/gpu[0-1]\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SlurmCluster:
    """Owns the daemons and the temp dir; every command runs with this cluster's SLURM_CONF."""

    def __init__(self, directory: str, extra_conf: str = "", slurmd: bool = True):
        """``extra_conf``: lines appended to slurm.conf (more nodes and partitions, limits such
        as MaxJobCount); ``slurmd=False`` runs the controller alone (its nodes never register)."""
        self.dir = directory
        self.extra_conf = extra_conf
        self.with_slurmd = slurmd
        self.host = subprocess.run(["hostname", "-s"], capture_output=True, text=True,
                                   check=True).stdout.strip()
        self.conf = os.path.join(directory, "slurm.conf")
        self.munge_socket = os.path.join(directory, "munge", "munge.socket")
        self.env = {**os.environ, "SLURM_CONF": self.conf}
        self._procs: dict[str, subprocess.Popen] = {}

    # -- life cycle -------------------------------------------------------
    def start(self) -> None:
        for sub in ("state", "spool", "munge"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        os.chmod(os.path.join(self.dir, "munge"), 0o711)
        os.makedirs(os.path.join(self.dir, "dev"), exist_ok=True)
        for n in range(2):  # stand-ins for /dev/nvidiaN: slurmd only checks they exist
            open(os.path.join(self.dir, "dev", f"gpu{n}"), "w").close()
        self._start_munge()
        values = dict(host=self.host, ctld_port=_free_port(), slurmd_port=_free_port(),
                      munge_socket=self.munge_socket, dir=self.dir)
        with open(self.conf, "w") as f:
            f.write(SLURM_CONF.format(**values))
            f.write(self.extra_conf)
        with open(os.path.join(self.dir, "gres.conf"), "w") as f:
            f.write(GRES_CONF.format(host=self.host, dir=self.dir))
        self.start_controller()
        if not self.with_slurmd:
            return
        self._spawn("slurmd", [SLURMD, "-D", "-f", self.conf, "-N", self.host])
        self.wait_for(lambda: "idle" in self.run("sinfo", "-h", "-o", "%T", check=False),
                      30, "slurmd did not register as idle")

    def _start_munge(self) -> None:
        key = os.path.join(self.dir, "munge", "munge.key")
        with open(key, "wb") as f:
            f.write(os.urandom(1024))
        os.chmod(key, 0o400)
        d = os.path.join(self.dir, "munge")
        self._spawn("munged", [MUNGED, "-F", "--force", f"--socket={self.munge_socket}",
                               f"--key-file={key}", f"--pid-file={d}/munged.pid",
                               f"--log-file={d}/munged.log", f"--seed-file={d}/munged.seed"])
        self.wait_for(lambda: os.path.exists(self.munge_socket), 10, "munged did not start")

    def start_controller(self) -> None:
        self._spawn("slurmctld", [SLURMCTLD, "-D", "-f", self.conf, "-i"])
        self.wait_for(lambda: self.run("scontrol", "ping", check=False).find("UP") >= 0,
                      30, "slurmctld did not answer scontrol ping")

    def stop_controller(self) -> None:
        self._stop("slurmctld")

    def stop(self) -> None:
        """Cancel the jobs that have processes (proctrack/linuxproc leaves them behind a
        dead slurmd), then stop the daemons by their own pids, whatever happened before.

        Pending jobs are left alone: they have no processes, and cancelling 50,000 of
        them (bench/slurm_scale.py) takes longer than the daemons take to stop."""
        try:
            if "slurmctld" in self._procs:
                for state in ("RUNNING", "SUSPENDED"):
                    self.run("scancel", "--user", "root", f"--state={state}", check=False, timeout=60)
                self.wait_for(lambda: not self.run("squeue", "-h", "-t", "R,CG", "-o", "%i"),
                              20, "jobs did not end")
        except (RuntimeError, subprocess.SubprocessError):
            pass
        finally:
            for name in ("slurmd", "slurmctld", "munged"):
                self._stop(name)

    def _spawn(self, name: str, argv: Sequence[str]) -> None:
        log = open(os.path.join(self.dir, f"{name}.out"), "ab")
        self._procs[name] = subprocess.Popen(list(argv), stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, env=self.env,
                                             start_new_session=True)
        log.close()

    def _stop(self, name: str) -> None:
        proc = self._procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    # -- helpers for tests ----------------------------------------------------
    def run(self, *argv: str, check: bool = True, timeout: float = 20) -> str:
        """Run a Slurm client command against this cluster and return its stdout."""
        done = subprocess.run(list(argv), capture_output=True, text=True, env=self.env,
                              timeout=timeout, check=False)
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.strip()}")
        return done.stdout

    def sbatch(self, *args: str) -> str:
        """Submit a batch job; returns its job id (for arrays, the array's master id)."""
        out = self.run("sbatch", "--parsable", "-o", "/dev/null", *args)
        return out.strip().split(";")[0]

    def job(self, job_id: str) -> dict[str, str]:
        """scontrol's truth about one job, as Key=Value pairs (values may hold '=')."""
        line = self.run("scontrol", "show", "job", "-o", job_id).splitlines()[0]
        return _split_pairs(line)

    def wait_for(self, predicate, seconds: float, why: str) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            dead = [n for n, p in self._procs.items() if p.poll() is not None]
            if dead:
                raise RuntimeError(f"{dead[0]} exited (logs in {self.dir})")
            try:
                if predicate():
                    return
            except (subprocess.SubprocessError, OSError):
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{why} within {seconds:g} s (logs in {self.dir})")


def _split_pairs(line: str) -> dict[str, str]:
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


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[SlurmCluster]:
    """A running private one-node Slurm; skipped only if slurmctld is not installed."""
    if not os.path.exists(SLURMCTLD):
        pytest.skip("slurmctld is not installed (Debian package slurm-wlm)")
    directory = tempfile.mkdtemp(prefix="hpc-slurm-")
    cluster = SlurmCluster(directory)
    try:
        cluster.start()
    except Exception:
        cluster.stop()
        raise
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)
