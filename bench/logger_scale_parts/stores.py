"""The two series stores of bench/logger_scale.py: one Redis, and a 3-shard Redis cluster.

Private redis-server processes on free ports with no persistence, a pmproxy per store for the
dashboards' queries (the configuration ``hpc-pcp logger setup`` writes, discovering an empty
directory), archives loaded with ``pmseries --load``.  Every process is ours, stopped by pid.
"""
from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import time
import urllib.parse
from dataclasses import dataclass, field

from hpc_pcp import logger

PMPROXY = "/usr/lib/pcp/bin/pmproxy"   # not on PATH on Debian


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free too: Redis refuses ports > 55535."""
    for port in random.Random().sample(range(20000, 45000), 200):
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 10000))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port pair for a Redis cluster node")


def wait_for(check, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, ValueError, AssertionError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {what}")


def _read_until(conn: socket.socket, buf: bytearray, pos: int, needed: int) -> None:
    while len(buf) < pos + needed:
        chunk = conn.recv(1 << 20)
        if not chunk:
            raise ConnectionError("pmproxy closed the connection mid-reply")
        buf += chunk


def _read_line(conn: socket.socket, buf: bytearray, pos: int) -> tuple[bytes, int]:
    while (end := buf.find(b"\r\n", pos)) < 0:
        _read_until(conn, buf, len(buf), 1)
    return bytes(buf[pos:end]), end + 2


def http_get(port: int, path: str, params: dict) -> bytes:
    """One HTTP/1.1 GET to pmproxy, body de-chunked in linear time.

    tests/logger/http11.py speaks the same protocol but re-parses the whole reply on every
    read, which is quadratic: a top-jobs panel's values at hundreds of hosts are many MB.
    Lenient about blank chunk-size lines, as pmproxy 6.0.3 writes some.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=300) as conn:
        conn.sendall(f"GET {path}?{urllib.parse.urlencode(params)} HTTP/1.1\r\n"
                     f"Host: 127.0.0.1:{port}\r\n\r\n".encode())
        buf, pos, fields = bytearray(), 0, {}
        line, pos = _read_line(conn, buf, pos)
        while True:
            line, pos = _read_line(conn, buf, pos)
            if not line:
                break
            key, _, value = line.partition(b":")
            fields[key.strip().lower()] = value.strip().lower()
        if fields.get(b"transfer-encoding") != b"chunked":
            length = int(fields.get(b"content-length", b"0"))
            _read_until(conn, buf, pos, length)
            return bytes(buf[pos:pos + length])
        body = []
        while True:
            line, pos = _read_line(conn, buf, pos)
            if not line.strip():
                continue
            size = int(line.split(b";")[0], 16)
            if size == 0:
                return b"".join(body)
            _read_until(conn, buf, pos, size + 2)
            body.append(bytes(buf[pos:pos + size]))
            pos += size + 2


def redis_cli(port: int, *args: str) -> str:
    return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True,
                          timeout=60).stdout


@dataclass
class Store:
    """One series store: its Redis ports (1 or 3 shards) and the pmproxy in front of it."""
    name: str
    directory: str
    shards: int
    ports: list[int] = field(default_factory=list)
    http_port: int = 0
    processes: list[subprocess.Popen] = field(default_factory=list)

    def _spawn(self, name: str, argv: list[str], env: dict | None = None) -> subprocess.Popen:
        log = open(os.path.join(self.directory, f"{name}.out"), "w")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=self.directory, env=env)
        self.processes.append(proc)
        return proc

    def start(self) -> None:
        os.makedirs(self.directory, exist_ok=True)
        for shard in range(self.shards):
            port = free_cluster_port() if self.shards > 1 else free_port()
            self.ports.append(port)
            work = os.path.join(self.directory, f"redis{shard}")
            os.makedirs(work, exist_ok=True)
            argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no", "--dir", work]
            if self.shards > 1:
                argv += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
            self._spawn(f"redis{shard}", argv)
            wait_for(lambda p=port: redis_cli(p, "ping").strip() == "PONG", 10, f"redis on {port}")
        if self.shards > 1:
            done = subprocess.run(["redis-cli", "--cluster", "create",
                                   *(f"127.0.0.1:{p}" for p in self.ports),
                                   "--cluster-replicas", "0", "--cluster-yes"],
                                  capture_output=True, text=True, timeout=60)
            if done.returncode:
                raise RuntimeError(f"redis cluster create failed: {done.stdout}{done.stderr}")
            # every shard, not only the first: until gossip has reached a node it answers with
            # redirections that pmseries gives up on ("too many cluster retries")
            wait_for(lambda: all("cluster_state:ok" in redis_cli(p, "cluster", "info")
                                 and f"cluster_known_nodes:{self.shards}" in redis_cli(p, "cluster", "info")
                                 for p in self.ports),
                     20, "redis cluster state ok on every shard")
        self.start_pmproxy()

    def start_pmproxy(self) -> None:
        self.http_port = free_port()
        conf = os.path.join(self.directory, "pmproxy.conf")
        seeds = ",".join(f"localhost:{p}" for p in self.ports)
        with open(conf, "w", encoding="utf-8") as f:
            f.write(logger.pmproxy_conf(seeds, 10, 1))
        empty = os.path.join(self.directory, "no-archives")
        os.makedirs(empty, exist_ok=True)
        env = {**os.environ, "PCP_ARCHIVE_DIR": empty}
        self._spawn("pmproxy", [PMPROXY, "-f", "-A", "-U", "root", "-c", conf, "-i", "127.0.0.1",
                                "-p", str(self.http_port), "-s", os.path.join(self.directory, "pmproxy.sock"),
                                "-l", os.path.join(self.directory, "pmproxy.log")], env)
        wait_for(lambda: self.get("/series/ping").get("success"), 30, f"{self.name} pmproxy")

    def get(self, path: str, **params) -> object:
        return json.loads(http_get(self.http_port, path, params))

    def used_memory(self) -> int:
        """INFO used_memory summed over the shards: what the key servers hold."""
        total = 0
        for port in self.ports:
            for line in redis_cli(port, "info", "memory").splitlines():
                if line.startswith("used_memory:"):
                    total += int(line.split(":")[1])
        return total

    def keys(self) -> list[int]:
        return [int(redis_cli(p, "dbsize").strip() or 0) for p in self.ports]

    def load(self, archive: str, metadata_only: bool = False) -> float:
        """``pmseries --load`` of one archive; wall seconds."""
        query = "{source.path: " + json.dumps(archive) + "}"
        argv = ["pmseries", "-h", "127.0.0.1", "-p", str(self.ports[0]), "--load", query]
        if metadata_only:
            argv.insert(1, "--fast")
        started = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, timeout=3600)
        seconds = time.perf_counter() - started
        if done.returncode or "processed" not in done.stdout + done.stderr:
            raise RuntimeError(f"pmseries --load {archive} failed: {done.stdout}{done.stderr}")
        return seconds

    def stop(self) -> None:
        for proc in reversed(self.processes):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.processes:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def series_values(store: Store, series: list[str], window: tuple[int, int], interval: int) -> int:
    """Values of every series over the window, in requests of 100 series; points returned.
    The reply is counted, not decoded: the latency measured is pmproxy's and Redis's."""
    points = 0
    for i in range(0, len(series), 100):
        body = http_get(store.http_port, "/series/values",
                        {"series": ",".join(series[i:i + 100]), "start": window[0],
                         "finish": window[1], "interval": interval})
        points += body.count(b'"timestamp"')
    return points
