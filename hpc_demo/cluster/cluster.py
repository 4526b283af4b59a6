"""Bring the cluster up, report on it, inject faults, take it down with nothing left behind.

State (each node's namespace pid and identity) is kept in $BASE/cluster.json, so ``down``
and ``status`` are separate commands from ``up``.  ``down`` also works from no state at all:
it removes our bridge and links, and kills only namespaces it recorded.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import yaml

from hpc_demo.localslurm import job_cgroups, remove_job_cgroups
from hpc_demo.namespace import Namespace, NamespaceError

from . import cost, dstate, lustre, network, pcpdirs, slurm, sources, store
from .dstate import DStateError
from .layout import (
    BASE,
    DEFAULT_SERVERS,
    Node,
    computes,
    hosts_file,
    monitored_set,
    plan,
    servers,
    state_file,
)

Echo = Callable[[str], None]
# Commands inside the nodes run this tree's code (a pcp-hpc package installed on the host
# meanwhile must not answer instead): its directory leads the module path.
TREE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PYTHON_ENV = {"PATH": f"{os.path.dirname(sys.executable)}:/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": TREE}


INSTALL_SECONDS: dict[str, float] = {}   # node/agent → seconds its install took (last up)


class ClusterError(RuntimeError):
    pass


def load() -> tuple[list[Node], dict[str, Namespace]]:
    try:
        with open(state_file(), encoding="utf-8") as f:
            state = json.load(f)
    except (OSError, ValueError):
        return [], {}
    namespaces = {r["name"]: Namespace.adopt(r) for r in state["namespaces"]}
    layout = plan(state["computes"], state.get("servers", DEFAULT_SERVERS))
    return [n for n in layout if n.name in namespaces], namespaces


def _save(count: int, lustre_servers: int, namespaces: dict[str, Namespace],
          timings: dict[str, float]) -> None:
    with open(state_file(), "w", encoding="utf-8") as f:
        json.dump({"computes": count, "servers": lustre_servers,
                   "namespaces": [ns.record() for ns in namespaces.values()],
                   "timings": timings}, f, indent=1)


def up(count: int, echo: Echo = print, logger: bool = True, bpftrace: bool = False,
       lustre_servers: int = DEFAULT_SERVERS) -> dict[str, float]:
    """Start head, ``count`` compute nodes, ``lustre_servers`` Lustre server nodes (OSS, the
    first also MDS) and (with ``logger``) the logger node; return the seconds each phase
    took.  ``bpftrace``: compute nodes also run hpcbpftrace (as root, no script running
    until one is added or enabled live)."""
    _, running = load()
    if any(ns.alive() for ns in running.values()):
        raise ClusterError("a cluster is already up: 'hpc-demo cluster down' first")
    down(lambda _: None)
    nodes = plan(count, lustre_servers)
    if not logger:
        nodes = [n for n in nodes if n.role != "logger"]
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    os.makedirs(BASE, exist_ok=True)
    namespaces: dict[str, Namespace] = {}
    try:
        _start_namespaces(nodes, namespaces, (count, lustre_servers), timings)
        slurm.write_conf(nodes)
        _phase(timings, "pmcd", lambda: _each(nodes, lambda n: _start_pmcd(namespaces[n.name])))
        _phase(timings, "slurm", lambda: _start_slurm(nodes, namespaces))
        agents = sources.AGENTS + ((sources.BPFTRACE,) if bpftrace else ())
        _phase(timings, "agents",
               lambda: _each(computes(nodes) + servers(nodes),
                             lambda n: _agents(n, namespaces[n.name], agents, len(servers(nodes)))))
        head = namespaces["head"]
        head.daemon(os.path.join(BASE, "head", "ticker.log"), sys.executable, "-m",
                    "hpc_demo.cluster.ticker", "--nodes", str(count), "--servers", str(lustre_servers),
                    env=PYTHON_ENV)
        if logger:
            log = next(n for n in nodes if n.role == "logger")
            _phase(timings, "redis", lambda: store.start_redis_cluster(log, namespaces[log.name]))
            # hpcalarm on the logger exports the alarms pmie records there (hpc.alarm.*, the
            # summary board's alarm panel); installed before pmlogger probes what to log.
            _install(log, namespaces[log.name], "hpcalarm")
            _phase(timings, "logger", lambda: echo(store.logger_setup(log, namespaces[log.name],
                                                                       monitored_set(nodes), PYTHON_ENV)))
    except Exception:
        _save(count, lustre_servers, namespaces, timings)
        raise
    timings["total"] = round(time.monotonic() - t0, 1)
    timings["slowest_install"] = max(INSTALL_SECONDS.values(), default=0.0)
    _save(count, lustre_servers, namespaces, timings)
    return timings


def _phase(timings: dict[str, float], name: str, work: Callable[[], object]) -> None:
    t = time.monotonic()
    work()
    timings[name] = round(time.monotonic() - t, 2)


def _each(nodes: list[Node], work: Callable[[Node], object]) -> None:
    """``work`` on every node at once (each mostly waits on daemons starting)."""
    with ThreadPoolExecutor(max_workers=max(1, len(nodes))) as pool:
        for future in [pool.submit(work, n) for n in nodes]:
            future.result()


def _start_namespaces(nodes: list[Node], namespaces: dict[str, Namespace], size: tuple[int, int],
                      timings: dict[str, float]) -> None:
    t = time.monotonic()
    hosts = hosts_file(nodes)
    network.make_bridge()
    for node in nodes:
        shutil.rmtree(node.directory, ignore_errors=True)
        os.makedirs(node.directory)
        pcpdirs.prepare(node, hosts)
        ns = Namespace(node.name)
        ns.start(pcpdirs.HOLDER, node.directory, node.name)
        namespaces[node.name] = ns
        _save(*size, namespaces, timings)
        network.attach(node, ns)
    timings["namespaces"] = round(time.monotonic() - t, 2)


def _start_pmcd(ns: Namespace) -> None:
    ns.sh("/etc/init.d/pmcd start >/var/log/pcp/pmcd/rc.log 2>&1", timeout=120)
    ns.sh("for i in $(seq 100); do pminfo -f pmcd.hostname >/dev/null 2>&1 && exit 0; sleep 0.2; done; "
          "exit 1")


def _start_slurm(nodes: list[Node], namespaces: dict[str, Namespace]) -> None:
    for node in nodes:
        if node.role in ("head", "compute"):
            slurm.start(node, namespaces[node.name])
    head = namespaces["head"]
    deadline = time.monotonic() + 60
    want = len(computes(nodes))
    while time.monotonic() < deadline:
        states = slurm.run(head, "sinfo", "-h", "-N", "-o", "%N %T", check=False).split()
        if states.count("idle") + states.count("mixed") + states.count("allocated") >= want:
            return
        time.sleep(0.5)
    raise ClusterError(f"slurmd did not register on every node: {states}")


def _agents(node: Node, ns: Namespace, agents: tuple[str, ...], lustre_servers: int) -> None:
    """A compute node's agents on its sources; a Lustre server's hpclustre on its targets."""
    index = int(node.name[-2:])
    if node.role == "lustre":
        configs, agents = sources.prepare_server(node, index, lustre_servers), ("hpclustre",)
    else:
        configs = sources.prepare(node, index)
    directory = os.path.join(node.directory, "pcp", "etc", "hpc")
    os.makedirs(directory, exist_ok=True)
    for agent, config in configs.items():
        with open(os.path.join(directory, f"{agent}.yaml"), "w", encoding="utf-8") as f:
            yaml.safe_dump(config, f, sort_keys=True)
    for agent in agents:
        _install(node, ns, agent)


def _install(node: Node, ns: Namespace, agent: str) -> None:
    t = time.monotonic()
    done = ns.run(sys.executable, "-m", "hpc_pcp.cli", "install", agent, check=False, timeout=240,
                  env=PYTHON_ENV)
    if done.returncode:
        raise ClusterError(f"{node.name}: installing {agent} failed:\n{done.stdout}{done.stderr}")
    INSTALL_SECONDS[f"{node.name}/{agent}"] = round(time.monotonic() - t, 1)


def down(echo: Echo = print) -> list[str]:
    """Kill every recorded node (with its processes and mounts), remove our links and bridge;
    return what is still left (nothing, normally)."""
    nodes, namespaces = load()
    for group in dstate.thaw_all():   # a frozen task would outlive the kill of its node
        echo(f"thawed {group}")
    for name, ns in namespaces.items():
        if ns.alive():
            echo(f"{name}: stopping {len(ns.processes())} processes")
        if not ns.stop():
            echo(f"{name}: processes remain: {ns.processes()}")
    for interface in network.remove():
        echo(f"removed {interface}")
    dstate.remove_all()
    for node in computes(nodes):   # a slurmd killed with its node leaves its jobs' cgroups
        _remove_job_cgroups(node, echo)
    left = leftovers(namespaces, nodes)
    if not left and os.path.isdir(BASE):
        shutil.rmtree(BASE)
    return left


def _remove_job_cgroups(node: Node, echo: Echo, seconds: float = 10) -> None:
    """Empty once the node's processes are gone; a cgroup may stay busy a moment after."""
    deadline = time.monotonic() + seconds
    while remove_job_cgroups(node.name) and time.monotonic() < deadline:
        time.sleep(0.2)
    for group in job_cgroups(node.name):
        echo(f"{node.name}: cgroup {group} remains")


