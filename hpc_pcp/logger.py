"""The logger node: pmlogger farm lines, pmlogconf groups, pmproxy with Valkey/Redis, pmie hook.

Everything here is configuration for PCP's own services; nothing replaces them.
``plan()`` computes the files (pure: paths relative to a root, and their text),
``apply()`` writes them under a root prefix (``/`` on a real logger node, a
temporary directory in tests), and ``start_services()`` (re)starts the daemons
through their init scripts.  Files we did not write are backed up once before
being replaced, so an admin's pmproxy.conf is never silently lost.
"""
from __future__ import annotations

import collections
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pmdas.common import shipped

from . import seriesindex
from .pcpenv import pcp_config

MARK = "# written by 'hpc-pcp logger setup'; safe to edit, re-running setup overwrites it\n"
LOCAL_NAMES = ("localhost", "local:", "127.0.0.1", "::1")
_INTERVAL = re.compile(r"^(\d+(?:\.\d+)?)\s*(ms|msec|s|sec|secs|m|min|mins|h|hour|hours)?$")
_SECONDS = {None: 1, "ms": 0.001, "msec": 0.001, "s": 1, "sec": 1, "secs": 1, "m": 60, "min": 60,
            "mins": 60, "h": 3600, "hour": 3600, "hours": 3600}
_NODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$")


class LoggerSetupError(Exception):
    """A setting that cannot work; the message is one sentence for the admin."""


@dataclass(frozen=True)
class ConfigFile:
    path: str           # absolute path on the logger node (root prefix added by apply())
    text: str
    why: str            # one line shown to the admin


def interval_seconds(text: str) -> float:
    """'30s', '1m', '500ms', '10' → seconds; LoggerSetupError for anything else."""
    match = _INTERVAL.match(text.strip())
    if not match or float(match.group(1)) <= 0:
        raise LoggerSetupError(f"interval {text!r} is not a duration such as 30s, 1m or 500ms")
    return float(match.group(1)) * _SECONDS[match.group(2)]


def pmlogger_interval(seconds: float) -> str:
    """pmlogger's -t syntax for ``seconds`` (whole seconds when possible)."""
    return f"{seconds:g}sec" if seconds >= 1 else f"{seconds * 1000:g}msec"


def check_nodes(nodes: Iterable[str]) -> list[str]:
    """Validated, de-duplicated host names, in the order given."""
    out: list[str] = []
    for node in nodes:
        node = node.strip()
        if not node:
            continue
        if not _NODE.match(node) or ".." in node:
            raise LoggerSetupError(f"node {node!r} is not a host name")
        if node not in out:
            out.append(node)
    if not out:
        raise LoggerSetupError("no nodes given: use --nodes host1,host2")
    return out


def expand_nodes(text: str) -> list[str]:
    """Host names from a Slurm/ClusterShell node set ('node[01-08],login1') or a plain list.

    Clusters name nodes by ranges; an admin writes the range once, as in slurm.conf and
    pdsh, instead of listing a thousand hosts.  A malformed set is a LoggerSetupError."""
    from ClusterShell.NodeSet import NodeSet, NodeSetException

    if "@" in text:  # ClusterShell groups would read this host's group sources: not a plan input
        raise LoggerSetupError(f"nodes {text!r}: node groups (@name) are not supported, name the nodes")
    try:
        return check_nodes(NodeSet(text.strip()))
    except NodeSetException as exc:
        raise LoggerSetupError(f"nodes {text!r} are not a node set such as node[01-08],login1: "
                               f"{exc}") from None


