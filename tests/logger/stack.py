"""A private logger stack for tier-3 tests: Redis, pmlogger and pmproxy on free ports.

Nothing here touches the system's services: Redis runs on its own port with no
persistence, pmlogger writes into a temporary archive directory, and pmproxy
discovers archives there (PCP_ARCHIVE_DIR in its environment) and listens on
127.0.0.1 only.  Every process is ours and is stopped by pid.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

from hpc_pcp import logger
from tests.harness.pcp import pcp_env, wait_for

from . import http11

PMLOGCONF = "/usr/lib/pcp/bin/pmlogconf"
LINUX_SECTION = """
# stock metrics the node dashboard shows next to ours
log mandatory on default {
    kernel.all.cpu.user kernel.all.cpu.sys kernel.all.cpu.idle kernel.all.cpu.wait.total
    kernel.all.load hinv.ncpu mem.util.used mem.util.free mem.util.cached mem.physmem
}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Stack:
    directory: str
    redis_port: int = 0
    http_port: int = 0
    processes: list[subprocess.Popen] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def get(self, path: str, **params: Any) -> Any:
        """GET a pmproxy REST path and decode its JSON (HTTP/1.1 as Grafana, see http11)."""
        raw, body = http11.get(self.http_port, path, params)
        try:
            return json.loads(body.decode())
        except ValueError:
            alive = all(p.poll() is None for p in self.processes)
            log = open(os.path.join(self.directory, "pmproxy.log"), errors="replace").read()[-1500:]
            raise AssertionError(f"pmproxy gave no JSON for {path} {params} (services alive: {alive}): "
                                 f"{raw[:300]!r}\npmproxy.log tail:\n{log}") from None

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(os.path.join(self.directory, f"{name}.out"), "w")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env or pcp_env(), cwd=self.directory)
        self.processes.append(proc)
        return proc

    def start_redis(self) -> None:
        self.redis_port = free_port()
        self._spawn("redis", ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no", "--dir", self.directory])
        wait_for(lambda: subprocess.run(["redis-cli", "-p", str(self.redis_port), "ping"],
                                        capture_output=True, text=True).stdout.strip() == "PONG",
                 10, what="redis-server to answer")

    def pmlogger_config(self, groups: dict[str, str]) -> str:
        """pmlogconf (auto-create mode, as pmlogger_check runs it) over our groups only."""
        groups_dir = os.path.join(self.directory, "pmlogconf")
        for agent, text in groups.items():
            os.makedirs(os.path.join(groups_dir, "hpc"), exist_ok=True)
            with open(os.path.join(groups_dir, "hpc", agent), "w", encoding="utf-8") as f:
                f.write(text)
        config = os.path.join(self.directory, "config.hpc")
        done = subprocess.run([PMLOGCONF, "-c", "-q", "-d", groups_dir, "-h", "local:", config],
                              capture_output=True, text=True, env=pcp_env(), timeout=60)
        assert done.returncode == 0, f"pmlogconf failed: {done.stdout}{done.stderr}"
        with open(config, encoding="utf-8") as f:
            text = f.read()
        head, access, tail = text.partition("\n[access]")  # log sections must precede [access]
        with open(config, "w", encoding="utf-8") as f:
            f.write(head + LINUX_SECTION + access + tail)
        return config

    def start_pmproxy(self, archives: str) -> None:
        self.http_port = free_port()
        conf = os.path.join(self.directory, "pmproxy.conf")
        with open(conf, "w", encoding="utf-8") as f:  # the setup command's own configuration
            f.write(logger.pmproxy_conf(f"localhost:{self.redis_port}", 1, 1))
        env = {**pcp_env(), "PCP_ARCHIVE_DIR": archives}
        self._spawn("pmproxy", ["pmproxy", "-f", "-A", "-U", "root", "-c", conf, "-i", "127.0.0.1",
                                "-p", str(self.http_port), "-s", os.path.join(self.directory, "pmproxy.sock"),
                                "-l", os.path.join(self.directory, "pmproxy.log")], env)
        wait_for(lambda: self.get("/series/ping").get("success"), 20, what="pmproxy /series/ping")

    def start_pmlogger(self, config: str, archives: str, host: str, interval: str) -> None:
        os.makedirs(os.path.join(archives, host), exist_ok=True)
        self._spawn("pmlogger", ["pmlogger", "-c", config, "-t", interval, "-h", "local:",
                                 "-l", os.path.join(self.directory, "pmlogger.log"),
                                 os.path.join(archives, host, "%Y%m%d.%H.%M")])

    def stop(self) -> None:
        for proc in reversed(self.processes):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in self.processes:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.directory, ignore_errors=True)
