"""The logger node's series store: a 3-shard Valkey/Redis cluster (no replicas), as a site
runs one beside its logger, and the logger setup of the product pointed at its seeds."""
from __future__ import annotations

import os
import re
import shutil
import sys
import time

from hpc_demo.namespace import Namespace

from .layout import REDIS_PORTS, Node, redis_seeds

SERVER = shutil.which("valkey-server") or "redis-server"
CLI = shutil.which("valkey-cli") or "redis-cli"


def start_redis_cluster(logger: Node, ns: Namespace, seconds: float = 30) -> None:
    for port in REDIS_PORTS:
        directory = os.path.join(logger.directory, f"redis-{port}")
        os.makedirs(directory, exist_ok=True)
        ns.run(SERVER, "--port", str(port), "--bind", logger.address, "127.0.0.1",
               "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--dir", directory,
               "--save", "", "--appendonly", "no", "--protected-mode", "no", "--daemonize", "yes",
               "--logfile", os.path.join(directory, "redis.log"))
    ns.sh(f"for i in $(seq 100); do {CLI} -h {logger.address} -p {REDIS_PORTS[-1]} ping && exit 0; "
          "sleep 0.1; done; exit 1")
    ns.run(CLI, "--cluster", "create", *redis_seeds(logger).split(","), "--cluster-replicas", "0",
           "--cluster-yes", timeout=60)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        info = ns.run(CLI, "-h", logger.address, "-p", str(REDIS_PORTS[0]), "cluster", "info",
                      check=False).stdout
        if "cluster_state:ok" in info:
            return
        time.sleep(0.2)
    raise RuntimeError(f"the Redis cluster on {logger.name} did not become ok: {info}")


def quick_rules(logger: Node, seconds: int = 10) -> str:
    """The shipped alarm rules evaluated every ``seconds`` instead of every 30 s, so a fault
    shows as an alarm within seconds in a demo (and a test).  Twice the ticker's period: every
    evaluation then sees a fault's counters move (at 5 s, some saw no tick, and an alarm
    cleared while its fault was still there).  Their actions call this
    checkout's hpc-pcp by path: pmie runs actions with PATH=/usr/sbin:/sbin:/usr/bin:/bin,
    where a package puts hpc-pcp but a virtual environment does not."""
    from hpc_pcp.logger import default_pmie_rules

    shipped = default_pmie_rules()
    if shipped is None:
        raise RuntimeError("this installation ships no pmie rules (pmie_rules/hpc-alarms.pmie)")
    with open(shipped, encoding="utf-8") as f:
        text = re.sub(r"(?m)^delta = .*;$", f"delta = {seconds} sec;", f.read())
    text = re.sub(r"\bhpc-pcp alarm (fire|clear) ", rf"{sys.executable} -I -m hpc_pcp.cli alarm \1 ", text)
    path = os.path.join(logger.directory, "hpc-alarms.pmie")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


SELF = "logger-self"


def log_itself(logger: Node, interval: str = "10s") -> str:
    """A farm pmlogger of the logger node's own pmcd, by address: hpcalarm's hpc.alarm.*
    (the summary board's alarm panel) then reach pmproxy, every 10 s.  The primary pmlogger
    logs them every 60 s only, and pmproxy 6.0.3 did not always load its archive (in one
    cluster of two, its series never appeared; the same pmcd logged by a secondary pmlogger
    did at once)."""
    from hpc_pcp.logger import interval_seconds, pmlogger_interval

    path = os.path.join(logger.directory, "pcp", "etc", "pmlogger", "control.d", f"hpc-{SELF}")
    with open(path, "w", encoding="utf-8") as f:
        f.write("# the logger node's own pmcd (hpc-demo cluster)\n$version=1.1\n"
                f"{logger.address}\tn   n\tPCP_ARCHIVE_DIR/{SELF}\t-r -T24h10m -c config.hpc-{SELF} "
                f"-v 100Mb -t {pmlogger_interval(interval_seconds(interval))}\n")
    return path


def logger_setup(logger: Node, ns: Namespace, node_set: str, env: dict[str, str],
                 interval: str = "10s") -> str:
    """``hpc-pcp logger setup`` on the logger node, for every compute node, with --start."""
    log_itself(logger, interval)
    done = ns.run(sys.executable, "-m", "hpc_pcp.cli", "logger", "setup", "--nodes", node_set,
                  "--redis", redis_seeds(logger), "--interval", interval, "--start",
                  "--pmie-rules", quick_rules(logger),
                  timeout=300, check=False, env=env)
    if done.returncode:
        raise RuntimeError(f"logger setup on {logger.name} failed:\n{done.stdout}{done.stderr}")
    return done.stdout