def redis_seeds(text: str) -> list[str]:
    """Valkey/Redis servers as host:port, de-duplicated: one server, or a cluster's seeds.

    pmproxy reads ``servers`` as seeds: given any node of a Valkey/Redis cluster it learns
    the others (and which shard holds which keys) from the cluster itself, so every shard
    need not be named, but naming more than one keeps pmproxy starting when one is down."""
    seeds: list[str] = []
    for seed in text.split(","):
        seed = seed.strip()
        if not re.match(r"^[\w.-]+:\d{1,5}$", seed) or not 0 < int(seed.rsplit(":", 1)[1]) < 65536:
            raise LoggerSetupError(f"redis servers {text!r} must be host:port[,host:port...]")
        if seed not in seeds:
            seeds.append(seed)
    return seeds


def is_local(node: str) -> bool:
    return node in LOCAL_NAMES or node in (socket.gethostname(), socket.getfqdn())


def groups_source() -> Path:
    """Where this installation keeps its pmlogconf groups (the checkout, else share/pcp-hpc)."""
    source = shipped.data_dir(shipped.PMLOGCONF_GROUPS)
    if source.is_dir():
        return source
    raise LoggerSetupError("the pmlogconf groups of pcp-hpc are missing from this installation")


def pmlogconf_groups(source: Path | None = None) -> dict[str, str]:
    """Group name → text of each pmlogconf group file.

    Each agent's directory holds its groups: ``<agent>`` and, for what is logged at another
    interval, ``<agent>-<what>`` (e.g. ``hpclustre-jobs`` for the servers' per-job statistics
    every minute)."""
    source = source or groups_source()
    groups = {}
    for agent_dir in sorted(p for p in source.iterdir() if p.is_dir()):
        files = sorted(p for p in agent_dir.iterdir() if p.is_file())
        if not files:
            raise LoggerSetupError(f"{agent_dir} holds no pmlogconf group file")
        for path in files:
            if group_agent(path.name) != agent_dir.name:
                raise LoggerSetupError(f"{path}: a group of {agent_dir.name} is named "
                                       f"{agent_dir.name} or {agent_dir.name}-<what>")
            groups[path.name] = path.read_text(encoding="utf-8")
    return groups


def group_agent(group: str) -> str:
    """The agent a pmlogconf group belongs to: ``hpclustre-jobs`` → ``hpclustre``."""
    return group.split("-", 1)[0]


def control_line(node: str, seconds: float) -> str:
    """A pmlogger farm control line: a non-primary logger of ``node``, config made by pmlogconf."""
    return (f"{node}\tn   n\tPCP_ARCHIVE_DIR/{node}\t-r -T24h10m -c config.hpc-{node} "
            f"-v 100Mb -t {pmlogger_interval(seconds)}\n")


# Per-process and accounting metrics stay out of the series store (one series per process:
# unbounded); the per-process indoms are excluded below as well.  The system-wide proc.*
# ones stay in: proc.runq.blocked is the node board's "Processes in D state".
PROCESS_METRICS = ("proc.psinfo.*", "proc.id.*", "proc.memory.*", "proc.io.*", "proc.schedstat.*",
                   "proc.fd.*", "proc.namespaces.*", "proc.smaps.*", "proc.control.*", "hotproc.*", "acct.*")


def pmproxy_conf(redis: str, seconds: float, retention_days: float) -> str:
    """pmproxy.conf (PCP 6.0.3 sections) for REST + scalable time series in Valkey/Redis.

    Redis protocol proxying is off: Grafana needs only HTTP, and Valkey should
    not be reachable through pmproxy.  stream.maxlen keeps retention/interval
    samples per series; stream.expire drops series idle for the retention time.
    """
    expire = int(retention_days * 86400)
    maxlen = max(1, int(expire / seconds))
    return (MARK + "# PCP 6.0.3 pmproxy.conf layout; see the comments of the packaged file for every key.\n"
            "[pmproxy]\npcp.enabled = true\nhttp.enabled = true\nredis.enabled = false\n"
            "secure.enabled = false\n\n"
            f"[redis]\nenabled = true\nservers = {redis}\n\n"
            f"[discover]\nenabled = true\nexclude.metrics = {','.join(PROCESS_METRICS)}\n"
            "exclude.indoms = 3.9,3.40,79.7\n\n"
            "[pmsearch]\nenabled = false\n\n"
            f"[pmseries]\nenabled = true\ncursor.count = 256\nstream.expire = {expire}\n"
            f"stream.maxlen = {maxlen}\n")