def leftovers(namespaces: dict[str, Namespace] | None = None, nodes: list[Node] | None = None) -> list[str]:
    """Processes in a recorded node, our interfaces, the nodes' Slurm cgroups and our
    freezer cgroups, mounts under the cluster directory."""
    if namespaces is None or nodes is None:
        nodes, namespaces = load()
    found = [f"{name}: process {pid}" for name, ns in namespaces.items() for pid in ns.processes()]
    found += network.leftovers()
    found += [f"cgroup {group}" for group in dstate.groups()]
    found += [f"cgroup {group}" for node in computes(nodes) for group in job_cgroups(node.name)]
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        found += [f"mount {line.split()[4]}" for line in f if line.split()[4].startswith(BASE)]
    return found


def memory_kib(ns: Namespace) -> int:
    """Proportional set size of every process in the node (shared pages split fairly)."""
    total = 0
    for pid in ns.processes():
        try:
            with open(f"/proc/{pid}/smaps_rollup", encoding="utf-8") as f:
                total += next(int(ln.split()[1]) for ln in f if ln.startswith("Pss:"))
        except (OSError, StopIteration):
            continue
    return total


def status() -> list[dict[str, object]]:
    nodes, namespaces = load()
    rows = []
    head = namespaces.get("head")
    slurm_states = {}
    if head is not None and head.alive():
        for line in slurm.run(head, "sinfo", "-h", "-N", "-o", "%N %T", check=False).splitlines():
            name, state = line.split()
            slurm_states[name] = state
    for node in nodes:
        ns = namespaces.get(node.name)
        alive = bool(ns and ns.alive())
        row: dict[str, object] = {"node": node.name, "role": node.role, "address": node.address,
                                  "up": alive}
        if alive:
            row["processes"] = len(ns.processes())
            row["memory_mib"] = round(memory_kib(ns) / 1024, 1)
            answer = ns.run("pminfo", "-f", "pmcd.hostname", check=False, timeout=10).stdout
            row["pmcd"] = answer.rsplit('"', 2)[-2] if answer.count('"') >= 2 else "no answer"
            if node.role == "logger":   # CPU since start, memory and files of each service
                row["services"] = {name: {k: round(v, 1) for k, v in figures.items()}
                                   for name, figures in cost.services(ns).items()}
                row["monitored_nodes"] = len(computes(nodes))
            if node.role == "lustre":
                row["agents"] = _agents_answering(ns)
                row["targets"] = lustre.served(int(node.name[-2:]), len(servers(nodes)))
            if node.role == "compute":
                row["agents"] = _agents_answering(ns)
                row["slurm"] = slurm_states.get(node.name, "?")
                row["fault"] = sources.current_fault(node) or "-"
        rows.append(row)
    return rows


def _agents_answering(ns: Namespace) -> list[str]:
    names = ns.run("pminfo", "hpc", check=False, timeout=20).stdout.split()
    return sorted({"hpc" + n.split(".")[1] for n in names if n.count(".") >= 2})


def fault(name: str, kind: str | None) -> None:
    nodes, namespaces = load()
    node = next((n for n in computes(nodes) if n.name == name), None)
    if node is None or not namespaces.get(name) or not namespaces[name].alive():
        raise ClusterError(f"{name} is not a running compute node of the cluster")
    if sources.current_fault(node) == "d-state" and kind != "d-state":
        dstate.clear(node, namespaces.get("head"))
    if kind == "d-state" and sources.current_fault(node) != "d-state":
        dstate.inject(node, namespaces["head"])
    sources.set_fault(node, kind)


__all__ = ["ClusterError", "DStateError", "NamespaceError", "down", "fault", "leftovers", "status", "up"]
