"""The testbed as one object: bring it up, tear it down, say how it is, hand out endpoints.

Python API (what ``dtn-lab testbed`` and the demo use)::

    bed = Testbed.up(name="dtnb", source_nodes=3, dest_nodes=3, datasets=("medium",))
    src, dst = bed.endpoints("medium", nodes=3)     # strings for `dtn-transfer run SRC DST`
    ...
    Testbed.down("dtnb")

State (nodes, addresses, ports, rates, data-set directories) is kept in
``$DTN_TRANSFER_STATE_DIR/testbeds/<name>.json`` and written before anything is built,
so ``down`` finds whatever a failed or interrupted ``up`` left behind; ``down`` also
sweeps namespaces named like the testbed's even when the state file is gone.
"""
from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable

from . import datasets as ds
from . import layout as lay
from . import netns, servers, shaping, wan
from .layout import DEST, SOURCE, Layout, LayoutError


class TestbedError(RuntimeError):
    """The testbed could not be built or used; the message says why."""

    __test__ = False    # not a pytest test class


def _ours(name: str, namespace: str) -> bool:
    return re.fullmatch(rf"{re.escape(name)}-(wan|[sd]\d+)", namespace) is not None


class Testbed:
    __test__ = False    # not a pytest test class

    def __init__(self, layout: Layout):
        self.layout = layout

    # -- building -------------------------------------------------------------------
    @classmethod
    def up(cls, name: str = "dtnb", source_nodes: int = 3, dest_nodes: int = 3,
           datasets: Iterable[str] = tuple(ds.SHAPES), scale: float = 1.0, **layout_options) -> Testbed:
        """Build the testbed (or return the running one if it matches the request)."""
        try:
            wanted = lay.plan_layout(name, source_nodes, dest_nodes, **layout_options)
        except (LayoutError, ValueError) as exc:
            raise TestbedError(str(exc)) from None
        datasets = tuple(datasets)
        security = servers.gsi_files(wanted)
        unknown = [d for d in datasets if d not in ds.SHAPES]
        if unknown:
            raise TestbedError(f"unknown data set(s) {', '.join(unknown)}; known: {', '.join(ds.SHAPES)}")
        current = lay.load(name)
        if current is not None and current.state == "up" and cls(current).healthy() \
                and _same_network(current, wanted):
            bed = cls(current)
            bed.add_datasets(datasets, scale)
            if not current.anonymous:          # a proxy close to expiry is renewed
                security.ensure([n.address for n in current.nodes])
            return bed
        cls.down(name, keep_data=True)
        _check_subnet_free(wanted)
        bed = cls(wanted)
        lay.save(wanted)
        try:
            bed._build_network()
            bed.add_datasets(datasets, scale)
            if not wanted.anonymous:
                security.ensure([n.address for n in wanted.nodes])
            if wanted.delayed:
                wanted.delay_line = wan.start_delay_line(wanted)
                lay.save(wanted)
                echo = wan.ping(wanted)
                wanted.delay_line["measured_rtt_ms"] = echo["median_ms"]
            for node in wanted.nodes:
                servers.start(wanted, node)
        except BaseException as exc:      # also ^C: never leave half a testbed behind
            wanted.state = "failed"
            lay.save(wanted)
            cls.down(name, keep_data=True)
            if not isinstance(exc, Exception):
                raise
            raise TestbedError(f"testbed {name} could not be built ({exc}); everything was torn down"
                               ) from exc
        wanted.state = "up"
        lay.save(wanted)
        return bed

    def _build_network(self) -> None:
        L = self.layout
        hosts = {n.address: n.namespace for n in L.nodes}
        netns.add_namespace(L.wan, hosts)
        netns.run([netns.IP, "-n", L.wan, "link", "add", "br0", "mtu", str(L.mtu), "type", "bridge"])
        netns.run([netns.IP, "-n", L.wan, "link", "set", "br0", "up"])
        if L.delayed:
            wan.build_bridges(L)
        if netns.link_exists(L.host_link):
            netns.run([netns.IP, "link", "delete", L.host_link])
        netns.veth(L.host_link, None, "host", L.wan, L.mtu)
        netns.run([netns.IP, "-n", L.wan, "link", "set", "host", "master", "br0", "up"])
        netns.run([netns.IP, "addr", "add", f"{L.host_address}/{L.prefix_len}", "dev", L.host_link])
        netns.run([netns.IP, "link", "set", L.host_link, "up"])
        sysctls = (shaping.wan_sysctls(L.tcp_buffer, L.congestion) if L.delayed
                   else shaping.node_sysctls(L.shape))
        queue = wan.queue_bytes(L)
        for node in L.nodes:
            netns.add_namespace(node.namespace, hosts, sysctls)
            netns.veth("eth0", node.namespace, node.wan_port, L.wan, L.mtu)
            netns.run([netns.IP, "-n", L.wan, "link", "set", node.wan_port, "master", L.bridge(node.role),
                       "up"])
            netns.run([netns.IP, "-n", node.namespace, "addr", "add", f"{node.address}/{L.prefix_len}",
                       "dev", "eth0"])
            netns.run([netns.IP, "-n", node.namespace, "link", "set", "eth0", "up"])
            netns.shape_link(node.namespace, "eth0", shaping.egress_commands("eth0", L.shape, queue))
            netns.shape_link(L.wan, node.wan_port, shaping.ingress_commands(node.wan_port, L.node_rate,
                                                                           queue_bytes=queue))

    def add_datasets(self, names: Iterable[str], scale: float = 1.0) -> None:
        """Generate data sets into the source cluster's file system and make their destinations."""
        L = self.layout
        for directory, mode in ((L.root, 0o755), (L.source_dir(), 0o755), (L.dest_dir(), 0o777)):
            os.makedirs(directory, exist_ok=True)
            os.chmod(directory, mode)
        for name in names:
            summary = ds.generate(L.source_dir(name), name, scale)
            os.makedirs(L.dest_dir(name), exist_ok=True)
            os.chmod(L.dest_dir(name), 0o777)
            L.datasets[name] = {**summary, "source": L.source_dir(name), "dest": L.dest_dir(name)}
        lay.save(L)

    # -- tearing down ------------------------------------------------------------------
    @staticmethod
    def down(name: str = "dtnb", keep_data: bool = False) -> list[str]:
        """Remove every namespace, link, process and file of testbed ``name``; returns what was removed."""
        removed = []
        layout = lay.load(name)
        if layout is not None and wan.stop(layout):
            removed.append(f"delay line (pid {layout.delay_line['pid']})")
        for namespace in netns.namespaces():
            if _ours(name, namespace):
                netns.delete_namespace(namespace)
                removed.append(namespace)
        for leftover in os.listdir(netns.NETNS_ETC) if os.path.isdir(netns.NETNS_ETC) else []:
            if _ours(name, leftover):
                shutil.rmtree(os.path.join(netns.NETNS_ETC, leftover), ignore_errors=True)
        host_link = f"{name}-h"
        if netns.link_exists(host_link):
            netns.run([netns.IP, "link", "delete", host_link], check=False)
            removed.append(host_link)
        if layout is not None:
            if not keep_data and os.path.isdir(layout.root):
                shutil.rmtree(layout.root, ignore_errors=True)
                removed.append(layout.root)
            if keep_data:
                shutil.rmtree(servers.run_dir(layout), ignore_errors=True)
                layout.state = "down"
                lay.save(layout)
            else:
                lay.forget(name)
        return removed

    # -- looking -----------------------------------------------------------------------
    @classmethod
    def load(cls, name: str = "dtnb") -> Testbed:
        layout = lay.load(name)
        if layout is None or layout.state != "up":
            raise TestbedError(f"testbed {name} is not up; start it with: "
                               f"dtn-lab testbed up --name {name}")
        return cls(layout)

    def healthy(self) -> bool:
        present = set(netns.namespaces())
        return all(ns in present for ns in self.layout.namespaces) and \
            all(servers.answers(n) for n in self.layout.nodes) and \
            (not self.layout.delayed or wan.alive(self.layout))

    def status(self) -> dict:
        """Namespaces, servers and shaping as they are now (not as the state file says)."""
        L = self.layout
        present = set(netns.namespaces())
        nodes = []
        for n in L.nodes:
            up = n.namespace in present
            qdisc = netns.qdisc_show(n.namespace, "eth0") if up else ""
            nodes.append({"node": n.label, "role": n.role, "namespace": n.namespace, "endpoint": n.endpoint,
                          "namespace_present": up, "server_answers": up and servers.answers(n),
                          "shaped": "htb" in qdisc, "processes": len(netns.pids_in(n.namespace)) if up else 0,
                          "transfer_log": servers.transfer_log(L, n)})
        security = {"scheme": L.scheme, **self.client_environment()}
        return {"name": L.name, "state": L.state, "subnet": L.subnet, "security": security,
                "wan_namespace_present": L.wan in present,
                "node_rate": L.node_rate, "flow_rate": L.flow_rate, "buckets": L.buckets, "mtu": L.mtu,
                "root": L.root, "datasets": L.datasets, "nodes": nodes, "wan": self.wan_status(),
                "healthy": all(x["server_answers"] and x["shaped"] for x in nodes) and L.wan in present
                and (not L.delayed or wan.alive(L))}

    def wan_status(self) -> dict:
        """The delay line as set and as it runs: RTT, loss, TCP limits, forwarder and its counters."""
        L = self.layout
        if not L.delayed:
            return {"delay_line": False}
        return {"delay_line": True, "rtt_ms": L.rtt_ms, "loss": L.loss, "tcp_buffer": L.tcp_buffer,
                "congestion": L.congestion, "queue_bytes": wan.queue_bytes(L), **L.delay_line,
                "running": wan.alive(L), "counters": wan.counters(L)}

    def nodes(self, role: str) -> list[lay.Node]:
        return self.layout.cluster(role)

    def endpoint(self, dataset: str, role: str, nodes: int | None = None) -> str:
        """``host:port,host:port/path`` of a data set's directory on one cluster (first ``nodes`` nodes)."""
        L = self.layout
        if dataset not in L.datasets:
            raise TestbedError(f"data set {dataset!r} is not on testbed {L.name} "
                               f"(has: {', '.join(L.datasets) or 'none'})")
        members = L.cluster(role)[:nodes] if nodes else L.cluster(role)
        path = L.source_dir(dataset) if role == SOURCE else L.dest_dir(dataset)
        return f"{L.scheme}://" + ",".join(n.endpoint for n in members) + path

    def endpoints(self, dataset: str, nodes: int | None = None) -> tuple[str, str]:
        """(SRC, DST) for ``dtn-transfer run``: the data set on the first ``nodes`` nodes of each cluster."""
        return self.endpoint(dataset, SOURCE, nodes), self.endpoint(dataset, DEST, nodes)

    def client_environment(self) -> dict[str, str]:
        """X509_CERT_DIR and X509_USER_PROXY for dtn-transfer and globus-url-copy ({} if anonymous)."""
        return {} if self.layout.anonymous else servers.gsi_files(self.layout).client_environment()

    def clear_dest(self, dataset: str) -> None:
        """Empty a data set's destination directory (between experiment runs)."""
        target = self.layout.dest_dir(dataset)
        shutil.rmtree(target, ignore_errors=True)
        os.makedirs(target)
        os.chmod(target, 0o777)