def pmproxy_options(listen: str | None) -> str:
    """pmproxy.options: no service advertisement; bind to one address if given."""
    lines = [MARK, "# one option per line, each starting with a hyphen (see pmproxy(1))\n", "-A\n"]
    if listen:
        lines.append(f"-i {listen}\n")
    return "".join(lines)


def firewall_rules(viz: Sequence[str]) -> str:
    """nftables rules: pmproxy's ports (44322 REST/PCP, 44323 series) only from the visualisation nodes."""
    allowed = ", ".join(viz) if viz else "127.0.0.1"
    return (MARK + "# Load with: nft -f pmproxy-access.nft (or translate to your firewall).\n"
            "# pmproxy itself has no client allow-list: restrict it here and with -i in pmproxy.options.\n"
            "table inet hpc_pmproxy {\n  chain input {\n"
            "    type filter hook input priority 0; policy accept;\n"
            "    iif lo accept\n"
            f"    tcp dport {{ 44322, 44323 }} ip saddr {{ {allowed} }} accept\n"
            "    tcp dport { 44322, 44323 } drop\n  }\n}\n")


def pmcd_access(loggers: Sequence[str]) -> str:
    """pmcd.conf.access for every node: stores only from the node itself, fetches from the loggers.

    pmcd reads <pmcd.conf>.access besides the [access] section, so the agents'
    pmcd.conf lines stay untouched.  Nobody else may fetch: job names, users and accounts
    are not for every host on the network (with no logger named, only the node itself).
    """
    lines = [MARK, "# read by pmcd at start, as if it were pmcd.conf's [access] section\n",
             'allow hosts "local:" : all;\n']
    if loggers:
        lines.append(f"allow hosts {', '.join(loggers)} : fetch;\n")
    lines.append("disallow hosts * : all;\n")
    return "".join(lines)


def pmie_control(rules: str, nodes: Sequence[str] = ()) -> str:
    """pmie farm control lines for the pcp-hpc alarm rules (the rules come from pmie_rules/):
    one pmie per node, so every rule is evaluated on every node and its alarm names the node
    (%h); the logger node's own line is PCP's LOCALHOSTNAME."""
    hosts = ["LOCALHOSTNAME", *(n for n in nodes if not is_local(n))]
    return MARK + "$version=1.1\n" + "".join(
        f"{host}\tn   n\tPCP_LOG_DIR/pmie/{host}-hpc\t-c {rules}\n" for host in hosts)


def default_pmie_rules() -> str | None:
    """The alarm rules file shipped by pmie_rules/ (hpc-alarms.pmie), if this installation has one."""
    candidate = shipped.data_dir(shipped.PMIE_RULES) / "hpc-alarms.pmie"
    return str(candidate) if candidate.is_file() else None


def installed_pmie_rules() -> str | None:
    """The shipped rules with their actions calling this installation's hpc-pcp by absolute
    path (the shipped file says plain ``hpc-pcp``, which pmie's fixed PATH finds for a package
    but not for a virtual environment); None when this installation ships no catalogue."""
    from dataclasses import replace

    from .alarm import RuleError, configure, installed_command, load_catalogue, render
    if default_pmie_rules() is None:
        return None
    try:
        rules, settings = configure(load_catalogue(), {})
    except RuleError:
        return None
    return "// " + MARK + render(rules, replace(settings, command=installed_command()))


