"""A small Valkey/Redis client: pipelined commands, one server or a cluster (slots, MOVED).

The logger's series-index repair (seriesindex.py) needs a few set and hash commands in
batches of thousands; Debian 12's logger node has no Python Redis client installed, and
the protocol (RESP2) is a few lines.  Keys are routed by their cluster slot, each shard
gets its commands in one pipeline, and replies come back in the order the commands were
given.  Values are bytes: pmproxy stores 20-byte binary SHA-1 identifiers.
"""
from __future__ import annotations

import socket
from collections.abc import Sequence

Arg = bytes | str | int
Reply = bytes | int | list | None


class RespError(Exception):
    """The server answered a command with an error (``-ERR ...``), or could not be reached."""


def _crc16(data: bytes) -> int:
    """CRC16-CCITT (XMODEM), the checksum of Redis Cluster key slots."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def key_slot(key: bytes) -> int:
    """The cluster slot of ``key`` (a {hash tag} if it has a non-empty one)."""
    start = key.find(b"{")
    if start >= 0:
        end = key.find(b"}", start + 1)
        if end > start + 1:
            key = key[start + 1:end]
    return _crc16(key) % 16384


def _encode(args: Sequence[Arg]) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class _Connection:
    def __init__(self, host: str, port: int, timeout: float) -> None:
        try:
            self.sock = socket.create_connection((host, port), timeout)
        except OSError as exc:
            raise RespError(f"cannot reach Valkey/Redis at {host}:{port}: {exc}") from None
        self.buffer = b""
        self.pos = 0

    def close(self) -> None:
        self.sock.close()

    def _fill(self) -> None:
        data = self.sock.recv(1 << 20)
        if not data:
            raise RespError("Valkey/Redis closed the connection")
        if self.pos:                     # drop what was read (one copy per receive, not per reply)
            self.buffer = self.buffer[self.pos:]
            self.pos = 0
        self.buffer += data

    def _line(self) -> bytes:
        while (end := self.buffer.find(b"\r\n", self.pos)) < 0:
            self._fill()
        line, self.pos = self.buffer[self.pos:end], end + 2
        return line

    def _reply(self) -> Reply | RespError:
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            return RespError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            while len(self.buffer) - self.pos < size + 2:
                self._fill()
            data = self.buffer[self.pos:self.pos + size]
            self.pos += size + 2
            return data
        if kind == b"*":
            count = int(rest)
            return None if count < 0 else [self._reply() for _ in range(count)]
        raise RespError(f"unexpected reply from Valkey/Redis: {line[:80]!r}")

    def pipeline(self, commands: Sequence[Sequence[Arg]]) -> list[Reply | RespError]:
        self.sock.sendall(b"".join(_encode(c) for c in commands))
        return [self._reply() for _ in commands]


class Store:
    """One Valkey/Redis server or a cluster, found from ``seeds`` (host:port strings)."""

    def __init__(self, seeds: Sequence[str], timeout: float = 10.0) -> None:
        self.seeds = [(s.rsplit(":", 1)[0], int(s.rsplit(":", 1)[1])) for s in seeds]
        self.timeout = timeout
        self.connections: dict[tuple[str, int], _Connection] = {}
        self.slots: list[tuple[str, int]] | None = None   # None: not a cluster
        self._discover()

    def _connection(self, node: tuple[str, int]) -> _Connection:
        if node not in self.connections:
            self.connections[node] = _Connection(node[0], node[1], self.timeout)
        return self.connections[node]

    def _discover(self) -> None:
        last: Exception | None = None
        for seed in self.seeds:
            try:
                (reply,) = self._connection(seed).pipeline([("CLUSTER", "SLOTS")])
            except RespError as exc:
                last = exc
                continue
            if isinstance(reply, RespError):      # "cluster support disabled": one server
                self.slots = None
                self.single = seed
                return
            slots: list[tuple[str, int]] = [seed] * 16384
            for start, end, master, *_ in reply:
                host = master[0].decode() or seed[0]
                for slot in range(start, end + 1):
                    slots[slot] = (host, int(master[1]))
            self.slots = slots
            return
        raise RespError(str(last) if last else "no Valkey/Redis server given")

    def masters(self) -> list[tuple[str, int]]:
        return sorted(set(self.slots)) if self.slots else [self.single]

    def _node(self, command: Sequence[Arg]) -> tuple[str, int]:
        if self.slots is None:
            return self.single
        key = command[1]
        return self.slots[key_slot(key if isinstance(key, bytes) else str(key).encode())]

    def run(self, commands: Sequence[Sequence[Arg]], retry: bool = True) -> list[Reply]:
        """Replies to ``commands`` in order (each command's key is its 2nd argument);
        RespError if any command failed."""
        by_node: dict[tuple[str, int], list[int]] = {}
        for index, command in enumerate(commands):
            by_node.setdefault(self._node(command), []).append(index)
        replies: list[Reply | RespError] = [None] * len(commands)
        for node, indexes in by_node.items():
            try:
                answers = self._connection(node).pipeline([commands[i] for i in indexes])
            except OSError as exc:
                self.connections.pop(node, None)
                raise RespError(f"Valkey/Redis at {node[0]}:{node[1]}: {exc}") from None
            for i, answer in zip(indexes, answers, strict=True):
                replies[i] = answer
        moved = [i for i, r in enumerate(replies)
                 if isinstance(r, RespError) and str(r).startswith(("MOVED", "ASK"))]
        if moved and retry:                       # resharded: learn the slots again, once
            self._discover()
            again = self.run([commands[i] for i in moved], retry=False)
            for i, answer in zip(moved, again, strict=True):
                replies[i] = answer
        for reply in replies:
            if isinstance(reply, RespError):
                raise reply
        return replies  # type: ignore[return-value]

    def close(self) -> None:
        for connection in self.connections.values():
            connection.close()
        self.connections.clear()