def _check_subnet_free(wanted: Layout) -> None:
    """Refuse a subnet the root namespace already routes (another testbed, a real network)."""
    for name in lay.known():
        other = lay.load(name)
        if other is not None and name != wanted.name and other.state == "up" \
                and other.subnet == wanted.subnet:
            raise TestbedError(f"subnet {wanted.subnet} is used by testbed {name}; choose another --subnet")
    routes = netns.run([netns.IP, "-4", "route", "show", "match", wanted.subnet], check=False)
    for line in routes.splitlines():
        if line.split()[:1] != ["default"]:
            raise TestbedError(f"subnet {wanted.subnet} is already routed here ({line.strip()}); "
                               f"choose another --subnet")


def _same_network(a: Layout, b: Layout) -> bool:
    keys = ("subnet", "source_nodes", "dest_nodes", "node_rate", "flow_rate", "buckets", "mtu", "root",
            "anonymous", "rtt_ms", "loss", "tcp_buffer", "congestion")
    return all(getattr(a, k) == getattr(b, k) for k in keys)


def find_by_node(endpoint_nodes: Iterable[str]) -> Layout | None:
    """The running testbed that owns these ``host:port`` nodes, if any (its path figures for --auto)."""
    wanted = set(endpoint_nodes)
    for name in lay.known():
        layout = lay.load(name)
        if layout is not None and layout.state == "up" and wanted & {n.endpoint for n in layout.nodes}:
            return layout
    return None
