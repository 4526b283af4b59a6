"""What the lab tells a dtn-transfer run between testbed nodes: path figures and a link meter.

``dtn-transfer run --auto`` takes its path figures as inputs (``--path-bandwidth``,
``--stream-rate``, ``--rtt``) and measures throughput from the run's own progress; it
never looks for a testbed.  The lab knows how it shaped its links, so for runs between
its nodes it supplies the figures (node rate per pair, flow rate per stream) and a meter
on the WAN bridge ports, the ground truth the experiments are judged by.
"""
from __future__ import annotations

from collections.abc import Iterable

from dtn_transfer.plan import Plan
from dtn_transfer.run_search import Meter
from dtn_transfer.tuning import PathFigures

from .testbed import find_by_node
from .testbed.layout import Layout
from .testbed.meter import port_counters


def testbed_path(layout: Layout) -> PathFigures:
    """The testbed's shaping as path figures: a node pair moves at most the node rate, a
    stream at most the flow rate (the node rate when streams are not capped).

    Behind the delay line a stream's rate is what a user of a real WAN would be told:
    TCP buffer / RTT (``dtn-transfer --tcp-buffer --rtt`` computes the same), with the RTT."""
    stream = layout.flow_rate or layout.node_rate
    rtt = layout.rtt_ms / 1000
    if layout.delayed and layout.flow_rate is None and layout.tcp_buffer and rtt > 0:
        stream = min(layout.node_rate, int(layout.tcp_buffer / rtt))
    return PathFigures(bandwidth=layout.node_rate, stream_rate=stream, rtt=rtt,
                       origin=f"testbed {layout.name}")


def plan_path(plan: Plan) -> PathFigures | None:
    """Path figures for a plan whose nodes belong to a running testbed (else None)."""
    layout = find_by_node(_nodes(plan))
    return testbed_path(layout) if layout is not None else None


def delivered_meter(layout: Layout, nodes: Iterable[str]) -> Meter:
    """Bytes delivered to these destination nodes, counted at their WAN bridge ports."""
    wanted = set(nodes)
    ports = [n.wan_port for n in layout.nodes if n.endpoint in wanted]
    return Meter("destination links", lambda: sum(port_counters(layout).get(p, (0, 0))[0] for p in ports))


def plan_meter(plan: Plan) -> Meter | None:
    """A link meter on the plan's destination nodes, if a running testbed owns them."""
    layout = find_by_node(plan.dest.nodes)
    return delivered_meter(layout, plan.dest.nodes) if layout is not None else None


def _nodes(plan: Plan) -> list[str]:
    return [n for pair in plan.pairs for n in pair if n]
