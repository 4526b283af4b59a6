"""``dtn-lab``: the DTN lab's command (testbed, sweeps, runs measured at the testbed's links).

The lab stands beside the product: it imports ``dtn_transfer``, never the other way
round, and its plots need matplotlib (the ``lab`` extra), loaded only by ``sweep``.
"""
from __future__ import annotations

import json
import os
import sys
import time

import click

from dtn_transfer import cli as product

from .path import plan_meter, plan_path
from .testbed import datasets as ds
from .testbed.bed import Testbed, TestbedError
from .testbed.cli import fail, testbed_group


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """The DTN lab: DTN clusters as network namespaces on this machine (testbed), the
    cluster-scaling experiment (sweep), and dtn-transfer runs told the testbed's path
    figures and measured at its links (run).  Needs root."""


main.add_command(testbed_group)


@main.command("run")
@product.run_parameters
def run_command(**params) -> None:
    """dtn-transfer run between testbed nodes, told the testbed's path figures.

    Same arguments and options as `dtn-transfer run`.  With --auto, what the options leave
    out of the path (bandwidth per node pair, rate per stream) comes from how the testbed
    that owns the nodes shapes its links, and throughput over time is counted at the
    destination nodes' links instead of from the run's progress.
    """
    sys.exit(product.run_transfer(product.RunRequest(**params), figures=plan_path, meter=plan_meter))


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a list of integers like 1,2,4") from None
    if not values or min(values) < 1:
        raise click.BadParameter("values must be positive integers")
    return values


@main.command("sweep")
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
    try:
        from .sweep import SweepSpec, run_sweep, table  # late: plots need matplotlib (the lab extra)
    except ImportError as exc:
        raise click.ClickException(f"dtn-lab sweep draws its plots with matplotlib ({exc}): "
                                   "pip install 'pcp-hpc[lab]'") from None
    try:
        bed = Testbed.load(name)
    except TestbedError as exc:
        fail(exc)
    if dataset not in bed.layout.datasets:
        raise click.UsageError(f"data set {dataset} is not on testbed {name}; "
                               f"`dtn-lab testbed up --datasets {dataset}`")
    node_counts = _int_list(nodes)
    if max(node_counts) > min(bed.layout.source_nodes, bed.layout.dest_nodes) or \
            grid_nodes > min(bed.layout.source_nodes, bed.layout.dest_nodes):
        raise click.UsageError(f"testbed {name} has {bed.layout.source_nodes}+{bed.layout.dest_nodes} nodes")
    spec = SweepSpec(dataset=dataset, nodes=() if no_modes else node_counts,
                     grid_c=() if no_grid else _int_list(grid_c), grid_p=() if no_grid else _int_list(grid_p),
                     grid_nodes=grid_nodes, seconds=seconds, warmup=warmup, repeat=repeat)
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


if __name__ == "__main__":
    main()
