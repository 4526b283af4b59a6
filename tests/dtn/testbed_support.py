"""Helpers for the testbed tests: a private state directory, names and subnets per xdist worker."""
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile

from dtn_lab.testbed import Testbed, netns

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MIB = 2 ** 20


def worker_index() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(worker[2:] or 0) if worker.startswith("gw") else 0


def name_and_subnet(stem: str, slot: int) -> tuple[str, str]:
    """A testbed name (``dtnb`` prefix, distinct per worker) and a /24 of its own."""
    i = worker_index()
    return f"dtnb{stem}{i}", f"10.213.{200 + 8 * i + slot}.0/24"


@contextlib.contextmanager
def state_dir():
    """Point DTN_TRANSFER_STATE_DIR at a fresh directory for the duration."""
    path = tempfile.mkdtemp(prefix="dtnb-test-state-", dir="/tmp")
    old = os.environ.get("DTN_TRANSFER_STATE_DIR")
    os.environ["DTN_TRANSFER_STATE_DIR"] = path
    try:
        yield path
    finally:
        if old is None:
            os.environ.pop("DTN_TRANSFER_STATE_DIR", None)
        else:
            os.environ["DTN_TRANSFER_STATE_DIR"] = old
        shutil.rmtree(path, ignore_errors=True)


def cmdlines() -> list[tuple[int, str]]:
    """(pid, command line) of every process (those that vanish meanwhile left out)."""
    out = []
    for pid in filter(str.isdecimal, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                out.append((int(pid), f.read().replace(b"\0", b" ").decode(errors="replace")))
        except OSError:
            continue
    return out


def leftovers(name: str) -> dict:
    """Everything of testbed ``name`` still on the machine (empty lists when torn down)."""
    procs = [str(pid) for pid, cmd in cmdlines() if f"/tmp/{name}-data" in cmd and "gridftp" in cmd]
    etc = os.listdir(netns.NETNS_ETC) if os.path.isdir(netns.NETNS_ETC) else []
    return {"namespaces": [n for n in netns.namespaces() if n.startswith(name + "-")],
            "etc_netns": [d for d in etc if d.startswith(name + "-")],
            "host_link": [f"{name}-h"] if netns.link_exists(f"{name}-h") else [],
            "processes": procs}


def _command(module: str, args, timeout):
    env = {**os.environ, "PYTHONPATH": ROOT}
    return subprocess.run([sys.executable, "-m", module, *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


def cli(*args, timeout=180):
    """Run dtn-transfer as the console script would, with the current state directory."""
    return _command("dtn_transfer.cli", args, timeout)


def lab(*args, timeout=180):
    """Run dtn-lab (the lab's command: testbed, sweep, runs told the testbed's figures)."""
    return _command("dtn_lab.cli", args, timeout)


def up(stem: str, slot: int, **options) -> Testbed:
    """A fresh testbed; its client credentials (GSI proxy, CA directory) go into this
    process's environment, so ``cli``/``lab`` and in-process runs present them."""
    name, subnet = name_and_subnet(stem, slot)
    Testbed.down(name)
    bed = Testbed.up(name, subnet=subnet, root=f"/tmp/{name}-data", **options)
    os.environ.update(bed.client_environment())
    return bed


def rtt_name_and_subnet(stem: str, slot: int) -> tuple[str, str]:
    """A delay-line testbed's name (``rtt`` prefix) and a /24 of its own in 10.91.0.0/16."""
    i = worker_index()
    return f"rtt{stem}{i}", f"10.91.{100 + 8 * i + slot}.0/24"


def delay_line_leftovers(name: str, pid: int | None) -> dict:
    """What a delay-line testbed could leave beyond ``leftovers``: TAP devices in the root
    namespace, its forwarder (by recorded pid, and any process naming its WAN namespace)."""
    procs = [pid for pid, cmd in cmdlines() if "dtn_lab.testbed.delayline" in cmd and f"{name}-wan" in cmd]
    alive = pid is not None and os.path.exists(f"/proc/{pid}") and pid in procs
    taps = [t for t in ("dls", "dld") if netns.link_exists(t)]
    return {"forwarders": procs, "recorded_pid_alive": alive, "root_taps": taps}
