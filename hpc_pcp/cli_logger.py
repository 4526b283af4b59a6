"""hpc-pcp logger ...: configure the logger node (pmlogger farm, pmproxy + Valkey, pmie) and dashboards."""
from __future__ import annotations

import os

import click

from . import logger


@click.group("logger")
def logger_group() -> None:
    """Set up the logger node: pmlogger archives of every node, pmproxy with
    Valkey/Redis time series for Grafana, and the pmie alarm rules.
    """


@logger_group.command("setup")
@click.option("--nodes", required=True,
              help="Hosts whose pmcd to record: a node set (node[01-08],login1) or a list (host1,host2).")
@click.option("--interval", default="30s", show_default=True, help="Sampling interval (30s, 1m, 500ms).")
@click.option("--redis", default="localhost:6379", show_default=True,
              help="Valkey/Redis for pmproxy's time series: host:port, or a cluster's seeds "
              "host:port,host:port,... (a cluster is not started here).")
@click.option("--retention-days", default=14.0, show_default=True, type=float,
              help="Days of samples Valkey keeps per series (pmproxy stream.expire / maxlen).")
@click.option("--viz", default="", help="Comma-separated visualisation (Grafana) hosts allowed to reach "
              "pmproxy; written as firewall rules. Also limits pmcd fetches to this logger.")
@click.option("--listen", default=None, help="Address pmproxy binds to (pmproxy -i), e.g. the address "
              "on the network the Grafana node uses.")
@click.option("--pmie-rules", default=None, type=click.Path(dir_okay=False),
              help="pmie rules file for the alarm hook (default: pmie_rules/hpc-alarms.pmie if shipped).")
@click.option("--fetch-from", default="", help="Comma-separated hosts besides this logger that may fetch "
              "from every node's pmcd (a second logger, an admin host); nobody else may.")
@click.option("--root", default="/", show_default=True, type=click.Path(file_okay=False),
              help="Write under this prefix instead of / (packaging, review, tests).")
@click.option("--dry-run", is_flag=True, help="Print the files instead of writing them.")
@click.option("--series-index", "series_index", type=click.Choice(["auto", "on", "off"]), default="auto",
              show_default=True, help="The series index, which makes an instance that appears after "
              "pmproxy started (a new job) found in every metric of its domain; auto: on for PCP before "
              "6.3.4, whose pmproxy finds it in one metric only.")
@click.option("--start", is_flag=True, help="Then (re)start Valkey/Redis, pmproxy, pmlogger (and pmie, "
              "the series index).")
def setup_cmd(nodes: str, interval: str, redis: str, retention_days: float, viz: str, listen: str | None,
              pmie_rules: str | None, fetch_from: str, root: str, dry_run: bool, series_index: str,
              start: bool) -> None:
    """Write the logger node's PCP configuration for NODES.

    \b
    - $PCP_SYSCONF_DIR/pmlogger/control.d/hpc-<node>: one pmlogger per remote node
      (the local host is recorded by the primary pmlogger); pmlogger_check creates
      each config with pmlogconf, which probes the node for our agents;
    - $PCP_VAR_DIR/config/pmlogconf/hpc/<agent>: one pmlogconf group per agent;
    - pmproxy.conf / pmproxy.options: REST API, series in Valkey/Redis, no Redis proxying;
    - $PCP_SYSCONF_DIR/hpc/pmproxy-access.nft: firewall rules for the Grafana host;
    - $PCP_SYSCONF_DIR/hpc/pmcd.conf.access: copy to every node's pmcd directory (fetches
      from this logger and --fetch-from hosts only, stores from the node itself);
    - $PCP_SYSCONF_DIR/pmie/control.d/hpc: the alarm rules on every node, when shipped, and the alarm
      state directory their actions write ($PCP_VAR_DIR/config/hpc/alarms, owned by pcp);
    - $PCP_SYSCONF_DIR/hpc/hpc-pcp-series-index.service: on PCP before 6.3.4, the series index
      (see 'hpc-pcp logger series-index --help'), started by --start.
    """
    try:
        files = logger.plan(logger.expand_nodes(nodes), interval, redis, retention_days,
                            [v for v in viz.split(",") if v.strip()], listen, pmie_rules,
                            fetch_from=[h for h in fetch_from.split(",") if h.strip()],
                            series_index={"auto": None, "on": True, "off": False}[series_index])
    except logger.LoggerSetupError as exc:
        raise click.UsageError(str(exc)) from None
    index_unit = next((f.path for f in files if f.path.endswith(os.path.basename(logger.SERIES_INDEX_UNIT))),
                      None)
    no_client = logger.seriesindex.missing_client() if index_unit else None
    if no_client:
        click.echo(f"Warning: {no_client}; the series index cannot run until then", err=True)
    if dry_run:
        for spec in files:
            click.echo(f"==> {spec.path}  ({spec.why})\n{spec.text}")
        return
    with_pmie = any("/pmie/" in f.path for f in files)
    try:
        logger.apply(files, root, click.echo)
        if with_pmie:
            logger.alarm_directory(root, echo=click.echo)
    except (OSError, KeyError) as exc:
        raise click.ClickException(f"cannot write the configuration: {exc}") from None
    if start:
        unit = os.path.join(root, index_unit.lstrip("/")) if index_unit else None
        if logger.start_services(click.echo, with_pmie, with_store=logger.local_store(redis),
                                 series_index=None if no_client else unit):
            raise click.ClickException("a service failed to start; see above and $PCP_LOG_DIR")
        if no_client:
            raise click.ClickException(f"the series index was not started: {no_client}")


