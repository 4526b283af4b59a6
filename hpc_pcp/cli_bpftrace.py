"""hpc-pcp bpftrace: manage bpftrace scripts live, through PCP stores to the agent.

Every change goes through pmcd (pmstore to hpc.bpftrace.control.*), so the agent
checks the caller's identity exactly as it does for a Grafana panel or any other
PCP client; this command has no back door.
"""
from __future__ import annotations

import subprocess
import time

import click

from .pcpenv import pcp_config

ROOT = "hpc.bpftrace"


def _refreshes(reader) -> int:
    return reader.fetch([f"{ROOT}.agent.refreshes"])[f"{ROOT}.agent.refreshes"] or 0


def _pmstore(metric: str, value: str, host: str) -> str:
    """Store, then wait for the agent's next refresh to read back what it did."""
    from .pcpclient import PcpReader

    reader = PcpReader(host)
    before = _refreshes(reader)
    env_path = "/usr/bin:/bin:" + pcp_config("PCP_BINADM_DIR")
    argv = ["pmstore", "-h", host, f"{ROOT}.control.{metric}", value]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30,
                              env={"PATH": env_path})
    except FileNotFoundError:
        raise click.ClickException("pmstore not found: is PCP installed?") from None
    deadline = time.monotonic() + 15
    while _refreshes(reader) <= before and time.monotonic() < deadline:
        time.sleep(0.2)
    result = reader.fetch([f"{ROOT}.control.result"])[f"{ROOT}.control.result"]
    if done.returncode != 0:
        why = result or (done.stderr.strip().splitlines() or ["store refused"])[-1]
        raise click.ClickException(why)
    return result or "done"


@click.group("bpftrace")
@click.option("--host", default="local:", show_default=True, help="pmcd whose hpcbpftrace agent to manage.")
@click.pass_context
def bpftrace_group(ctx: click.Context, host: str) -> None:
    """Add, enable, disable, remove and list bpftrace scripts on a node, live.

    Scripts need a header naming them and declaring their exports, e.g.

    \b
      // name: opens
      // description: files opened, by process name
      // exports: @opens counter by comm unit count: openat calls by processes with this name
    """
    ctx.obj = host


@bpftrace_group.command("add")
@click.argument("script", type=click.File("r", encoding="utf-8"))
@click.pass_obj
def add_cmd(host: str, script) -> None:
    """Add SCRIPT (a .bt file, or - for standard input) and enable it."""
    click.echo(_pmstore("add", script.read(), host))


@bpftrace_group.command("enable")
@click.argument("name")
@click.pass_obj
def enable_cmd(host: str, name: str) -> None:
    """Enable (and start) script NAME."""
    click.echo(_pmstore("enable", name, host))


@bpftrace_group.command("disable")
@click.argument("name")
@click.pass_obj
def disable_cmd(host: str, name: str) -> None:
    """Disable (and stop) script NAME."""
    click.echo(_pmstore("disable", name, host))


@bpftrace_group.command("remove")
@click.argument("name")
@click.pass_obj
def remove_cmd(host: str, name: str) -> None:
    """Stop and delete admin-added script NAME."""
    click.echo(_pmstore("remove", name, host))


@bpftrace_group.command("list")
@click.pass_obj
def list_cmd(host: str) -> None:
    """List scripts: enabled, state, probes, restarts, error."""
    from .pcpclient import PcpReader

    names = [f"{ROOT}.script.{m}" for m in ("enabled", "state", "probes", "restarts", "error")]
    got = PcpReader(host).fetch(names)
    enabled = got[f"{ROOT}.script.enabled"]
    if enabled is None:
        raise click.ClickException("the hpcbpftrace agent is not answering (hpc-pcp install hpcbpftrace)")
    for name in sorted(enabled):
        state = (got[f"{ROOT}.script.state"] or {}).get(name, "stopped")
        probes = (got[f"{ROOT}.script.probes"] or {}).get(name, 0)
        restarts = (got[f"{ROOT}.script.restarts"] or {}).get(name, 0)
        error = (got[f"{ROOT}.script.error"] or {}).get(name, "")
        flag = "enabled " if enabled[name] else "disabled"
        click.echo(f"{name:<16} {flag} {state:<12} probes {probes:<3} restarts {restarts:<3} {error}")


def register(main: click.Group) -> None:
    main.add_command(bpftrace_group)