def plan(nodes: Sequence[str], interval: str = "30s", redis: str = "localhost:6379",
         retention_days: float = 14, viz: Sequence[str] = (), listen: str | None = None,
         pmie_rules: str | None = None, groups: dict[str, str] | None = None,
         fetch_from: Sequence[str] = (), series_index: bool | None = None) -> list[ConfigFile]:
    """Every file a logger node needs for ``nodes``; nothing is written here.

    ``fetch_from``: hosts besides this logger that may fetch from every node's pmcd.
    ``series_index``: the series-index service (None: when this PCP's pmproxy needs it)."""
    nodes = check_nodes(nodes)
    fetch_from = check_nodes(fetch_from) if fetch_from else []
    seconds = interval_seconds(interval)
    if retention_days <= 0:
        raise LoggerSetupError("retention must be more than 0 days")
    redis = ",".join(redis_seeds(redis))
    sysconf, var = pcp_config("PCP_SYSCONF_DIR"), pcp_config("PCP_VAR_DIR")
    files = []
    for node in nodes:
        if is_local(node):
            continue  # the primary logger records this host; its pmlogconf config picks up our groups
        files.append(ConfigFile(f"{sysconf}/pmlogger/control.d/hpc-{node}",
                                MARK + "$version=1.1\n" + control_line(node, seconds),
                                f"pmlogger farm: archive {node} every {interval}"))
    for group, text in (groups if groups is not None else pmlogconf_groups()).items():
        files.append(ConfigFile(f"{var}/config/pmlogconf/hpc/{group}", text,
                                f"pmlogconf group hpc/{group} (logged when the agent answers)"))
    files.append(ConfigFile(f"{sysconf}/pmproxy/pmproxy.conf", pmproxy_conf(redis, seconds, retention_days),
                            f"pmproxy: REST API and time series in {redis}, {retention_days:g} days"))
    files.append(ConfigFile(f"{sysconf}/pmproxy/pmproxy.options", pmproxy_options(listen),
                            "pmproxy options" + (f": listen on {listen} only" if listen else "")))
    files.append(ConfigFile(f"{sysconf}/hpc/pmproxy-access.nft", firewall_rules(viz),
                            "firewall rules: pmproxy reachable only from " + (", ".join(viz) or "this host")))
    loggers = [socket.getfqdn(), *fetch_from]
    files.append(ConfigFile(f"{sysconf}/hpc/pmcd.conf.access", pmcd_access(loggers),
                            "for every node's /etc/pcp/pmcd/: fetches only from "
                            f"{', '.join(loggers)}, stores only from the node itself"))
    if series_index_needed() if series_index is None else series_index:
        files.append(ConfigFile(SERIES_INDEX_UNIT.format(sysconf=sysconf), series_index_unit(redis, seconds),
                                "series index: instances that appear later are found in every metric "
                                "(pmproxy before PCP 6.3.4; started with --start)"))
    rules = pmie_rules
    generated = None if rules else installed_pmie_rules()
    if generated is not None:
        rules = f"{sysconf}/hpc/hpc-alarms.pmie"
        files.append(ConfigFile(rules, generated, "pmie alarm rules (the shipped catalogue), actions calling "
                                "this installation's hpc-pcp by path"))
    if rules:
        files.append(ConfigFile(f"{sysconf}/pmie/control.d/hpc", pmie_control(rules, nodes),
                                f"pmie: alarm rules {rules} on this host and {len(nodes)} node(s)"))
    return files


SERIES_INDEX_UNIT = "{sysconf}/hpc/hpc-pcp-series-index.service"
SERIES_INDEX_PID = "hpc-pcp-series-index.pid"


def series_index_needed(version: str | None = None) -> bool:
    """True when this logger's pmproxy indexes a later instance for one metric only (PCP < 6.3.4)."""
    return seriesindex.needed(version or pcp_config("PCP_VERSION") or "0")


def series_index_command(redis: str, seconds: float) -> list[str]:
    """``hpc-pcp logger series-index`` by this interpreter's absolute path (a service has no PATH)."""
    return [sys.executable, "-m", "hpc_pcp.cli", "logger", "series-index", "--redis",
            ",".join(redis_seeds(redis)), "--interval", f"{seconds:g}s"]


