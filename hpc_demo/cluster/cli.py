"""hpc-demo cluster ...: a head node, N compute nodes and a logger node on this machine."""
from __future__ import annotations

import json

import click

from . import cluster
from .layout import DEFAULT_NODES, DEFAULT_SERVERS, MAX_SERVERS
from .sources import FAULTS


@click.group("cluster")
def cluster_group() -> None:
    """A cluster on this machine: head (slurmctld), compute nodes (slurmd with jobs in
    cgroups, pmcd, agents on moving sources), Lustre servers (pmcd, hpclustre on OSTs and
    MDTs whose job_stats follow the running jobs) and a logger node (pmlogger farm, pmie,
    pmproxy on a 3-shard Redis cluster), each in its own namespaces on the bridge hpcbr0
    (10.77.0.0/24)."""


@cluster_group.command("up")
@click.option("--nodes", default=DEFAULT_NODES, show_default=True, type=click.IntRange(1, 99),
              help="Compute nodes (node01...).")
@click.option("--servers", default=DEFAULT_SERVERS, show_default=True, type=click.IntRange(1, MAX_SERVERS),
              help="Lustre server nodes (oss01...): OSTs round robin, the MDTs on oss01.")
@click.option("--no-logger", is_flag=True, help="Leave the logger node out.")
@click.option("--bpftrace/--no-bpftrace", default=True, show_default=True,
              help="Compute nodes also run hpcbpftrace (no script until one is added live).")
def up_cmd(nodes: int, servers: int, no_logger: bool, bpftrace: bool) -> None:
    """Start the cluster and print how long each phase took."""
    try:
        timings = cluster.up(nodes, click.echo, logger=not no_logger, bpftrace=bpftrace,
                             lustre_servers=servers)
    except (cluster.ClusterError, cluster.NamespaceError, RuntimeError) as exc:
        raise click.ClickException(f"{exc}\n(what started is recorded: 'hpc-demo cluster down')") from None
    click.echo("started in " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))


@cluster_group.command("down")
def down_cmd() -> None:
    """Stop every node; no namespace, mount, process, link or bridge is left."""
    left = cluster.down(click.echo)
    if left:
        raise click.ClickException("left behind: " + ", ".join(left))
    click.echo("cluster down, nothing left behind")


@cluster_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
def status_cmd(as_json: bool) -> None:
    """Each node: up, processes, memory (PSS), pmcd's hostname, agents, Slurm state, fault;
    on the logger node, each service's CPU seconds since start, RSS, PSS and open files."""
    rows = cluster.status()
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    if not rows:
        click.echo("no cluster")
    for row in rows:
        click.echo("  ".join(f"{k}={','.join(v) if isinstance(v, list) else v}" for k, v in row.items()
                             if not isinstance(v, dict)))
        for name, figures in row.get("services", {}).items():
            click.echo(f"    {name}: " + "  ".join(f"{k}={v}" for k, v in figures.items()))


@cluster_group.command("fault", help="Inject a fault on NODE (or --clear it): "
                       + "; ".join(f"{k}: {v}" for k, v in FAULTS.items()) + ".")
@click.argument("node")
@click.argument("kind", required=False, type=click.Choice(sorted(FAULTS)))
@click.option("--clear", is_flag=True, help="Remove the node's fault.")
def fault_cmd(node: str, kind: str | None, clear: bool) -> None:
    if clear == (kind is not None):
        raise click.UsageError("give a fault KIND or --clear")
    try:
        cluster.fault(node, None if clear else kind)
    except (cluster.ClusterError, cluster.DStateError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{node}: {'fault cleared' if clear else kind}")
