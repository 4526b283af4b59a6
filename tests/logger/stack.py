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
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from hpc_pcp import logger
from tests.harness.pcp import pcp_env, wait_for

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


def _dechunk(body: bytes) -> tuple[bytes, bool]:
    """Chunked transfer decoding, lenient about blank size lines (pmproxy 6.0.3 writes
    some); returns the data so far and whether the terminating zero-size chunk came."""
    out, rest = b"", body
    while rest:
        size_line, crlf, rest = rest.partition(b"\r\n")
        if not crlf:
            return out, False
        if not size_line.strip():
            continue
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return out, True
        if len(rest) < size + 2:
            return out, False
        out, rest = out + rest[:size], rest[size + 2:]
    return out, False


def _complete(raw: bytes) -> tuple[bytes, bool]:
    """(body, whole reply received?) of one HTTP/1.1 reply, chunked or with Content-Length."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        return b"", False
    fields = {k.strip().lower(): v.strip() for k, _, v in
              (line.partition(b":") for line in head.split(b"\r\n")[1:])}
    if fields.get(b"transfer-encoding", b"").lower() == b"chunked":
        return _dechunk(body)
    length = int(fields.get(b"content-length", b"-1"))
    return body, length >= 0 and len(body) >= length


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
        """GET a pmproxy REST path and decode its JSON.

        Spoken as HTTP/1.1, as Grafana does: pmproxy streams any reply larger than its
        chunk size (a page) with chunked encoding, and refuses such replies to HTTP/1.0
        clients with 413 "HTTP 1.0 request result exceeds server limits".  The connection
        stays keep-alive (with "Connection: close", pmproxy 6.0.3 closed it after the first
        chunk of a streamed reply); the reply ends at its zero-size chunk or Content-Length.
        Read over a plain socket and de-chunked leniently: Python's http.client rejected
        some chunked replies of pmproxy 6.0.3 (blank chunk size lines).
        """
        request = (f"GET {path}?{urllib.parse.urlencode(params)} HTTP/1.1\r\n"
                   f"Host: 127.0.0.1:{self.http_port}\r\n\r\n")
        raw, body, whole = b"", b"", False
        with socket.create_connection(("127.0.0.1", self.http_port), timeout=30) as conn:
            conn.sendall(request.encode())
            while not whole and (chunk := conn.recv(65536)):
                raw += chunk
                body, whole = _complete(raw)
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