def series_index_unit(redis: str, seconds: float) -> str:
    """A systemd unit for the series index: with pmproxy, restarted if it stops."""
    return (MARK +
            "# pmproxy before PCP 6.3.4 finds an instance that appears after it cached a metric\n"
            "# (a job that starts after the logger) in one metric of its instance domain only;\n"
            "# this adds the missing index entries in Valkey/Redis.  See hpc_pcp/seriesindex.py.\n"
            "[Unit]\nDescription=pcp-hpc series index for pmproxy before PCP 6.3.4\n"
            "After=pmproxy.service valkey-server.service redis-server.service\nPartOf=pmproxy.service\n\n"
            "[Service]\nUser=pcp\nExecStart=" + " ".join(series_index_command(redis, seconds)) + "\n"
            "Restart=always\nRestartSec=10\n\n[Install]\nWantedBy=pmproxy.service\n")


def start_series_index(unit: str, echo: Callable[[str], None] = print) -> bool:
    """Start (or restart) the series index: through systemd when it runs, else as a detached
    process whose pid is kept in $PCP_RUN_DIR (a previous one, found there, is stopped first)."""
    if os.path.isdir("/run/systemd/system"):
        done = subprocess.run(["systemctl", "enable", "--now", unit], capture_output=True, text=True,
                              timeout=60, stdin=subprocess.DEVNULL)
        if done.returncode == 0:
            done = subprocess.run(["systemctl", "restart", os.path.basename(unit)], capture_output=True,
                                  text=True, timeout=60, stdin=subprocess.DEVNULL)
        echo(f"series index: {'ok' if done.returncode == 0 else 'FAILED: ' + done.stderr.strip()}")
        return done.returncode == 0
    with open(unit, encoding="utf-8") as f:
        argv = next(line for line in f if line.startswith("ExecStart=")).strip()[len("ExecStart="):].split()
    pidfile = os.path.join(pcp_config("PCP_RUN_DIR") or "/run/pcp", SERIES_INDEX_PID)
    stop_series_index(pidfile)
    log_dir = os.path.join(pcp_config("PCP_LOG_DIR"), "pmproxy")
    os.makedirs(log_dir, exist_ok=True)
    return spawn_series_index(argv, os.path.join(log_dir, "hpc-series-index.log"), pidfile, echo)


STARTED_AFTER = 2.0   # seconds a series index must run to be reported started


def spawn_series_index(argv: Sequence[str], log_path: str, pidfile: str,
                       echo: Callable[[str], None] = print) -> bool:
    """Run ``argv`` detached (its own session, output appended to ``log_path``, pid in
    ``pidfile``); True once it has run ``STARTED_AFTER`` seconds, else False with its log's end:
    nothing restarts it without systemd, so one that cannot start is never reported started."""
    with open(log_path, "a", encoding="utf-8") as log:
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    os.makedirs(os.path.dirname(pidfile), exist_ok=True)
    with open(pidfile, "w", encoding="utf-8") as f:
        f.write(f"{proc.pid}\n")
    try:
        code = proc.wait(timeout=STARTED_AFTER)
    except subprocess.TimeoutExpired:
        echo(f"series index: started (pid {proc.pid}, log {log_path})")
        return True
    echo(f"series index: FAILED: exited with status {code} at start; {log_path} ends:\n"
         + "".join(_last_lines(log_path, 5)).rstrip())
    return False


def _last_lines(path: str, count: int) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return list(collections.deque(f, maxlen=count))
    except OSError:
        return []


def stop_series_index(pidfile: str) -> None:
    """Stop the series index whose pid ``pidfile`` holds, if that pid is still one."""
    try:
        with open(pidfile, encoding="utf-8") as f:
            pid = int(f.read().strip())
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if b"series-index" not in f.read():
                return
        os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError):
        return


