"""hpc-pcp alarm: the commands pmie's rule actions run, and the rule generator.

``fire`` and ``clear`` are called by pmie on every evaluation where a rule is true
(or turned false), so they import little and start fast.  Run standalone as
``python -m hpc_pcp.cli_alarm`` too (the tests do, before the lead wires it in).
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

import click

from pmdas.hpcalarm.state import SEVERITIES, AlarmStore, Transition, default_directory

UNDEFINED = ("<%h undefined>", "<%i undefined>", "<%v undefined>")


def parse_bindings(text: str) -> dict[str, dict[str, str]]:
    """pmie's here-document lines 'host<TAB>instance<TAB>value' → {host: {instance: value}}.

    pmie writes '<%i undefined>' for rules without instances; that becomes ''.
    Lines without a host are skipped.
    """
    out: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        parts = line.split("\t")
        parts = ["" if p.strip() in UNDEFINED else p.strip() for p in parts] + ["", ""]
        host, instance, value = parts[0], parts[1], parts[2]
        if host:
            out.setdefault(host, {})[instance] = value
    return out


def _syslog(changes: list[Transition], enabled: bool) -> None:
    """Each firing and clearing goes to the system log once (pmie's syslog action would repeat)."""
    if not enabled or not changes:
        return
    import syslog
    syslog.openlog("hpc-pcp-alarm", syslog.LOG_PID, syslog.LOG_DAEMON)
    level = {"info": syslog.LOG_INFO, "warning": syslog.LOG_WARNING, "critical": syslog.LOG_CRIT}
    for c in changes:
        what = "FIRING" if c.fired else "cleared"
        where = f"{c.host}:{c.instance}" if c.instance else c.host
        syslog.syslog(level.get(c.severity, syslog.LOG_WARNING) if c.fired else syslog.LOG_NOTICE,
                      f"{what} {c.severity} {c.rule} {where}: {c.message}")


def _report(changes: list[Transition]) -> None:
    for c in changes:
        click.echo(f"{'fired' if c.fired else 'cleared'} {c.rule} {c.host} {c.instance}".rstrip())


def _format(template: str, host: str, instance: str, value: str) -> str:
    try:
        return template.format(host=host, instance=instance or "-", value=value)
    except (KeyError, IndexError, ValueError):
        return template


state_dir_option = click.option(
    "--state-dir", type=click.Path(file_okay=False), default=None,
    help="Alarm state directory (default $HPC_PCP_ALARM_DIR or $PCP_VAR_DIR/config/hpc/alarms).")


@click.group("alarm", context_settings={"help_option_names": ["-h", "--help"]})
def alarm_group() -> None:
    """pmie alarm rules for HPC and their state (exported by hpcalarm as hpc.alarm.*).

    pmie evaluates the rules that 'hpc-pcp alarm rules' writes; their actions run
    'hpc-pcp alarm fire' and 'hpc-pcp alarm clear', which record each alarm in the
    state directory.
    """


@alarm_group.command("fire")
@click.argument("rule")
@click.option("--severity", type=click.Choice(SEVERITIES), default="warning", show_default=True)
@click.option("--message", default="{host} {instance}: {value}", show_default=True,
              help="Message template; {host}, {instance} and {value} are filled in.")
@click.option("--host", "hosts", multiple=True, help="Host the rule is true on (else read from stdin).")
@click.option("--instance", default="", help="With --host: the instance the rule is true for.")
@click.option("--value", default="", help="With --host: the measured value.")
@click.option("--syslog/--no-syslog", "to_syslog", default=True, help="Log transitions to syslog.")
@state_dir_option
def fire_cmd(rule: str, severity: str, message: str, hosts: tuple[str, ...], instance: str,
             value: str, to_syslog: bool, state_dir: str | None) -> None:
    """Record that RULE is true, on each host named, for exactly the instances given.

    pmie feeds 'host<TAB>instance<TAB>value' lines on standard input (a quoted
    here-document, so instance names never pass through the shell).  Instances of
    those hosts not in the input are cleared.
    """
    bindings = {h: {instance: value} for h in hosts} if hosts else parse_bindings(sys.stdin.read())
    if not bindings:
        raise click.ClickException("no host given (use --host or host/instance/value lines on stdin)")
    true_now = {h: {i: (v, _format(message, h, i, v)) for i, v in insts.items()}
                for h, insts in bindings.items()}
    changes = AlarmStore(state_dir).fire(rule, severity, true_now, time.time())
    _syslog(changes, to_syslog)
    _report(changes)


@alarm_group.command("clear")
@click.argument("rule")
@click.option("--host", "hosts", multiple=True, help="Host the rule is false on (else read from stdin).")
@click.option("--syslog/--no-syslog", "to_syslog", default=True, help="Log transitions to syslog.")
@state_dir_option
def clear_cmd(rule: str, hosts: tuple[str, ...], to_syslog: bool, state_dir: str | None) -> None:
    """Record that RULE is false for every instance on the hosts (one per stdin line)."""
    names = list(hosts) or [h for h in parse_bindings(sys.stdin.read())]
    changes = AlarmStore(state_dir).clear(rule, names, time.time())
    _syslog(changes, to_syslog)
    _report(changes)


@alarm_group.command("list")
@click.option("--all", "every", is_flag=True, help="Also show cleared alarms.")
@state_dir_option
def list_cmd(every: bool, state_dir: str | None) -> None:
    """Show the alarms firing now (what hpc.alarm.* exports)."""
    store = AlarmStore(state_dir)
    if not os.path.isdir(store.directory):
        click.echo(f"no alarm has fired yet ({store.directory} does not exist)")
        return
    states, problems = store.read_all()
    for state in states:
        for name, a in sorted(state.alarms.items()):
            if a.firing or every:
                since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(a.since))
                status = "FIRING" if a.firing else "cleared"
                click.echo(f"{status:<8} {state.severity:<8} {state.rule:<28} {state.host}:{name} "
                           f"since {since}  {a.message}")
    for problem in problems:
        click.echo(f"unusable state file {problem}", err=True)


