"""``dtn-transfer testbed up|down|status|endpoints`` and ``dtn-transfer sweep``."""
from __future__ import annotations

import json
import os
import sys
import time

import click

from . import datasets as ds
from .bed import Testbed, TestbedError

EXIT_USAGE, EXIT_FATAL = 2, 3
MIB = 2 ** 20


def _size(text: str) -> int:
    from ..cli import parse_size  # late: avoid a cycle with the main CLI module
    return parse_size(text)


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a list of integers like 1,2,4") from None
    if not values or min(values) < 1:
        raise click.BadParameter("values must be positive integers")
    return values


def _fail(exc: Exception) -> None:
    click.echo(f"dtn-transfer: {exc}", err=True)
    sys.exit(EXIT_FATAL)


@click.group("testbed")
def testbed_group() -> None:
    """DTN clusters as network namespaces on this machine, with real GridFTP servers and tc-shaped links.

    Each node is a namespace running globus-gridftp-server on its own address; nodes are
    joined by a bridge (the "WAN").  Every TCP stream leaving a node is capped at
    --flow-rate (standing for window/RTT on a real WAN) and every node's link at
    --node-rate (its NIC), so node count, concurrency and parallelism matter as they do
    between real sites.  Needs root.
    """


@testbed_group.command("up")
@click.option("--name", default="dtnb", show_default=True, help="Prefix of the namespaces and links.")
@click.option("--nodes", "nodes", type=click.IntRange(1, 4), default=3, show_default=True,
              help="Nodes in each cluster (source and destination).")
@click.option("--source-nodes", type=click.IntRange(1, 4), default=None,
              help="Override for the source cluster.")
@click.option("--dest-nodes", type=click.IntRange(1, 4), default=None,
              help="Override for the destination cluster.")
@click.option("--subnet", default="10.213.0.0/24", show_default=True, help="Private /24 for the nodes.")
@click.option("--node-rate", default="4M", show_default=True, help="Per-node cap, bytes/s (e.g. 4M).")
@click.option("--flow-rate", default="256K", show_default=True,
              help="Per-TCP-stream cap, bytes/s, or 'none' for no per-stream cap.")
@click.option("--buckets", type=click.IntRange(2, 4096), default=256, show_default=True,
              help="Per-flow hash buckets (HTB classes) per node; a power of two.")
@click.option("--mtu", type=click.IntRange(1280, 9000), default=9000, show_default=True,
              help="MTU of every link (DTNs use jumbo frames).")
@click.option("--root", default=None,
              help="Directory for data sets and server files (default /tmp/NAME-data).")
@click.option("--datasets", default=",".join(ds.SHAPES), show_default=True,
              help="Data sets to generate into the source cluster (small,medium,large,huge).")
@click.option("--scale", type=click.FloatRange(0.001, 100), default=1.0, show_default=True,
              help="Scale of the data sets (file counts of small/medium, file sizes of large/huge).")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def up_command(name, nodes, source_nodes, dest_nodes, subnet, node_rate, flow_rate, buckets, mtu, root,
               datasets, scale, as_json) -> None:
    """Build the testbed (idempotent: a matching running testbed is kept)."""
    names = tuple(d.strip() for d in datasets.split(",") if d.strip())
    flow = None if flow_rate.lower() == "none" else _size(flow_rate)
    try:
        bed = Testbed.up(name, source_nodes or nodes, dest_nodes or nodes, names, scale, subnet=subnet,
                         node_rate=_size(node_rate), flow_rate=flow, buckets=buckets, mtu=mtu, root=root)
    except TestbedError as exc:
        _fail(exc)
    _show(bed.status(), as_json)


@testbed_group.command("down")
@click.option("--name", default="dtnb", show_default=True)
@click.option("--keep-data", is_flag=True, help="Keep the generated data sets for the next `up`.")
def down_command(name, keep_data) -> None:
    """Stop the servers and remove every namespace, link, qdisc and (unless --keep-data) file."""
    removed = Testbed.down(name, keep_data=keep_data)
    click.echo(f"testbed {name}: removed {len(removed)} item(s)"
               + (f": {', '.join(removed)}" if removed else ""))


@testbed_group.command("status")
@click.option("--name", default="dtnb", show_default=True)
@click.option("--json", "as_json", is_flag=True)
def status_command(name, as_json) -> None:
    """Namespaces, servers, shaping and data sets as they are now; exit 3 if not healthy."""
    try:
        bed = Testbed.load(name)
    except TestbedError as exc:
        _fail(exc)
    status = bed.status()
    _show(status, as_json)
    if not status["healthy"]:
        sys.exit(EXIT_FATAL)


@testbed_group.command("endpoints")
@click.argument("dataset")
@click.option("--name", default="dtnb", show_default=True)
@click.option("--nodes", type=click.IntRange(1, 4), default=None,
              help="Use the first N nodes of each cluster.")
