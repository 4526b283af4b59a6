"""hpc-pcp: install, remove, check and inspect the pcp-hpc agents on this node."""
from __future__ import annotations

import os
import sys
import time

import click

from pmdas.common.config import ConfigError, default_path, load

from . import cli_alarm, cli_bpftrace, cli_logger
from . import install as installer
from .agents import AGENTS, available
from .pcpenv import pcp_config


def _agent_names(names: tuple[str, ...], every: bool) -> list[str]:
    present = available()
    if every:
        return [n for n in present if n != "hpcsample"]
    if not names:
        raise click.UsageError("name one or more agents, or use --all (see 'hpc-pcp agents')")
    for name in names:
        if name not in AGENTS:
            raise click.UsageError(f"unknown agent {name!r}; known agents: {', '.join(AGENTS)}")
        if name not in present:
            raise click.UsageError(f"agent {name!r} is not part of this installation")
    return list(names)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Manage the pcp-hpc PCP agents on this node.

    Agents are installed the PCP way (an Install script in $PCP_PMDAS_DIR/<agent>
    using pmdaproc.sh) and export metrics under hpc.*.  They coexist with PCP's
    own slurm, lustre, infiniband and bpftrace agents.
    """


@main.command("agents")
def agents_cmd() -> None:
    """List the agents, their domains and whether pmcd has them loaded."""
    loaded = _pmcd_conf_agents()
    problems: dict[str, str] = {}
    present = available(problems)
    for name, entry in AGENTS.items():
        if name not in present:
            click.echo(f"{name:<12} BROKEN: {problems.get(name, 'not loadable')}")
            continue
        agent = entry.load()
        state = "loaded" if name in loaded else "not installed"
        click.echo(f"{name:<12} domain {agent.domain:<4} {agent.root + '.*':<16} {state:<14} {entry.summary}")


@main.command("install")
@click.argument("agents", nargs=-1)
@click.option("--all", "every", is_flag=True, help="Install every agent of this installation.")
@click.option("--at-next-start", is_flag=True,
              help="Only prepare the agent directory and drop .NeedInstall: "
                   "pmcd installs it when it next starts.")
def install_cmd(agents: tuple[str, ...], every: bool, at_next_start: bool) -> None:
    """Install AGENTS into the local pmcd (needs root)."""
    failed = 0
    for name in _agent_names(agents, every):
        if at_next_start:
            try:
                directory = installer.mark_need_install(name)
            except installer.UntrustedPath as exc:
                raise click.ClickException(f"refusing to install {name}: {exc}") from None
            click.echo(f"{name}: will be installed at the next pmcd start ({directory}/.NeedInstall)")
            continue
        result = installer.install(name)
        click.echo(f"{name}: {'installed' if result.ok else 'FAILED'}")
        if not result.ok:
            failed += 1
            click.echo(result.output, err=True)
    if failed:
        raise click.ClickException(f"{failed} agent(s) failed to install; see above and "
                                   f"{pcp_config('PCP_LOG_DIR')}/pmcd/<agent>.log")


@main.command("remove")
@click.argument("agents", nargs=-1)
@click.option("--all", "every", is_flag=True, help="Remove every pcp-hpc agent (PCP's own agents stay).")
def remove_cmd(agents: tuple[str, ...], every: bool) -> None:
    """Remove AGENTS from the local pmcd; only their own hpc.<x> names go."""
    names = [n for n in _pmcd_conf_agents() if n in AGENTS] if every else _agent_names(agents, False)
    failed = 0
    for name in names:
        result = installer.remove(name)
        click.echo(f"{name}: {'removed' if result.ok else 'FAILED'}")
        if not result.ok:
            failed += 1
            click.echo(result.output, err=True)
    if failed:
        raise click.ClickException(f"{failed} agent(s) failed to remove; see above")


@main.command("check")
@click.argument("agents", nargs=-1)
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Check this file instead of the agent's default configuration file.")
def check_cmd(agents: tuple[str, ...], config_path: str | None) -> None:
    """Validate agent configuration files (all present agents by default)."""
    names = list(agents) or list(available())
    if config_path and len(names) != 1:
        raise click.UsageError("--config needs exactly one agent name")
    bad = 0
    for name in _agent_names(tuple(names), False):
        agent = AGENTS[name].load()
        path = config_path or default_path(name)
        try:
            config = load(name, agent.options, config_path)
        except ConfigError as exc:
            bad += 1
            click.echo(f"{name}: {exc}", err=True)
            continue
        where = path if config.path else f"defaults ({path} absent)"
        click.echo(f"{name}: ok, {where}")
    if bad:
        sys.exit(2)


@main.command("status")
@click.argument("agents", nargs=-1)
@click.option("--host", default="local:", show_default=True, help="pmcd to ask.")
def status_cmd(agents: tuple[str, ...], host: str) -> None:
    """Show each loaded agent's health (or only AGENTS'): up, last refresh, failing sources
    and why.  Exits 1 if any shown agent is degraded or not answering."""
    from .pcpclient import PcpReader  # the PCP bindings are needed only here

    try:
        reader = PcpReader(host)
    except Exception as exc:
        raise click.ClickException(f"cannot reach pmcd at {host}: {exc}") from None
    unhealthy = 0
    roots = {entry.load().root: name for name, entry in available().items()}
    loaded = reader.children("hpc")
    if not loaded:
        click.echo("no pcp-hpc agents are loaded in pmcd (see 'hpc-pcp install')")
        sys.exit(1)
    for sub in sorted(loaded):
        root = f"hpc.{sub}"
        name = roots.get(root, sub)
        if agents and name not in agents:
            continue
        got = reader.fetch([f"{root}.agent.{m}" for m in
                            ("up", "last_refresh", "refresh_seconds", "last_error", "config_error")]
                           + [f"{root}.agent.source.up", f"{root}.agent.source.error"])
        up = got[f"{root}.agent.up"]
        last = got[f"{root}.agent.last_refresh"]
        if up is None:
            unhealthy += 1
            click.echo(f"{name:<12} NOT ANSWERING (agent not running, or still starting)")
            continue
        age = f"{time.time() - last:.0f}s ago" if last else "never"
        click.echo(f"{name:<12} {'healthy' if up else 'DEGRADED':<9} last refresh {age}, "
                   f"took {got[f'{root}.agent.refresh_seconds'] or 0:.3f}s")
        if not up:
            unhealthy += 1
        for source, ok in sorted((got[f"{root}.agent.source.up"] or {}).items()):
            if not ok:
                why = (got[f"{root}.agent.source.error"] or {}).get(source, "")
                click.echo(f"{'':<12}   source {source}: down: {why}")
        if got[f"{root}.agent.config_error"]:
            click.echo(f"{'':<12}   config: {got[f'{root}.agent.config_error']}")
    sys.exit(1 if unhealthy else 0)


def _pmcd_conf_agents() -> list[str]:
    path = os.path.join(pcp_config("PCP_SYSCONF_DIR") or "/etc/pcp", "pmcd", "pmcd.conf")
    names = []
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.startswith("["):
                    break
                if line.strip() and not line.startswith("#"):
                    names.append(line.split()[0])
    except OSError:
        pass
    return names


# The command groups of their own modules.  Imported plainly: a broken module is an error at
# start, never a subcommand that silently disappears.
for _group in (cli_bpftrace, cli_logger, cli_alarm):
    _group.register(main)

if __name__ == "__main__":
    main()