@logger_group.command("series-index")
@click.option("--redis", default="localhost:6379", show_default=True,
              help="pmproxy's Valkey/Redis: host:port, or a cluster's seeds host:port,host:port,...")
@click.option("--interval", default="10s", show_default=True, help="Time between passes (10s, 1m).")
@click.option("--domains", default="410-416", show_default=True,
              help="PMDA domains whose instance domains are indexed: numbers and ranges, or 'all'.")
@click.option("--once", is_flag=True, help="One pass, then exit (status 0 even when nothing was missing).")
def series_index_cmd(redis: str, interval: str, domains: str, once: bool) -> None:
    """Index instances that appear after pmproxy cached a metric, in every metric of their domain.

    pmproxy before PCP 6.3.4 (Debian 12 ships 6.0.3) finds such an instance -- a job that
    starts after the logger -- by its name in one metric of the instance domain only
    (hpc.lustre.job.mdt.ops_rate, not write.bytes); its values are stored but cannot be found.
    Each pass adds the missing entries in Valkey/Redis, as PCP 6.3.4's pmproxy writes them.
    'hpc-pcp logger setup --start' runs this as a service on such a logger.
    """
    from . import seriesindex

    try:
        seeds = logger.redis_seeds(redis)
        seconds = logger.interval_seconds(interval)
        wanted = seriesindex.domains(domains)
    except (logger.LoggerSetupError, ValueError) as exc:
        raise click.UsageError(str(exc)) from None
    seriesindex.follow(seeds, seconds, wanted, click.echo, passes=1 if once else None)


@logger_group.command("dashboards")
@click.option("--out", default=None, type=click.Path(file_okay=False),
              help="Directory for the JSON files (default: the repository's grafana_dashboards/).")
@click.option("--check", is_flag=True, help="Exit 1 if the files differ from what the code generates.")
def dashboards_cmd(out: str | None, check: bool) -> None:
    """Generate the Grafana dashboards (grafana-pcp) from the agents' metric tables."""
    from . import dashboards

    directory = out or str(dashboards.DEFAULT_DIR)
    if check:
        problems = dashboards.differences(directory)
        for problem in problems:
            click.echo(problem, err=True)
        if problems:
            raise click.ClickException("dashboards are stale: run 'hpc-pcp logger dashboards'")
        click.echo(f"dashboards in {directory} match the code")
        return
    for path in dashboards.write(directory):
        click.echo(path)


def register(main: click.Group) -> None:
    """Attach 'hpc-pcp logger ...' to the main command."""
    main.add_command(logger_group)
