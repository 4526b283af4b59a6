"""``dtn-lab testbed up|down|status|endpoints|path``: the testbed from the command line."""
from __future__ import annotations

import json
import shlex
import sys
from typing import NoReturn

import click

from dtn_transfer.sizes import parse_size

from ..path import testbed_path
from . import datasets as ds
from .bed import Testbed, TestbedError

EXIT_FATAL = 3
MIB = 2 ** 20


def fail(exc: Exception) -> NoReturn:
    """One sentence on stderr and exit 3: the testbed is not there or could not be built."""
    click.echo(f"dtn-lab: {exc}", err=True)
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
@click.option("--flow-rate", default=None,
              help="Per-TCP-stream cap, bytes/s, or 'none' for no per-stream cap "
                   "[default: 256K; none with --rtt or --loss].")
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
@click.option("--anonymous", is_flag=True,
              help="Anonymous clear-text ftp:// servers instead of GSI (X.509, gsiftp://).")
@click.option("--rtt", default=None, metavar="TIME",
              help="Round-trip time between the clusters, e.g. 130ms: a delay line (userspace TAP "
                   "forwarder) joins them instead of one bridge, and TCP windows limit each stream.")
@click.option("--loss", default=None, metavar="RATE",
              help="Random loss on the delay line, per frame and direction, e.g. 0.01%.")
@click.option("--tcp-buffer", default=None, metavar="BYTES",
              help="With --rtt: per-node TCP buffer maximum (tcp_rmem/tcp_wmem), e.g. 512K "
                   "[default: the host's].")
@click.option("--congestion", default=None, metavar="NAME",
              help="With --rtt: per-node TCP congestion control (a namespace may pick only the host's "
                   "allowed ones, e.g. reno or bbr) [default: the host's].")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def up_command(name, nodes, source_nodes, dest_nodes, subnet, node_rate, flow_rate, buckets, mtu, root,
               datasets, scale, anonymous, rtt, loss, tcp_buffer, congestion, as_json) -> None:
    """Build the testbed (idempotent: a matching running testbed is kept).

    The servers are GSI-only unless --anonymous: the testbed makes a CA, host certificates,
    a user certificate mapped to a local account in its grid-mapfile, and a user proxy, in
    its state directory; `dtn-lab testbed env` prints the variables that make dtn-transfer
    and globus-url-copy use them."""
    names = tuple(d.strip() for d in datasets.split(",") if d.strip())
    try:
        rtt_ms = parse_duration_ms(rtt) if rtt else 0.0
        loss_rate = parse_fraction(loss) if loss else 0.0
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if flow_rate is None:
        flow_rate = "none" if rtt_ms or loss_rate else "256K"
    flow = None if flow_rate.lower() == "none" else parse_size(flow_rate)
    try:
        bed = Testbed.up(name, source_nodes or nodes, dest_nodes or nodes, names, scale, subnet=subnet,
                         node_rate=parse_size(node_rate), flow_rate=flow, buckets=buckets, mtu=mtu, root=root,
                         anonymous=anonymous, rtt_ms=rtt_ms, loss=loss_rate,
                         tcp_buffer=parse_size(tcp_buffer) if tcp_buffer else None, congestion=congestion)
    except TestbedError as exc:
        fail(exc)
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
        fail(exc)
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
    """Print SRC DST of a data set, for: dtn-transfer run $(dtn-lab testbed endpoints medium)."""
    try:
        click.echo(" ".join(Testbed.load(name).endpoints(dataset, nodes)))
    except TestbedError as exc:
        fail(exc)


@testbed_group.command("env")
@click.option("--name", default="dtnb", show_default=True)
def env_command(name) -> None:
    """Print the testbed's client credentials as shell exports, for: eval "$(dtn-lab testbed env)"."""
    try:
        env = Testbed.load(name).client_environment()
    except TestbedError as exc:
        fail(exc)
    for key, value in env.items():
        click.echo(f"export {key}={shlex.quote(value)}")


def parse_duration_ms(text: str) -> float:
    """``130ms``, ``0.13s`` or a bare number of milliseconds → milliseconds."""
    t = text.strip().lower()
    factor = 1.0
    if t.endswith("ms"):
        t = t[:-2]
    elif t.endswith("s"):
        t, factor = t[:-1], 1000.0
    try:
        value = float(t) * factor
    except ValueError:
        raise ValueError(f"{text!r} is not a time (e.g. 130ms)") from None
    if value < 0:
        raise ValueError(f"{text!r} is negative")
    return value


def parse_fraction(text: str) -> float:
    """``0.01%`` or a bare fraction (``0.0001``) → fraction."""
    t = text.strip()
    try:
        value = float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError:
        raise ValueError(f"{text!r} is not a loss rate (e.g. 0.01%)") from None
    if not 0 <= value < 1:
        raise ValueError(f"{text!r} must be between 0 and 100%")
    return value


def _show(status: dict, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(status, indent=1))
        return
    flow = f"{status['flow_rate'] / MIB:.3f} MiB/s per stream" if status["flow_rate"] else "no per-stream cap"
    click.echo(f"testbed {status['name']}: {'healthy' if status['healthy'] else 'NOT healthy'}; "
               f"{status['subnet']}; node cap {status['node_rate'] / MIB:.2f} MiB/s, {flow} "
               f"({status['buckets']} buckets), MTU {status['mtu']}")
    line = status.get("wan", {})
    if line.get("delay_line"):
        measured = line.get("measured_rtt_ms")
        click.echo(f"  delay line: RTT {line['rtt_ms']:g} ms "
                   f"(ping {measured if measured is not None else '?'} ms), "
                   f"loss {line['loss']:.4%}, TCP buffer max {line['tcp_buffer'] or 'host default'}, "
                   f"congestion {line['congestion'] or 'host default'}, forwarder "
                   f"{'pid ' + str(line.get('pid')) if line.get('running') else 'NOT running'}")
    security = status["security"]
    if security["scheme"] == "ftp":
        click.echo("  anonymous ftp:// (clear text, no credentials)")
    else:
        click.echo(f"  GSI gsiftp://: CA certificates {security['X509_CERT_DIR']}, "
                   f"user proxy {security['X509_USER_PROXY']} (eval \"$(dtn-lab testbed env)\")")
    for n in status["nodes"]:
        click.echo(f"  {n['node']:3} {n['namespace']:10} {n['endpoint']:18} "
                   f"server {'up' if n['server_answers'] else 'DOWN'}, "
                   f"{'shaped' if n['shaped'] else 'NOT shaped'}, {n['processes']} process(es)")
    for name, d in status["datasets"].items():
        click.echo(f"  data set {name:7} {d['files']:5} files {d['bytes'] / MIB:9.1f} MiB  {d['source']}")


@testbed_group.command("path")
@click.option("--name", default="dtnb", show_default=True)
def path_command(name) -> None:
    """Print the testbed's path figures as dtn-transfer options, for:
    dtn-transfer run $(dtn-lab testbed endpoints medium) --auto $(dtn-lab testbed path).
    """
    try:
        path = testbed_path(Testbed.load(name).layout)
    except TestbedError as exc:
        fail(exc)
    rtt = f" --rtt {path.rtt * 1000:g}" if path.rtt else ""
    click.echo(f"--path-bandwidth {int(path.bandwidth)} --stream-rate {int(path.stream_rate)}{rtt}")