def endpoints_command(dataset, name, nodes) -> None:
    """Print SRC DST of a data set, for: dtn-transfer run $(dtn-transfer testbed endpoints medium)."""
    try:
        click.echo(" ".join(Testbed.load(name).endpoints(dataset, nodes)))
    except TestbedError as exc:
        _fail(exc)


def _show(status: dict, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(status, indent=1))
        return
    flow = f"{status['flow_rate'] / MIB:.3f} MiB/s per stream" if status["flow_rate"] else "no per-stream cap"
    click.echo(f"testbed {status['name']}: {'healthy' if status['healthy'] else 'NOT healthy'}; "
               f"{status['subnet']}; node cap {status['node_rate'] / MIB:.2f} MiB/s, {flow} "
               f"({status['buckets']} buckets), MTU {status['mtu']}")
    for n in status["nodes"]:
        click.echo(f"  {n['node']:3} {n['namespace']:10} {n['endpoint']:18} "
                   f"server {'up' if n['server_answers'] else 'DOWN'}, "
                   f"{'shaped' if n['shaped'] else 'NOT shaped'}, {n['processes']} process(es)")
    for name, d in status["datasets"].items():
        click.echo(f"  data set {name:7} {d['files']:5} files {d['bytes'] / MIB:9.1f} MiB  {d['source']}")


@click.command("sweep")
@click.option("--name", default="dtnb", show_default=True, help="Testbed to run on (must be up).")
@click.option("--dataset", type=click.Choice(list(ds.SHAPES)), default="medium", show_default=True)
@click.option("--nodes", "nodes", default="1,2,3", show_default=True, help="Node counts for the modes.")
@click.option("--grid-c", default="1,2,4,8,16", show_default=True, help="Concurrency values of the grid.")
@click.option("--grid-p", default="1,2,4,8,16", show_default=True, help="Parallelism values of the grid.")
@click.option("--grid-nodes", type=click.IntRange(1, 4), default=1, show_default=True,
              help="Node pairs used for the grid.")
@click.option("--no-grid", is_flag=True, help="Only nodes x modes.")
@click.option("--no-modes", is_flag=True, help="Only the C x P grid.")
@click.option("--seconds", type=click.FloatRange(1, 600), default=5.0, show_default=True,
              help="Measured window per point (after the warm-up).")
@click.option("--warmup", type=click.FloatRange(0, 60), default=1.0, show_default=True)
@click.option("--repeat", type=click.IntRange(1, 20), default=1, show_default=True,
              help="Rounds of the nodes x modes part; the median is reported.")
@click.option("--out", "out_dir", default=None, help="Output directory (default ./sweep-DATASET-TIME).")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON document instead of the table.")
def sweep_command(name, dataset, nodes, grid_c, grid_p, grid_nodes, no_grid, no_modes, seconds, warmup,
                  repeat, out_dir, as_json) -> None:
    """Throughput against nodes (Mode I: C=8 P=16, Mode II: C=4 P=8) and over a C x P grid.

    Writes sweep.txt, sweep.json, heatmap.png, scaling.png, throughput_modes.png and
    throughput_grid.png.  A full default sweep takes about four minutes.
    """
    from ..sweep import SweepSpec, run_sweep, table
    try:
        bed = Testbed.load(name)
    except TestbedError as exc:
        _fail(exc)
    if dataset not in bed.layout.datasets:
        raise click.UsageError(f"data set {dataset} is not on testbed {name}; "
                               f"`testbed up --datasets {dataset}`")
    node_counts = _int_list(nodes)
    if max(node_counts) > min(bed.layout.source_nodes, bed.layout.dest_nodes) or \
            grid_nodes > min(bed.layout.source_nodes, bed.layout.dest_nodes):
        raise click.UsageError(f"testbed {name} has {bed.layout.source_nodes}+{bed.layout.dest_nodes} nodes")
    spec = SweepSpec(dataset, () if no_modes else node_counts, grid_c=() if no_grid else _int_list(grid_c),
                     grid_p=() if no_grid else _int_list(grid_p), grid_nodes=grid_nodes, seconds=seconds,
                     warmup=warmup, repeat=repeat)
    if no_modes:
        spec.modes = {}
    out_dir = out_dir or f"sweep-{dataset}-{time.strftime('%Y%m%d-%H%M%S')}"
    doc = run_sweep(bed, spec, out_dir, say=(lambda line: None) if as_json else
                    (lambda line: click.echo(line, err=True)))
    if as_json:
        click.echo(json.dumps({k: v for k, v in doc.items() if k != "trials"}, indent=1))
    else:
        click.echo(table(doc))
        click.echo("wrote " + ", ".join(os.path.join(out_dir, f) for f in ["sweep.txt", "sweep.json"])
                   + (", " + ", ".join(doc["files"]) if doc["files"] else ""))