def _ours(path: str) -> bool:
    try:
        with open(path, encoding="utf-8") as f:
            return MARK in f.read(4096)
    except OSError:
        return False


def apply(files: Sequence[ConfigFile], root: str = "/", echo: Callable[[str], None] = print) -> list[str]:
    """Write ``files`` under ``root``; back up (once) any file we did not write; return paths."""
    written = []
    for spec in files:
        path = os.path.join(root, spec.path.lstrip("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if os.path.exists(path) and not _ours(path) and "/pmlogconf/" not in path:
            backup = path + ".orig-hpc"
            if not os.path.exists(backup):
                shutil.copy2(path, backup)
                echo(f"kept the previous {spec.path} as {backup}")
        with open(path, "w", encoding="utf-8") as f:
            f.write(spec.text)
        written.append(path)
        echo(f"{spec.path}: {spec.why}")
    return written


def alarm_directory(root: str = "/", user: str = "pcp", echo: Callable[[str], None] = print) -> str:
    """Create the alarm state directory that pmie's rule actions write, owned by pmie's user.

    pmie runs as ``user``; the directory's parent ($PCP_VAR_DIR/config/hpc) is root's, so
    without this the first action could not record anything and every alarm was lost."""
    import pwd

    from pmdas.hpcalarm.state import default_directory

    directory = os.path.join(root, default_directory().lstrip("/"))
    account = pwd.getpwnam(user)
    for path in (directory, os.path.join(directory, "firing")):
        os.makedirs(path, mode=0o755, exist_ok=True)
        os.chown(path, account.pw_uid, account.pw_gid)
        os.chmod(path, 0o755)
    echo(f"{default_directory()}: alarm state, written by pmie's actions as {user}")
    return directory


def local_store(redis: str) -> bool:
    """True when ``redis`` is one server on this host: the packaged Valkey/Redis service.
    A cluster (several seeds) or a remote server is run by its own admin, not started here."""
    seeds = redis_seeds(redis)
    return len(seeds) == 1 and seeds[0].rsplit(":", 1)[0] in ("localhost", "127.0.0.1", "::1")


def start_services(echo: Callable[[str], None] = print, with_pmie: bool = False,
                   with_store: bool = True, series_index: str | None = None) -> int:
    """(Re)start Valkey (or Redis) if ``with_store``, pmlogger, pmproxy and, if configured,
    pmie and the series index (``series_index``: its unit file); return failures.  pmlogger
    first: its init script returns once pmlogger_check has started every pmlogger of the farm,
    so pmproxy, started next, finds every archive with its label written (pmproxy 6.0.3 could
    miss an archive it saw created, half written, and never load it)."""
    rc_dir = pcp_config("PCP_RC_DIR")
    store = "valkey-server" if os.path.exists("/etc/init.d/valkey-server") else "redis-server"
    steps = [(f"/etc/init.d/{store}", "start")] if with_store else []
    steps += [(f"{rc_dir}/pmlogger", "restart"), (f"{rc_dir}/pmproxy", "restart")]
    if with_pmie:
        steps.append((f"{rc_dir}/pmie", "restart"))
    env = {**os.environ, "PATH": "/usr/bin:/bin:/usr/sbin:/sbin:" + os.environ.get("PATH", "")}
    failures = 0
    for script, action in steps:
        name = os.path.basename(script)
        if not os.path.exists(script):
            echo(f"{name}: not installed ({script} missing)")
            failures += 1
            continue
        done = subprocess.run([script, action], capture_output=True, text=True, timeout=120, env=env,
                              stdin=subprocess.DEVNULL)
        ok = done.returncode == 0
        failures += not ok
        echo(f"{name}: {action} {'ok' if ok else 'FAILED: ' + (done.stderr or done.stdout).strip()}")
    if series_index:
        failures += not start_series_index(series_index, echo)
    return failures