@alarm_group.command("show")
def show_cmd() -> None:
    """List the rules of the catalogue, their severity and tunable variables."""
    from .alarm import RuleError, load_catalogue
    try:
        rules = load_catalogue()
    except RuleError as exc:
        raise click.ClickException(str(exc)) from None
    for r in rules:
        knobs = ", ".join(f"{k}={v}" for k, v in r.values.items())
        click.echo(f"{r.name:<28} {r.severity:<8} {r.summary}" + (f"  [{knobs}]" if knobs else ""))


@alarm_group.command("rules")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="YAML file with thresholds, enabled rules, hosts (see pmie_rules/README.md).")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write here (default stdout).")
@click.option("--state-dir", help="State directory the actions write (overrides the config file).")
@click.option("--command", "command",
              help="How actions call this command (default: this installation's hpc-pcp by absolute "
                   "path, since pmie runs actions with a fixed PATH), e.g. '/usr/bin/hpc-pcp alarm'.")
@click.option("--delta", help="pmie evaluation interval, e.g. '30 sec'.")
@click.option("--host", "hosts", multiple=True, help="Add a node.unreachable rule for this host.")
@click.option("--check/--no-check", default=False,
              help="Run 'pmie -C' on the result against the local pmcd (agents must be installed).")
def rules_cmd(config_path: str | None, output: str | None, state_dir: str | None, command: str | None,
              delta: str | None, hosts: tuple[str, ...], check: bool) -> None:
    """Write the pmie configuration for the catalogue, tuned by --config."""
    from .alarm import RuleError, configure, installed_command, load_catalogue, load_config, render
    try:
        raw = dict(load_config(config_path))
        for key, value in (("state_dir", state_dir), ("command", command), ("delta", delta)):
            if value:
                raw[key] = value
        raw.setdefault("command", " ".join(installed_command()))   # pmie's PATH misses a venv
        if hosts:
            raw["hosts"] = [*(raw.get("hosts") or []), *hosts]
        rules, settings = configure(load_catalogue(), raw, config_path or "options")
    except RuleError as exc:
        raise click.ClickException(str(exc)) from None
    text = render(rules, settings)
    if output:
        tmp = output + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, output)
    else:
        click.echo(text, nl=False)
    if check:
        path = output or "-"
        done = subprocess.run(["pmie", "-C", path], input=None if output else text, text=True,
                              capture_output=True, check=False)
        if done.returncode != 0 or done.stderr.strip():
            raise click.ClickException(f"pmie -C rejected the rules: {done.stderr.strip()}")
    if output:
        click.echo(f"wrote {sum(r.enabled for r in rules)} rules to {output} "
                   f"(state in {settings.state_dir or default_directory()})", err=True)


def register(main: click.Group) -> None:
    """Attach 'alarm' to the hpc-pcp command (called by hpc_pcp.cli)."""
    main.add_command(alarm_group)


if __name__ == "__main__":
    alarm_group()
