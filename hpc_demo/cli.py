"""hpc-demo: the demo node, every agent on bundled sources that move (not part of the product)."""
from __future__ import annotations

import click

from . import node
from .cluster.cli import cluster_group


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """The demo node: every pcp-hpc agent on bundled sources that move.

    The sources live under $HPC_PCP_DEMO_ROOT (default /var/lib/pcp-hpc/demo): Lustre and
    InfiniBand trees, a private one-node Slurm with a moving job mix, bpftrace scripts,
    dtn-transfer runs on the DTN lab testbed, and a pmie on the alarm rules.
    """


@main.command("up")
def up() -> None:
    """Build demo sources, write demo configs, install every agent, start the ticker."""
    failures = node.up(click.echo)
    click.echo(f"demo sources under {node.DEMO_ROOT}; try: pminfo -f hpc   |   hpc-pcp status")
    if failures:
        raise click.ClickException(f"{failures} agent(s) failed to install")


@main.command("down")
def down() -> None:
    """Remove the demo agents, their demo configs and the ticker."""
    node.down(click.echo)


@main.command("tick")
@click.option("--every", default=5.0, show_default=True, help="Seconds between advances.")
@click.option("--count", type=int, help="Advance this many times, then stop (default: forever).")
def tick(every: float, count: int | None) -> None:
    """Advance the demo sources (counters move) periodically."""
    node.tick(every, count)


main.add_command(cluster_group)

if __name__ == "__main__":
    main()
